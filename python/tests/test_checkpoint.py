"""Checkpoints: round trips, metadata, rejection of broken/foreign files, atomic writes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import checkpoint
from spikeloc.checkpoint import CheckpointError

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(sl.__file__)))


def _trained_snn(stim, seed=1):
    """An SNN whose weights differ from its seed's initial draw (so a round trip that only
    re-seeded would fail)."""
    net = sl.SNN.for_stimulus(stim, n_hidden=6, tau_hidden=5e-3, tau_output=7e-3,
                              readout="max", beta=4.0, seed=seed)
    rng = np.random.default_rng(99)
    net.w1 = net.w1 + rng.normal(0, 0.3, net.w1.shape)
    net.w2 = net.w2 + rng.normal(0, 0.3, net.w2.shape)
    return net


def _trained_mo(stim):
    net = sl.MembraneOnly.for_stimulus(stim, tau=8e-3, readout="mean", seed=4)
    net.w = net.w + np.random.default_rng(7).normal(0, 0.3, net.w.shape)
    return net


def test_snn_round_trip_identical_weights_and_predictions(tmp_path, small_data):
    stim, ipd, spikes, events, labels = small_data
    net = _trained_snn(stim)
    path = tmp_path / "snn.npz"
    assert net.save(path) == str(path)
    back = checkpoint.load(path)
    assert type(back) is sl.SNN
    assert back.config == net.config
    for name in ("w1", "w2"):
        got, want = getattr(back, name), getattr(net, name)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(back.logits(events), net.logits(events))
    np.testing.assert_array_equal(back.predict(spikes), net.predict(spikes))
    assert sl.SNN.load(path).config == net.config


def test_zero_reset_round_trip(tmp_path, small_data):
    """reset="zero" travels in the checkpoint: the loaded network runs it (its spikes are not
    those of the same weights under the same-step reset)."""
    stim, ipd, spikes, events, labels = small_data
    net = sl.SNN.for_stimulus(stim, n_hidden=6, tau_hidden=5e-3, reset="zero", seed=2)
    net.w1 = np.abs(net.w1) + 0.2  # strong input: units spike several times
    back = sl.load(net.save(tmp_path / "zero.npz"))
    assert back.reset == "zero" and back.config == net.config
    np.testing.assert_array_equal(back.w1, net.w1)
    out = back.forward(spikes)
    np.testing.assert_array_equal(out.hidden_spikes, net.forward(spikes).hidden_spikes)
    np.testing.assert_array_equal(out.logits, net.logits(events))
    same_step = sl.SNN.for_stimulus(stim, n_hidden=6, tau_hidden=5e-3, reset="same_step", seed=2)
    same_step.w1, same_step.w2 = net.w1, net.w2
    assert (same_step.forward(spikes).hidden_spikes != out.hidden_spikes).any()


def test_membrane_only_round_trip(tmp_path, small_data):
    stim, ipd, spikes, events, labels = small_data
    net = _trained_mo(stim)
    path = tmp_path / "mo.ckpt"                     # any name: written exactly as given
    checkpoint.save(net, path)
    assert os.listdir(tmp_path) == ["mo.ckpt"]
    back = sl.MembraneOnly.load(path)
    assert back.config == net.config
    assert back.tau == net.tau and back.readout == "mean"
    np.testing.assert_array_equal(back.w, net.w)
    a, b = back.forward(spikes), net.forward(spikes)
    np.testing.assert_array_equal(a.output_membrane, b.output_membrane)
    np.testing.assert_array_equal(back.predict(events), net.predict(events))
    with pytest.raises(CheckpointError, match="MembraneOnly, not a SNN"):
        sl.SNN.load(path)


def test_metadata_round_trip(tmp_path, small_stim):
    net = _trained_snn(small_stim)
    stim = small_stim.replace(envelope_power=3.5, phase_offset=0.25, null_phase_delays=True)
    extra = {"epochs": 3, "loss": [np.float32(2.5), 1.25], "acc": np.array([0.5, 0.75]),
             "note": "epoch 3"}
    path = tmp_path / "run.npz"
    net.save(path, stimulus=stim, extra=extra)
    model, header, stim_back = checkpoint.load_with_metadata(path)
    assert stim_back == stim and isinstance(stim_back, sl.Stimulus)
    assert header["format"] == "spikeloc-checkpoint"
    assert header["format_version"] == 1
    assert header["spikeloc_version"] == sl.__version__
    assert header["model"] == "SNN"
    assert header["config"] == {k: v for k, v in net.config.items() if k != "model"}
    assert header["extra"] == {"epochs": 3, "loss": [2.5, 1.25], "acc": [0.5, 0.75],
                               "note": "epoch 3"}
    assert header["params"]["w1"] == {"shape": [16, 6], "dtype": "float32"}
    assert checkpoint.read_header(path) == header
    # Without a stimulus: None back.
    net.save(path)
    assert checkpoint.load_with_metadata(path)[2] is None
    # The archive is a plain npz readable without pickle.
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(["w1", "w2", checkpoint.HEADER_KEY])
        assert npz[checkpoint.HEADER_KEY].dtype == np.uint8


def test_save_rejects_bad_arguments(tmp_path, small_stim):
    net = _trained_snn(small_stim)
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="extra must be JSON-serialisable"):
        net.save(path, extra={"f": object()})
    with pytest.raises(TypeError, match="stimulus"):
        net.save(path, stimulus={"dt": 1e-3})
    with pytest.raises(TypeError, match="model"):
        checkpoint.save(object(), path)
    net.w2[0, 0] = np.nan
    with pytest.raises(ValueError, match="w2"):
        net.save(path)
    assert os.listdir(tmp_path) == []               # nothing written, no temporaries left


def test_truncated_file_raises_checkpoint_error_naming_file(tmp_path, small_stim):
    path = tmp_path / "trunc.npz"
    _trained_snn(small_stim).save(path, stimulus=small_stim)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a spikeloc checkpoint") as e:
        checkpoint.load(path)
    assert str(path) in str(e.value)
    assert isinstance(e.value, ValueError)
    # A few bytes only, and an empty file.
    for size in (3, 0):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="trunc.npz"):
            checkpoint.load(path)


def test_corrupted_payload_detected(tmp_path, small_stim):
    """Flipping bytes inside a stored weight array fails the zip CRC check."""
    path = tmp_path / "bad.npz"
    net = _trained_snn(small_stim)
    net.save(path)
    data = bytearray(path.read_bytes())
    raw = net.w1.tobytes()
    at = bytes(data).find(raw[:64])
    assert at > 0
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="bad.npz"):
        checkpoint.load(path)


def test_random_bytes_and_other_files(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="noise.npz.*not a spikeloc checkpoint"):
        checkpoint.load(path)
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError, match="plain.npy"):
        checkpoint.load(npy)
    with pytest.raises(CheckpointError, match="directory"):
        checkpoint.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        checkpoint.load(tmp_path / "missing.npz")


def test_foreign_npz_rejected(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, w1=np.zeros((4, 3), np.float32), something=np.arange(5))
    with pytest.raises(CheckpointError, match="foreign.npz.*without a spikeloc header"):
        checkpoint.load(path)


def _rewrite(path, header=None, **arrays):
    """Rewrite a checkpoint with a modified header and/or arrays."""
    with np.load(path, allow_pickle=False) as npz:
        content = {k: npz[k] for k in npz.files}
    if header is not None:
        content[checkpoint.HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    content.update(arrays)
    np.savez(path, **content)


def test_wrong_version_and_format_rejected(tmp_path, small_stim):
    path = str(tmp_path / "v.npz")
    net = _trained_snn(small_stim)
    net.save(path)
    header = checkpoint.read_header(path)
    _rewrite(path, dict(header, format_version=2))
    with pytest.raises(CheckpointError, match=r"v\.npz.*unsupported checkpoint format version 2"):
        checkpoint.load(path)
    _rewrite(path, dict(header, format_version="1"))
    with pytest.raises(CheckpointError, match="format_version must be an integer"):
        checkpoint.load(path)
    _rewrite(path, dict(header, format="other-format"))
    with pytest.raises(CheckpointError, match="'other-format'"):
        checkpoint.load(path)
    _rewrite(path, dict(header, model="Transformer"))
    with pytest.raises(CheckpointError, match="unknown model class 'Transformer'"):
        checkpoint.load(path)
    _rewrite(path, dict(header, config=dict(header["config"], tau_hidden=-1.0)))
    with pytest.raises(CheckpointError, match="invalid SNN configuration"):
        checkpoint.load(path)
    # Header stored with the wrong dtype.
    net.save(path)
    _rewrite(path, **{checkpoint.HEADER_KEY: np.array(json.dumps(header))})
    with pytest.raises(CheckpointError, match="uint8"):
        checkpoint.load(path)


def test_shape_and_dtype_mismatch_rejected(tmp_path, small_stim):
    path = str(tmp_path / "s.npz")
    net = _trained_snn(small_stim)
    net.save(path)
    _rewrite(path, w1=np.zeros((16, 7), np.float32))
    with pytest.raises(CheckpointError, match=r"'w1' has shape \(16, 7\)"):
        checkpoint.load(path)
    net.save(path)
    _rewrite(path, w2=net.w2.astype(np.float64))
    with pytest.raises(CheckpointError, match="'w2' must be float32, got float64"):
        checkpoint.load(path)
    net.save(path)
    _rewrite(path, w3=np.zeros(2, np.float32))
    with pytest.raises(CheckpointError, match="w3"):
        checkpoint.load(path)
    net.save(path)
    bad = net.w1.copy()
    bad[1, 1] = np.inf
    _rewrite(path, w1=bad)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        checkpoint.load(path)


def test_save_replaces_existing_file(tmp_path, small_stim):
    path = tmp_path / "c.npz"
    first = _trained_snn(small_stim, seed=1)
    second = _trained_snn(small_stim, seed=2)
    first.save(path)
    second.save(path)
    np.testing.assert_array_equal(checkpoint.load(path).w1, second.w1)
    assert os.listdir(tmp_path) == ["c.npz"]


def test_failed_write_in_process_leaves_previous_file(tmp_path, small_stim, monkeypatch):
    path = tmp_path / "keep.npz"
    first = _trained_snn(small_stim, seed=1)
    first.save(path, extra={"run": "first"})
    before = path.read_bytes()
    real_savez = np.savez
    seen = []

    def failing_savez(file, **arrays):
        # Write part of a genuine archive into the temporary file, then fail.
        real_savez(file, **arrays)
        file.flush()
        seen.extend(n for n in os.listdir(tmp_path) if n != "keep.npz")
        file.truncate(100)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _trained_snn(small_stim, seed=2).save(path)
    monkeypatch.setattr(np, "savez", real_savez)
    assert len(seen) == 1 and seen[0].endswith(".tmp")  # the temporary, in the same directory
    assert not (tmp_path / seen[0]).exists()            # ... removed after the failure
    assert os.listdir(tmp_path) == ["keep.npz"]
    assert path.read_bytes() == before
    model, header, _ = checkpoint.load_with_metadata(path)
    np.testing.assert_array_equal(model.w1, first.w1)
    assert header["extra"] == {"run": "first"}


def test_failed_replace_in_process_leaves_previous_file(tmp_path, small_stim, monkeypatch):
    path = tmp_path / "keep.npz"
    first = _trained_snn(small_stim, seed=1)
    first.save(path)

    def no_replace(src, dst):
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="replace failed"):
        _trained_snn(small_stim, seed=2).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["keep.npz"]
    np.testing.assert_array_equal(checkpoint.load(path).w1, first.w1)


# A writer killed with SIGKILL while inside save(): at "savez" it has written half of the
# archive into the temporary file; at "fsync" the temporary file is complete but not renamed.
_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import spikeloc as sl
    from spikeloc import checkpoint

    target, marker, stage = sys.argv[1], sys.argv[2], sys.argv[3]
    net = sl.SNN(16, 6, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, seed=77)
    real_savez = np.savez

    def stall():
        with open(marker, "w") as f:
            f.write("inside")
        time.sleep(120)

    def slow_savez(file, **arrays):
        import io
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        file.write(data[: len(data) // 2])
        file.flush()
        stall()
        file.write(data[len(data) // 2:])

    def slow_fsync(fd):
        stall()

    if stage == "savez":
        np.savez = slow_savez
    else:
        os.fsync = slow_fsync
    checkpoint.save(net, target, extra={"big": list(range(20000))})
    print("finished")
""")


