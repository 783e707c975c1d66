"""The command line: runs end to end, run folders, and every error path.

Error paths run in a subprocess whose data generation is booby-trapped: ``Stimulus.generate``
and ``nmnist.load`` write a marker file and raise, so a test proves that an error came
before any data, not just that it came quickly (the CPU time of the subprocess is reported
in the assertion messages and must stay under a second).
"""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
import spikeloc.checkpoint  # noqa: F401
from spikeloc.__main__ import main

PYTHON_DIR = str(Path(sl.__file__).resolve().parent.parent)

#: A tutorial run of a fraction of a second.
TINY = ["--set", "stimulus.anf_per_ear=8", "--set", "stimulus.duration=0.02",
        "--set", "training.n_train=96", "--set", "training.batch_size=32",
        "--set", "training.epochs=2", "--set", "evaluation.n_test=64",
        "--set", "model.n_hidden=8"]

#: Runs ``spikeloc.__main__.main`` with data generation replaced by a trap.
TRAPPED = textwrap.dedent("""
    import functools, os, sys
    import spikeloc.stimulus, spikeloc.datasets.nmnist
    def trap(original):
        @functools.wraps(original)      # experiments read the API's signatures
        def trapped(*args, **kwargs):
            open(os.environ["SPIKELOC_TRAP"], "w").write("data generated")
            raise RuntimeError("data generated")
        return trapped
    spikeloc.stimulus.Stimulus.generate = trap(spikeloc.stimulus.Stimulus.generate)
    spikeloc.datasets.nmnist.load = trap(spikeloc.datasets.nmnist.load)
    from spikeloc.__main__ import main
    sys.exit(main(sys.argv[1:]))
""")


