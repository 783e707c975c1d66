"""Robustness fuzzing (python/tests/fuzz_robustness.py) in a subprocess: >= 10,000
derandomized hypothesis cases over the public API and every kernel entry point (also under
concurrent writes into its arrays); the
interpreter must survive all of them (a segfault or abort shows up as the subprocess dying)
and every failure must be one of the documented exception types."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.evaluation import labels_from_ipd

pytest.importorskip("hypothesis")

SCRIPT = Path(__file__).with_name("fuzz_robustness.py")


def test_fuzzing_never_crashes_and_raises_only_documented_errors():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(sl.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=900, env=env)
    running = [line for line in out.stdout.splitlines() if line.startswith("target ")]
    assert out.returncode == 0, (
        f"the fuzzing process died (status {out.returncode}) in {running[-1:]}:\n"
        f"{out.stdout[-2000:]}\n{out.stderr[-6000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["unexpected"] == [], json.dumps(summary["unexpected"], indent=1)[:6000]
    assert summary["total"] >= 10_000, summary["cases"]
    # every kernel entry point of the extension is among the fuzzed calls
    from spikeloc import _native as native
    entry_points = {n for n in dir(native) if callable(getattr(native, n)) and not n.startswith("_")}
    assert set(summary["native_entry_points"]) == entry_points
    # ... and each was called while another thread wrote into every array it was given
    assert set(summary["concurrent_entry_points"]) == entry_points
    # every target also reached calls that succeed, i.e. got past the argument checks
    for target, calls in summary["calls"].items():
        assert summary["returned"].get(target, 0) > 0, (target, summary["returned"])


@pytest.mark.parametrize("call", [
    lambda stim, net, ipd, x: sl.evaluate(net, ipd, x, stim),
    lambda stim, net, ipd, x: sl.train(net, ipd, x, stimulus=stim, epochs=1, progress=False),
    lambda stim, net, ipd, x: stim.labels(ipd),
    lambda stim, net, ipd, x: stim.abs_error_deg(ipd, np.zeros(len(ipd), np.int64)),
    lambda stim, net, ipd, x: labels_from_ipd(ipd, 4),
])
def test_complex_ipds_are_rejected_not_truncated(call, small_data, small_snn):
    """Found by the fuzzing: complex IPDs used to lose their imaginary part silently."""
    stim, ipd, spikes, ev, labels = small_data
    with pytest.raises(TypeError, match="ipd must be a real array"):
        call(stim, small_snn, ipd.astype(np.complex128) + 1j, ev)


# ---- found by the fuzzing of the research variants, data options, analysis and e-prop ------

def _eprop_file(tmp_path, recurrent=True):
    net = sl.EPropNetwork(6, 3, 4, window=2, recurrent=recurrent, threads=1)
    return net, net.save(str(tmp_path / "net.npz"))


def _rewrite(path, **changes):
    """Rewrite an npz archive with some arrays replaced (None: removed)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _header(obj):
    import json
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


@pytest.mark.parametrize("damage", ["empty", "truncated", "bad_crc", "header_list",
                                    "header_json", "no_feedback", "feedback_shape",
                                    "feedback_complex", "config_field", "not_npz"])
