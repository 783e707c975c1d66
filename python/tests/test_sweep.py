"""spikeloc.sweep: grids, seeds, the result table, the results file (resume after an
interruption or a killed process), failing jobs, thread scoping and determinism across
executors (threads, processes, a Dask cluster)."""

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.experiment import tutorial_experiment
from spikeloc.reference import rng as ref_rng
from spikeloc.sweep import (SweepInterrupted, SweepResult, expand_grid, job_key, job_seed,
                            load_results)

PYTHON_DIR = str(Path(sl.__file__).resolve().parent.parent)

#: A small version of the tutorial's envelope-power job (a fraction of a second each).
SMALL = {"n_train": 192, "n_test": 128, "epochs": 2, "n_hidden": 12, "anf_per_ear": 16,
         "duration": 0.05}
GRID = {"envelope_power": [0.5, 2.0, 8.0]}


def small_run(params, seed):
    return tutorial_experiment(dict(SMALL, **params), seed)


def metrics_of(table):
    """What must agree between runs: everything but the wall-clock time."""
    return table.without_timing()


# ---------------------------------------------------------------------------- grid, seeds, keys


def test_expand_grid_product_and_list():
    combos = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert combos == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]
    assert expand_grid([{"a": 1}, {"a": 2, "b": np.float32(0.5)}]) == [{"a": 1},
                                                                      {"a": 2, "b": 0.5}]
    assert type(expand_grid({"a": [np.int64(3)]})[0]["a"]) is int


@pytest.mark.parametrize("grid, exc, fragment", [
    ({"a": []}, ValueError, "grid['a'] is empty"),
    ({"a": "abc"}, TypeError, "grid['a'] must be a list"),
    ({"a": [1, 1]}, ValueError, "twice"),
    ({"seed": [1]}, ValueError, "reserved"),
    ({"a": [float("nan")]}, ValueError, "finite"),
    ({"a": [object()]}, TypeError, "parameter 'a'"),
    ([], ValueError, "no parameter combinations"),
    (5, TypeError, "grid must be"),
    ([{"a": 1}, 3], TypeError, "grid[1]"),
])
def test_expand_grid_errors(grid, exc, fragment):
    with pytest.raises(exc) as info:
        expand_grid(grid)
    assert fragment in str(info.value)


def test_job_seed_is_the_header_key():
    for base in (0, 1, 12345, 2**64 - 1):
        for r in range(4):
            k = int(ref_rng.key(base, r + 1)[0])
            assert job_seed(base, r) == k >> 1
            assert 0 <= job_seed(base, r) < 2**63
    seeds = {job_seed(7, r) for r in range(100)}
    assert len(seeds) == 100
    with pytest.raises(ValueError, match="repeat"):
        job_seed(0, -1)


def test_job_key_stable_across_processes():
    params = {"k": 2.5, "name": "x", "n": 3}
    code = ("import sys; sys.path.insert(0, %r); from spikeloc.sweep import job_key; "
            "print(job_key({'n': 3, 'name': 'x', 'k': 2.5}, 11))" % PYTHON_DIR)
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == job_key(params, 11)
    assert job_key(params, 11) != job_key(params, 12)
    assert job_key({"k": 1}, 0) != job_key({"k": 1.0}, 0)


# ---------------------------------------------------------------------------- running


def test_sweep_table_in_grid_order_and_equal_to_direct_calls():
    table = sl.sweep(small_run, GRID, repeats=2, progress=False)
    assert isinstance(table, SweepResult) and len(table) == 6
    assert table.params == ["envelope_power"]
    assert "test_accuracy" in table.metrics and "final_loss" in table.metrics
    expected_order = [(k, r) for k in GRID["envelope_power"] for r in range(2)]
    assert [(rec["envelope_power"], rec["repeat"]) for rec in table] == expected_order
    for rec in table:
        assert rec["status"] == "ok" and rec["error"] is None
        assert rec["seed"] == job_seed(0, rec["repeat"])
        direct = small_run({"envelope_power": rec["envelope_power"]}, rec["seed"])
        assert {m: rec[m] for m in direct} == direct
    # different repeats differ, so the seeds reach the job
    assert table[0]["final_loss"] != table[1]["final_loss"]