@pytest.mark.parametrize("stage", ["savez", "fsync"])
def test_killed_writer_leaves_previous_file(tmp_path, small_stim, stage):
    target = tmp_path / "model.npz"
    marker = tmp_path / "inside.marker"
    first = _trained_snn(small_stim, seed=1)
    first.save(target, stimulus=small_stim)
    before = target.read_bytes()
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(marker), stage],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "writer never reached the write"
            time.sleep(0.02)
        # The writer is stalled inside save(): its temporary file exists next to the target.
        temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(temps) == 1 and temps[0].startswith(".model.npz.")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The target is byte-for-byte the first checkpoint and loads to the first model.
    assert target.read_bytes() == before
    model, header, stim = checkpoint.load_with_metadata(target)
    np.testing.assert_array_equal(model.w1, first.w1)
    np.testing.assert_array_equal(model.w2, first.w2)
    assert stim == small_stim
    # Only the writer's hidden temporary file was left behind, never a partial target.
    leftovers = sorted(set(os.listdir(tmp_path)) - {"model.npz", "inside.marker"})
    assert leftovers == temps
    tmp_file = tmp_path / temps[0]
    if stage == "savez":                            # half an archive: not loadable
        with pytest.raises(CheckpointError, match="truncated"):
            checkpoint.load(tmp_file)
    else:                                           # complete, but never renamed
        assert zipfile.is_zipfile(tmp_file)
        assert checkpoint.load(tmp_file).seed == 77
