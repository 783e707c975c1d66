"""The command line: a short training run end to end, and its outputs."""

import json
import subprocess
import sys

import numpy as np

import spikeloc as sl
import spikeloc.checkpoint  # noqa: F401
from spikeloc.__main__ import main


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


def test_cli_rejects_bad_options(capsys):
    result = subprocess.run([sys.executable, "-m", "spikeloc", "train", "--phase-offset", "x"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "--phase-offset" in result.stderr + result.stdout
    code = main(["train", "--epochs", "1", "--tau-ms", "-3", "--no-progress",
                 "--train-batches", "1", "--test-batches", "1"])
    assert code == 2
    assert "tau" in capsys.readouterr().err


def test_cli_per_epoch_phase_and_delay_noise(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--train-batches", "2", "--test-batches", "1",
                 "--batch-size", "16", "--hidden", "8", "--phase-offset", "per_epoch",
                 "--delay-noise", "0.2", "--out", str(out), "--no-progress"])
    assert code == 0
    _, _, stim = sl.checkpoint.load_with_metadata(out / "model.npz")
    assert stim.phase_offset == "per_epoch" and stim.phase_delay_noise == 0.2
    code = main(["train", "--epochs", "1", "--delay-noise", "-1", "--no-progress",
                 "--train-batches", "1", "--test-batches", "1"])
    assert code == 2
    assert "phase_delay_noise" in capsys.readouterr().err