def test_jobs_run_single_threaded_and_scope_does_not_leak(monkeypatch):
    monkeypatch.setenv("SPIKELOC_NUM_THREADS", "3")
    from spikeloc._native_api import resolve_threads

    def run(params, seed):
        stim = sl.Stimulus(duration=0.01, anf_per_ear=2)
        net = sl.SNN.for_stimulus(stim, n_hidden=2)
        return {"resolved": resolve_threads(None), "model": net.threads,
                "explicit": sl.SNN.for_stimulus(stim, n_hidden=2, threads=2).threads}

    table = sl.sweep(run, {"a": [1, 2, 3]}, progress=False)
    assert [(r["resolved"], r["model"], r["explicit"]) for r in table] == [(1, 1, 2)] * 3
    table = sl.sweep(run, {"a": [1]}, progress=False, job_threads=2, workers=1)
    assert (table[0]["resolved"], table[0]["model"]) == (2, 2)
    assert resolve_threads(None) == 3  # the calling thread is not affected
    with sl.kernel_threads(1):
        assert resolve_threads(None) == 1
        assert resolve_threads(4) == 4
    assert resolve_threads(None) == 3


def test_failing_job_is_recorded_and_others_continue(tmp_path):
    path = tmp_path / "r.jsonl"
    calls = []

    def run(params, seed):
        calls.append(params["a"])
        if params["a"] == 2:
            raise ZeroDivisionError("boom in job a=2")
        return {"y": params["a"] * 10}

    table = sl.sweep(run, {"a": [1, 2, 3]}, results=path, progress=False)
    assert [r["status"] for r in table] == ["ok", "error", "ok"]
    bad = table[1]
    assert bad["error"] == "ZeroDivisionError: boom in job a=2" and "y" not in bad
    assert "boom in job a=2" in table.tracebacks[bad["key"]]
    assert "Traceback" in table.tracebacks[bad["key"]]
    assert [r["y"] for r in table.ok] == [10, 30] and len(table.failed) == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(rec["status"] for rec in lines) == ["error", "ok", "ok"]
    # a rerun skips the successes and retries the failure (which fails again) ...
    calls.clear()
    table2 = sl.sweep(run, {"a": [1, 2, 3]}, results=path, progress=False)
    assert calls == [2] and [r["status"] for r in table2] == ["ok", "error", "ok"]
    # ... unless told to keep it
    calls.clear()
    sl.sweep(run, {"a": [1, 2, 3]}, results=path, progress=False, retry_failed=False)
    assert calls == []


@pytest.mark.parametrize("bad, fragment", [
    (lambda p, s: [1, 2], "must return a dict"),
    (lambda p, s: {"m": object()}, "metric['m']"),
    (lambda p, s: {"a": 1}, "clash"),
    (lambda p, s: {"seed": 1}, "clash"),
])
def test_bad_metrics_fail_the_job_not_the_sweep(bad, fragment):
    table = sl.sweep(bad, {"a": [1]}, progress=False)
    assert table[0]["status"] == "error" and fragment in table[0]["error"]


@pytest.mark.parametrize("kw, exc", [
    ({"repeats": 0}, ValueError), ({"repeats": 1.5}, ValueError), ({"executor": 3}, TypeError),
    ({"workers": 0}, ValueError), ({"job_threads": -1}, ValueError),
    ({"executor": ThreadPoolExecutor(1), "workers": 2}, ValueError),
])
def test_sweep_argument_errors(kw, exc):
    with pytest.raises(exc):
        sl.sweep(lambda p, s: {}, {"a": [1]}, progress=False, **kw)
    with pytest.raises(TypeError, match="run must be callable"):
        sl.sweep(None, {"a": [1]})


def test_results_file_resume_skips_done_jobs_and_extends(tmp_path):
    path = tmp_path / "sub" / "r.jsonl"
    calls = []
    lock = threading.Lock()

    def run(params, seed):
        with lock:
            calls.append((params["a"], seed))
        return {"y": params["a"] + seed % 1000}

    first = sl.sweep(run, {"a": [1, 2]}, repeats=2, results=path, progress=False)
    assert len(calls) == 4 and len(path.read_text().splitlines()) == 4
    calls.clear()
    again = sl.sweep(run, {"a": [1, 2]}, repeats=2, results=path, progress=False)
    assert calls == [] and metrics_of(again) == metrics_of(first)
    assert [r["time"] for r in again] == [r["time"] for r in first]  # read back, not rerun
    bigger = sl.sweep(run, {"a": [1, 2, 3]}, repeats=3, results=path, progress=False)
    assert sorted(calls) == sorted([(3, job_seed(0, r)) for r in range(3)]
                                   + [(a, job_seed(0, 2)) for a in (1, 2)])
    assert len(bigger) == 9 and metrics_of(bigger)[:2] == metrics_of(first)[:2]