def env_with_path(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PYTHON_DIR, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def trapped(args, tmp_path):
    """(returncode, stderr, child CPU seconds) of the CLI with a data trap."""
    marker = tmp_path / "data-was-generated"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", TRAPPED, *args], capture_output=True,
                          text=True, env=env_with_path(SPIKELOC_TRAP=str(marker)), timeout=60,
                          cwd=tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert not marker.exists(), f"data was generated before the error: {proc.stderr}"
    return proc.returncode, proc.stderr, cpu


# ---------------------------------------------------------------------------- runs


def test_cli_trains_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--train-batches", "4", "--test-batches", "2",
                 "--batch-size", "32", "--hidden", "20", "--tau-ms", "5",
                 "--phase-offset", "per_sample", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Chance accuracy level: 8.3%" in printed
    assert "Test classifier accuracy:" in printed and "Test absolute error:" in printed
    assert "train loss" in printed  # the history table, one row per epoch
    assert printed.strip().splitlines()[-1].startswith("tutorial: test accuracy")
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_error_deg"] >= 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 2 and all(np.isfinite(history["train_loss"]))
    assert (out / "history.csv").read_text().count("\n") >= 3  # header + 2 epochs
    for figure in ("loss.png", "test_ipd.png", "stimulus.png", "weights.png", "w1_profiles.png"):
        assert (out / figure).stat().st_size > 5000, figure
    # the checkpoint loads back to a model with identical predictions
    model, header, stim = sl.checkpoint.load_with_metadata(out / "model.npz")
    assert stim.phase_offset == "per_sample" and header["extra"]["metrics"] == metrics
    ipd, spikes = stim.generate(64, seed=1)  # the CLI's test set is seed + 1 = 1
    x = sl.SpikeEvents.from_dense(spikes)
    reference = sl.SNN(**{k: v for k, v in model.config.items() if k != "model"})
    reference.w1, reference.w2 = model.w1, model.w2
    assert np.array_equal(model.predict(x), reference.predict(x))
    assert np.mean(model.predict(x) == stim.labels(ipd)) == metrics["test_accuracy"]


def test_a_run_folder_reproduces_itself(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["run", "tutorial", *TINY, "--out", str(first), "--no-progress"]) == 0
    assert main(["run", str(first / "config.toml"), "--out", str(second), "--no-progress",
                 "--threads", "1"]) == 0
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()
    assert (first / "config.toml").read_text() == (second / "config.toml").read_text()
    assert (first / "history.csv").read_text().splitlines()[1].split(",")[:2] == \
        (second / "history.csv").read_text().splitlines()[1].split(",")[:2]
    capsys.readouterr()
    # evaluate reloads the model and regenerates the data: the same metrics
    assert main(["evaluate", str(first)]) == 0
    printed = capsys.readouterr().out
    assert "identical to metrics.json" in printed and "Test classifier accuracy" in printed


def test_show_prints_resolved_experiments(tmp_path, capsys):
    assert main(["show"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in sl.presets())
    assert main(["show", "250hz", "--set", "model.n_hidden=7"]) == 0
    text = capsys.readouterr().out
    exp = sl.Experiment.from_toml(text)
    assert exp.config["model"]["n_hidden"] == 7 and exp.config["stimulus"]["freq"] == 250.0
    assert main(["show", "dale", "--raw"]) == 0
    assert capsys.readouterr().out.startswith("# Seed 001")


def test_cli_sweep_writes_its_folder_and_resumes(tmp_path, capsys):
    out = tmp_path / "sweep"
    experiment = ["envelope_power", *TINY, "--set", "sweep.repeats=2",
                  "--set", "sweep.grid={\"stimulus.envelope_power\" = [1.0, 8.0]}"]
    args = ["sweep", *experiment, "--out", str(out), "--no-progress", "--workers", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "stimulus.envelope_power" in printed and "+/-" in printed
    assert printed.strip().splitlines()[-1].startswith("envelope_power: 4 jobs (0 failed)")
    for name in ("config.toml", "environment.json", "status.json", "results.jsonl",
                 "summary.csv", "summary.md", "sweep.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    md = (out / "summary.md").read_text()
    assert md.startswith("| stimulus.envelope_power | n | train_accuracy")
    assert main(args) == 0       # resumed: nothing runs again
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    # another experiment cannot reuse the folder
    code = main(["sweep", *experiment, "--set", "training.lr=0.5", "--out", str(out)])
    assert code == 2 and "holds another experiment" in capsys.readouterr().err


def test_cli_sweep_on_a_dask_scheduler(tmp_path):
    distributed = pytest.importorskip("distributed")
    experiment = ["envelope_power", *TINY, "--set", "sweep.repeats=1",
                  "--set", "sweep.grid={\"stimulus.envelope_power\" = [1.0, 8.0]}"]
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["sweep", *experiment, "--out", str(local), "--no-progress"]) == 0
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        assert main(["sweep", *experiment, "--out", str(remote), "--no-progress",
                     "--scheduler", cluster.scheduler_address]) == 0

    def metrics(folder):
        lines = (folder / "results.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        return sorted((r["key"], r["metrics"]) for r in records)
    assert metrics(remote) == metrics(local) and len(metrics(local)) == 2


# ---------------------------------------------------------------------------- failures


def test_a_diverging_run_ends_in_one_line_and_a_folder_that_says_so(tmp_path):
    out = tmp_path / "diverged"
    proc = subprocess.run([sys.executable, "-m", "spikeloc", "train", "--lr", "1e30",
                           "--epochs", "2", "--train-batches", "4", "--test-batches", "2",
                           "--hidden", "10", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env_with_path(), timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("spikeloc: error")]
    assert len(errors) == 1 and "non-finite" in errors[0] and "status.json" in errors[0]
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and "non-finite" in status["message"]
    assert status["stop_reason"].startswith("non-finite loss")
    assert (out / "config.toml").exists() and (out / "history.json").exists()
    assert not (out / "model.npz").exists()


#: Runs the CLI and sends itself SIGINT from inside training: ``FIRST`` at the given batch,
#: then ``SECOND`` right after it (``batch``: in the same batch, so train()'s guard sees
#: both; ``evaluate``: while the test set is evaluated, after training stopped).
INTERRUPTED = textwrap.dedent("""
    import functools, os, signal, sys
    import spikeloc.evaluation, spikeloc.network
    when, args = sys.argv[1], sys.argv[2:]
    original = spikeloc.network.SNN.loss_and_grad
    calls = [0]
    def loss_and_grad(self, *a, **k):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGINT)           # the first Ctrl-C
            if when == "batch":
                os.kill(os.getpid(), signal.SIGINT)       # the second, at once
        return original(self, *a, **k)
    spikeloc.network.SNN.loss_and_grad = loss_and_grad
    if when == "evaluate":
        evaluate = spikeloc.evaluation.evaluate
        @functools.wraps(evaluate)
        def interrupted_evaluate(*a, **k):
            os.kill(os.getpid(), signal.SIGINT)
            return evaluate(*a, **k)
        spikeloc.evaluation.evaluate = interrupted_evaluate
    from spikeloc.__main__ import main
    sys.exit(main(args))
""")


@pytest.mark.parametrize("when", ["batch", "evaluate", "once"])
def test_ctrl_c_never_leaves_a_traceback_or_a_half_written_folder(tmp_path, when):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED, when, "run", "tutorial", *TINY,
                           "--set", "training.epochs=5", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env_with_path(), timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 130
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]     # no staging left
    if when == "once":      # the first Ctrl-C stops training; the folder says so
        status = json.loads((out / "status.json").read_text())
        assert status["status"] == "interrupted" and "interrupted" in status["stop_reason"]
        assert (out / "model.npz").exists() and (out / "metrics.json").exists()
    else:                   # a second Ctrl-C: nothing is written
        assert not out.exists()
        assert "interrupted; nothing written" in proc.stderr


def test_ctrl_c_from_outside(tmp_path):
    """Two real Ctrl-C from outside at an arbitrary moment: whatever the moment, either a
    complete run folder or none, and never a traceback."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "spikeloc", "run", "tutorial", *TINY,
                             "--set", "training.epochs=100000", "--out", str(out),
                             "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_with_path())
    for line in proc.stdout:        # training has started once the model is printed
        if line.startswith("model:"):
            break
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr and proc.returncode == 130
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]
    if out.exists():
        assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
        assert (out / "model.npz").exists()


# ---------------------------------------------------------------------------- error paths


def _a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def _a_full_folder(tmp_path):
    path = tmp_path / "full"
    path.mkdir()
    (path / "something").write_text("x")
    return path


def _bad_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nn_hidden = = 3\n")
    return path


@pytest.mark.parametrize("args, fragments", [
    (["run", "tutorail"], ["unknown preset 'tutorail'", "did you mean 'tutorial'"]),
    (["run", "missing.toml"], ["missing.toml", "cannot read"]),
    (["run", "{bad_toml}"], ["bad.toml", "not valid TOML"]),
    (["run", "tutorial", "--set", "model.n_hiden=3"], ["[model]", "did you mean 'n_hidden'"]),
    (["run", "tutorial", "--set", "model.n_hidden"], ["--set expects section.key=value"]),
    (["run", "tutorial", "--set", "training.epochs=-1"], ["[training]", "epochs must be >= 0"]),
    (["run", "tutorial", "--set", "training.lr=-1"], ["[training]", "lr must be >= 0"]),
    (["run", "tutorial", "--set", "stimulus.dt=0"], ["[stimulus]", "dt must be > 0"]),
    (["run", "tutorial", "--set", "training.batch_size=0"], ["[training]",
                                                             "batch_size must be >= 1"]),
    (["run", "tutorial", "--set", "evaluation.n_test=0"], ["[evaluation]", "n_test"]),
    (["run", "eprop_nmnist"], ["[nmnist] root", "--set nmnist.root="]),
    (["run", "eprop_nmnist", "--set", "nmnist.root=/nonexistent"], ["[nmnist]",
                                                                   "does not exist"]),
    (["run", "tutorial", "--out", "{a_file}"], ["--out", "exists and is not a folder"]),
    (["run", "tutorial", "--out", "{a_file}/run"], ["--out", "a-file is a file"]),
    (["run", "tutorial", "--out", "{a_full_folder}"], ["--out", "not empty"]),
    (["run", "tutorial", "--out", "/sys/spikeloc-run"], ["--out", "cannot write in /sys"]),
    (["train", "--epochs", "-1"], ["[training]", "epochs must be >= 0"]),
    (["train", "--tau-ms", "-3"], ["[model]", "tau_hidden must be > 0"]),
    (["train", "--delay-noise", "-1"], ["phase_delay_noise"]),
    (["train", "--phase-offset", "sometimes"], ["--phase-offset must be"]),
    (["train", "--lr", "-1"], ["lr must be >= 0"]),
    (["train", "--out", "{a_file}"], ["--out", "exists and is not a folder"]),
    (["train", "--threads", "-2"], ["--threads", "must be an integer >= 0"]),
    (["sweep", "tutorial"], ["no [sweep] section"]),
    (["sweep", "envelope_power", "--workers", "0"], ["--workers", "must be an integer >= 1"]),
    (["sweep", "envelope_power", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
     ["--workers sizes the local thread pool"]),
    (["sweep", "envelope_power", "--out", "{a_file}"], ["--out", "not a folder"]),
    (["sweep", "envelope_power", "--out", "{a_full_folder}"], ["not a sweep folder"]),
    (["evaluate", "{a_full_folder}"], ["not a complete run folder", "config.toml"]),
    (["evaluate", "{a_file}"], ["not a run folder"]),
    (["show", "tutorial", "--raw", "--set", "model.n_hidden=3"], ["--raw", "no --set"]),
])
def test_every_bad_argument_fails_before_any_data(tmp_path, args, fragments):
    places = {"bad_toml": _bad_toml, "a_file": _a_file, "a_full_folder": _a_full_folder}
    args = [a.format(**{k: f(tmp_path) for k, f in places.items() if "{" + k in a})
            for a in args]
    before = set(os.listdir(tmp_path))
    code, stderr, cpu = trapped(args, tmp_path)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert set(os.listdir(tmp_path)) <= before | {"data-was-generated"}   # nothing written
    assert cpu < 1.0, f"the error took {cpu:.2f} s of CPU time"