def test_damaged_eprop_files_raise_checkpoint_error_naming_the_file(tmp_path, damage):
    """Used to escape as EOFError, zipfile.BadZipFile, KeyError or AttributeError."""
    net, path = _eprop_file(tmp_path)
    raw = open(path, "rb").read()
    key = sl.checkpoint.HEADER_KEY
    if damage == "empty":
        open(path, "wb").close()
    elif damage == "truncated":
        open(path, "wb").write(raw[: len(raw) // 2])
    elif damage == "bad_crc":  # a byte of the last array's data (the CRC no longer matches)
        data = bytearray(raw)
        data[raw.rindex(b"\x93NUMPY") + 140] ^= 0xFF
        open(path, "wb").write(bytes(data))
    elif damage == "header_list":
        _rewrite(path, **{key: _header([1, 2])})
    elif damage == "header_json":
        _rewrite(path, **{key: np.frombuffer(b"{", np.uint8)})
    elif damage == "no_feedback":
        _rewrite(path, feedback=None)
    elif damage == "feedback_shape":
        _rewrite(path, feedback=np.zeros((2, 2), np.float32))
    elif damage == "feedback_complex":
        _rewrite(path, feedback=np.zeros(net.feedback_weights.shape, np.complex64))
    elif damage == "config_field":
        header = sl.checkpoint.read_header(path)
        header["config"]["window"] = "x"
        _rewrite(path, **{key: _header(header)})
    else:
        np.save(path + ".npy", np.zeros(3))
        path = path + ".npy"
    with pytest.raises(sl.CheckpointError, match=str(path).replace(".", r"\.")):
        sl.EPropNetwork.load(path)


def test_eprop_load_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        sl.EPropNetwork.load(tmp_path / "nope.npz")
    with pytest.raises(sl.CheckpointError, match="is a directory"):
        sl.EPropNetwork.load(tmp_path)
    net, path = _eprop_file(tmp_path, recurrent=False)  # still loads after the new checks
    back = sl.EPropNetwork.load(path, threads=1)
    assert back.w_rec is None and np.array_equal(back.w_in, net.w_in)
    assert np.array_equal(back.feedback_weights, net.feedback_weights)


@pytest.mark.parametrize("method", [99, 8])
def test_checkpoint_with_a_damaged_compression_method_raises_checkpoint_error(
        tmp_path, small_snn, method):
    """Used to escape as NotImplementedError (an unknown method) or zlib.error (deflate)."""
    path = small_snn.save(str(tmp_path / "model.npz"))
    data = bytearray(open(path, "rb").read())
    central = data.index(b"PK\x01\x02")            # first central-directory entry
    data[central + 10:central + 12] = method.to_bytes(2, "little")
    open(path, "wb").write(bytes(data))
    with pytest.raises(sl.CheckpointError, match="model.npz"):
        sl.load(path)


def test_nmnist_read_events_of_a_directory_names_it(tmp_path):
    """Used to escape as IsADirectoryError."""
    from spikeloc.datasets import nmnist
    with pytest.raises(nmnist.NMNISTFormatError, match="is a directory"):
        nmnist.read_events(tmp_path)


def test_complex_per_neuron_tau_is_rejected_before_any_cast(small_stim):
    """for_stimulus averaged complex hidden taus (a ComplexWarning) before the check."""
    import warnings
    tau = np.full(5, 5e-3, np.complex128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="tau_hidden"):
            sl.SNN.for_stimulus(small_stim, n_hidden=5, tau_hidden=tau)


def test_bptt_view_validates_like_the_eprop_kernels(small_data):
    """BPTTView.loss_and_grad indexed the dense spikes with whatever it was given
    (IndexError for a float index) and ran the reference on unchecked inputs."""
    stim, ipd, spikes, ev, labels = small_data
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=3, threads=1)
    view = net.bptt()
    with pytest.raises(TypeError, match="index"):
        view.loss_and_grad(spikes, labels[:2], index=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="index"):
        view.loss_and_grad(spikes, labels[:2], index=np.array([0, 99]))
    with pytest.raises(ValueError, match="n_in"):
        view.loss_and_grad(spikes[:, :, :-1], labels)
    long = sl.EPropNetwork.for_stimulus(stim, n_hidden=3, window=stim.steps + 1, threads=1)
    with pytest.raises(ValueError, match="window"):
        long.bptt().loss_and_grad(ev, labels)
    loss, grads = view.loss_and_grad(ev, labels[:4], index=np.arange(4))
    assert np.isfinite(loss) and set(grads) == set(net.parameters())


@pytest.mark.parametrize("make", [
    lambda stim: sl.EPropNetwork.for_stimulus(stim, n_hidden=3, threads=1),
    lambda stim: sl.MembraneOnly.for_stimulus(stim, threads=1),
    lambda stim: object(),
])
def test_tuning_curves_of_a_model_without_hidden_spikes_is_a_type_error(make, small_data):
    """Used to escape as AttributeError ('EPropOutput' object has no attribute
    'hidden_spikes')."""
    stim, ipd, spikes, ev, labels = small_data
    with pytest.raises(TypeError, match="hidden_spikes"):
        sl.tuning_curves(make(stim), ipd, ev, dt=stim.dt)