def test_torn_last_line_is_skipped_and_the_file_repaired(tmp_path):
    path = tmp_path / "r.jsonl"
    full = sl.sweep(lambda p, s: {"y": p["a"]}, {"a": [1, 2, 3]}, results=path,
                    progress=False)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:17])  # killed mid-write
    with pytest.warns(RuntimeWarning, match="unreadable record"):
        assert len(load_results(path)) == 2
    with pytest.warns(RuntimeWarning, match="unreadable record"):
        again = sl.sweep(lambda p, s: {"y": p["a"]}, {"a": [1, 2, 3]}, results=path,
                         progress=False)
    assert [r["y"] for r in again] == [r["y"] for r in full]
    text = path.read_text().splitlines()
    assert len(text) == 4 and json.loads(text[3])["status"] == "ok"


@pytest.mark.parametrize("damage", ["invalid_utf8", "deeply_nested", "no_metrics",
                                    "metrics_not_a_dict", "no_key", "a_list"])
def test_resume_skips_each_kind_of_unreadable_line(tmp_path, damage):
    """Each damaged line is skipped with a warning naming it, and its job runs again. They
    used to stop the sweep with UnicodeDecodeError, RecursionError or KeyError."""
    path = tmp_path / "r.jsonl"
    run = lambda p, s: {"y": p["a"] * 10}   # noqa: E731
    full = sl.sweep(run, {"a": [1, 2, 3]}, results=path, progress=False)
    lines = path.read_bytes().splitlines()
    rec = json.loads(lines[1])
    bad = {"invalid_utf8": lines[1][:-2] + b"\xff\xfe}",
           "deeply_nested": b"[" * 200_000 + b"]" * 200_000,
           "no_metrics": json.dumps({k: v for k, v in rec.items() if k != "metrics"}).encode(),
           "metrics_not_a_dict": json.dumps(dict(rec, metrics=[1])).encode(),
           "no_key": json.dumps({k: v for k, v in rec.items() if k != "key"}).encode(),
           "a_list": b"[1, 2]"}[damage]
    path.write_bytes(b"\n".join([lines[0], bad, lines[2]]) + b"\n")
    with pytest.warns(RuntimeWarning, match=r"r\.jsonl:2: unreadable record skipped"):
        assert sorted(load_results(path)) == sorted(r["key"] for r in full
                                                    if r["key"] != rec["key"])
    calls = []

    def counting(p, s):
        calls.append(p["a"])
        return run(p, s)

    with pytest.warns(RuntimeWarning, match=r"r\.jsonl:2: unreadable"):
        again = sl.sweep(counting, {"a": [1, 2, 3]}, results=path, progress=False)
    assert calls == [rec["params"]["a"]] and [r["y"] for r in again] == [10, 20, 30]


def test_non_finite_metrics_are_standard_json_and_read_back(tmp_path):
    path = tmp_path / "r.jsonl"
    values = {1: math.nan, 2: math.inf, 3: -math.inf}
    run = lambda p, s: {"loss": values[p["a"]], "curve": [1.0, values[p["a"]]],   # noqa: E731
                        "label": "NaN" if p["a"] == 1 else "x"}
    first = sl.sweep(run, {"a": [1, 2, 3]}, results=path, progress=False)
    for line in path.read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard {name}"))
    assert '"loss":"NaN"' in path.read_text() and '"loss":"-Infinity"' in path.read_text()
    again = sl.sweep(lambda p, s: pytest.fail("rerun"), {"a": [1, 2, 3]}, results=path,
                     progress=False)
    for a, r, f in zip((1, 2, 3), again, first):
        assert isinstance(r["loss"], float) and math.isnan(r["loss"]) == math.isnan(values[a])
        if not math.isnan(values[a]):
            assert r["loss"] == values[a] == f["loss"]
        assert r["curve"][0] == 1.0 and isinstance(r["curve"][1], float)
    assert isinstance(again[0]["label"], float)    # the documented price: "NaN" reads as NaN
    assert again[1]["label"] == "x"


class _InterruptOnce:
    """A run function that raises KeyboardInterrupt in one chosen job, the first time only."""

    def __init__(self, when):
        self.when = when
        self.fired = False

    def __call__(self, params, seed):
        if not self.fired and params["envelope_power"] == self.when[0] and \
                seed == job_seed(0, self.when[1]):
            self.fired = True
            raise KeyboardInterrupt
        return small_run(params, seed)


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_sweep_resumes_to_the_uninterrupted_table(tmp_path, workers):
    reference = sl.sweep(small_run, GRID, repeats=2, progress=False)
    path = tmp_path / "r.jsonl"
    run = _InterruptOnce((2.0, 1))
    with pytest.raises(SweepInterrupted) as info:
        sl.sweep(run, GRID, repeats=2, results=path, progress=False, workers=workers)
    partial = info.value.results
    assert isinstance(info.value, KeyboardInterrupt) and 0 < len(partial) < 6
    assert len(load_results(path)) == len(partial)
    for rec in metrics_of(partial):  # what finished is kept, and is right
        assert rec in metrics_of(reference)
    resumed = sl.sweep(run, GRID, repeats=2, results=path, progress=False, workers=workers)
    assert metrics_of(resumed) == metrics_of(reference)


KILLED = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {python!r})
    sys.path.insert(0, {tests!r})
    import spikeloc as sl
    import test_sweep as t

    def run(params, seed):
        out = t.small_run(params, seed)
        if os.environ.get("SLOW_AFTER") and len(open({path!r}).read().splitlines()) >= 2:
            time.sleep(60)  # the parent kills us here
        return out

    sl.sweep(run, t.GRID, repeats=2, results={path!r}, progress=False, workers=1)
    print("finished")
""")


def test_killed_process_resumes_to_the_uninterrupted_table(tmp_path):
    """A sweep process killed with SIGKILL after two jobs keeps them; a rerun completes the
    table, equal to an uninterrupted run's."""
    path = tmp_path / "r.jsonl"
    code = KILLED.format(python=PYTHON_DIR, tests=str(Path(__file__).parent), path=str(path))
    env = dict(os.environ, SLOW_AFTER="1")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and len(path.read_text().splitlines()) >= 2:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    kept = load_results(path)
    assert len(kept) == 2
    env.pop("SLOW_AFTER")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "finished" in out.stdout, out.stderr[-3000:]
    resumed = sl.sweep(small_run, GRID, repeats=2, results=path, progress=False)  # all done
    reference = sl.sweep(small_run, GRID, repeats=2, progress=False)
    assert metrics_of(resumed) == metrics_of(reference)
    assert len(path.read_text().splitlines()) == 6  # nothing ran twice


# ---------------------------------------------------------------------------- determinism


def _listed(d):
    return {k: [v] for k, v in d.items()}


#: GRID with SMALL in it, for executors that need a module-level run function.
FULL_GRID = dict(GRID, **_listed(SMALL))


def test_bit_identical_across_runs_threads_and_executors():
    reference = metrics_of(sl.sweep(tutorial_experiment, FULL_GRID, repeats=2, progress=False,
                                    workers=1))
    assert [r["test_accuracy"] for r in reference] == \
        [r["test_accuracy"] for r in metrics_of(sl.sweep(small_run, GRID, repeats=2,
                                                          progress=False))]
    for kw in ({"workers": 1}, {"workers": 3}, {"job_threads": 2}, {"job_threads": 0}):
        assert metrics_of(sl.sweep(tutorial_experiment, FULL_GRID, repeats=2, progress=False,
                                   **kw)) == reference, kw
    with ThreadPoolExecutor(2) as pool:
        assert metrics_of(sl.sweep(tutorial_experiment, FULL_GRID, repeats=2, progress=False,
                                   executor=pool)) == reference
    # processes: spawn, not fork (the parent has kernel worker threads)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        table = sl.sweep(tutorial_experiment, FULL_GRID, repeats=2, progress=False,
                         executor=pool)
    assert metrics_of(table) == reference
    # another base seed gives other results
    assert metrics_of(sl.sweep(tutorial_experiment, FULL_GRID, repeats=2, progress=False,
                               seed=1)) != reference


def test_dask_local_cluster_equals_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = {"envelope_power": [0.5, 4.0], **_listed(SMALL)}
    reference = metrics_of(sl.sweep(tutorial_experiment, grid, repeats=2, progress=False))
    env = {"PYTHONPATH": os.pathsep.join([PYTHON_DIR, os.environ.get("PYTHONPATH", "")])}
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None, env=env) as cluster, \
            distributed.Client(cluster) as client:
        path = tmp_path / "dask.jsonl"
        table = sl.sweep(tutorial_experiment, grid, repeats=2, progress=False,
                         executor=client, results=path)
        workers = {json.loads(line)["worker"].split(":")[1]
                   for line in path.read_text().splitlines()}
        assert str(os.getpid()) not in workers  # it really ran in the worker processes
        # a failing job on a worker is recorded like a local one
        failed = sl.sweep(tutorial_experiment, {"no_such_parameter": [1]}, progress=False,
                          executor=client)
    assert metrics_of(table) == reference
    assert failed[0]["status"] == "error" and "no_such_parameter" in failed[0]["error"]


# ---------------------------------------------------------------------------- the table


def _fake_table():
    def run(params, seed):
        if params["k"] == 3 and seed == job_seed(0, 2):
            raise RuntimeError("unlucky")
        return {"acc": params["k"] * 0.1 + (seed % 7) * 0.01, "tag": f"k{params['k']}"}
    return sl.sweep(run, {"k": [3, 1, 2], "lr": [0.1]}, repeats=3, progress=False)


def test_summary_mean_and_spread():
    table = _fake_table()
    rows = table.summary()
    assert [r["k"] for r in rows] == [3, 1, 2]
    for row in rows:
        vals = table.values("acc", k=row["k"])
        assert row["n"] == len(vals) and row["failed"] == (1 if row["k"] == 3 else 0)
        assert row["acc_mean"] == pytest.approx(np.mean(vals), rel=1e-12, abs=0)
        assert row["acc_std"] == pytest.approx(np.std(vals), rel=1e-12, abs=1e-15)
        assert (row["acc_min"], row["acc_max"]) == (min(vals), max(vals))
        assert "tag_mean" not in row  # strings are not averaged
    rows1 = table.summary("acc", ddof=1)
    assert rows1[1]["acc_std"] == pytest.approx(np.std(table.values("acc", k=1), ddof=1),
                                                rel=1e-12)
    x, mean, std, n = table.series("acc", "k")
    assert x == [1, 2, 3] and n == [3, 3, 2]
    assert mean[2] == pytest.approx(np.mean(table.values("acc", k=3)), rel=1e-12)
    with pytest.raises(KeyError, match="unknown metric"):
        table.summary("nope")
    with pytest.raises(KeyError, match="unknown parameter"):
        table.series("acc", "nope")


def test_series_requires_fixing_other_parameters():
    table = sl.sweep(lambda p, s: {"y": p["a"] * p["b"]}, {"a": [1, 2], "b": [1, 10]},
                     progress=False)
    with pytest.raises(ValueError, match="'b' varies"):
        table.series("y", "a")
    assert table.series("y", "a", b=10)[1] == [10.0, 20.0]


def test_to_pandas_or_a_clear_error():
    table = _fake_table()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            table.to_pandas()
    else:
        df = table.to_pandas()
        assert len(df) == len(table) and list(df["k"]) == [r["k"] for r in table]
        assert df["status"].tolist().count("error") == 1


def test_errorbar_plot():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    table = _fake_table()
    fig = sl.plots.errorbar(table, ["acc"], "k", scale=100, lr=0.1)
    ax = fig.axes[0]
    x, mean, std, n = ax.errorbar_data["acc"]
    assert x == [1, 2, 3] and len(ax.containers) == 1
    line = ax.containers[0].lines[0]
    assert np.allclose(line.get_ydata(), np.asarray(mean) * 100)
    assert ax.get_xlabel() == "k"
    plt.close(fig)
    with pytest.raises(ValueError, match="labels"):
        sl.plots.errorbar(table, ["acc"], "k", labels=["a", "b"])


def test_spikeloc_sweep_is_the_module_and_callable():
    import importlib
    mod = importlib.import_module("spikeloc.sweep")
    assert sl.sweep is mod and callable(sl.sweep)
    assert sl.SweepResult is SweepResult and sl.SweepInterrupted is SweepInterrupted
    table = sl.sweep(lambda p, s: {"y": p["a"] * 2}, {"a": [1, 2]}, progress=False)
    assert [r["y"] for r in table] == [2, 4]
    again = mod.sweep(lambda p, s: {"y": p["a"] * 2}, {"a": [1, 2]}, progress=False)
    assert again.without_timing() == table.without_timing()
    assert "sweep" in dir(sl)
