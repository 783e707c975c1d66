"""Checkpoints under hostile and careless use: one format and one atomic writer for every
model (EPropNetwork included), files that lie about their sizes, damaged headers, targets that
are not regular files, and two writers of one path."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
import spikeloc.checkpoint as checkpoint
from spikeloc.checkpoint import CheckpointError

import hostile_files

HERE = Path(__file__).resolve().parent
PYTHON_DIR = str(Path(sl.__file__).resolve().parent.parent)
MB = 1 << 20


def _models():
    """A model of every class (and a variant SNN with learned time constants), with weights
    that differ from their initial draw."""
    rng = np.random.default_rng(5)
    snn = sl.SNN(12, 7, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, seed=2, threads=1)
    variant = sl.SNN(12, 7, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, seed=3, threads=1,
                     learn_tau=True, tau_sigma=1e-3, dale=sl.Dale(0.5))
    membrane = sl.MembraneOnly(12, 4, dt=1e-3, tau=5e-3, seed=4, threads=1)
    eprop = sl.EPropNetwork(12, 7, 4, window=3, sparsity_rec=0.5, seed=6, threads=1)
    for net in (snn, variant, membrane, eprop):
        for name, w in net.parameters().items():
            if isinstance(net, sl.EPropNetwork):
                setattr(net, name, w + rng.uniform(0.0, 0.1, w.shape))   # masked
            else:
                w += rng.uniform(0.0, 0.1, w.shape).astype(np.float32)
    return {"snn": snn, "variant": variant, "membrane": membrane, "eprop": eprop}


def _same_model(a, b):
    assert type(a) is type(b) and a.config == b.config
    for name, w in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[name], w)
    if isinstance(a, sl.EPropNetwork):
        np.testing.assert_array_equal(a.feedback_weights, b.feedback_weights)
        for name, m in a.masks.items():
            np.testing.assert_array_equal(b.masks[name], m)


# ---------------------------------------------------------------------------- one format

@pytest.mark.parametrize("kind", ["snn", "variant", "membrane", "eprop"])
def test_every_model_round_trips_through_one_format(tmp_path, kind, small_stim):
    net = _models()[kind]
    path = str(tmp_path / "m.npz")
    net.save(path, stimulus=small_stim, extra={"kind": kind})
    for back in (sl.load(path), type(net).load(path), checkpoint.load(path, threads=1)):
        _same_model(net, back)
    model, header, stim = checkpoint.load_with_metadata(path)
    assert header["format"] == checkpoint.FORMAT_NAME and header["model"] == type(net).__name__
    assert header["extra"] == {"kind": kind} and stim == small_stim
    other = sl.MembraneOnly if kind != "membrane" else sl.SNN
    with pytest.raises(CheckpointError, match=f"holds a {type(net).__name__}, not a "
                                              f"{other.__name__}"):
        other.load(path)


@pytest.mark.parametrize("kind", ["snn", "variant", "membrane", "eprop"])
def test_layout_from_the_configuration_matches_the_model(kind):
    """What a checkpoint must hold is computed from the configuration alone (before any
    allocation); it is exactly what the model saves."""
    net = _models()[kind]
    config = dict(net.config)
    config.pop("model")
    layout = type(net)._checkpoint_layout(config)
    arrays = net._checkpoint_arrays()
    assert set(layout) == set(arrays)
    for name, (shape, dtype) in layout.items():
        assert arrays[name].shape == tuple(shape) and arrays[name].dtype == np.dtype(dtype)


def test_eprop_refuses_non_finite_weights_and_leaves_nothing(tmp_path):
    net = _models()["eprop"]
    net._w_out[0, 0] = np.nan
    with pytest.raises(ValueError, match="w_out"):
        net.save(tmp_path / "e.npz")
    net = _models()["eprop"]
    net._feedback[1, 1] = np.inf
    with pytest.raises(ValueError, match="feedback"):
        net.save(tmp_path / "e.npz")
    assert os.listdir(tmp_path) == []


def test_eprop_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    net = _models()["eprop"]
    path = tmp_path / "e.npz"
    net.save(path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["e.npz"] and path.read_bytes() == before


@pytest.mark.parametrize("kind", ["snn", "eprop"])
def test_two_threads_saving_to_one_path(tmp_path, kind):
    """Each save writes its own temporary file, so concurrent saves never fail and the file
    is always one of the two complete models."""
    first = _models()[kind]
    second = _models()[kind]
    for w in second.parameters().values():
        w *= 2
    path = str(tmp_path / "shared.npz")
    errors = []

    def saver(net):
        try:
            for _ in range(40):
                net.save(path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=saver, args=(net,)) for net in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        back = sl.load(path)
        winner = first if np.array_equal(back.parameters()[next(iter(back.parameters()))],
                                          next(iter(first.parameters().values()))) else second
        _same_model(winner, back)
    assert os.listdir(tmp_path) == ["shared.npz"]


def test_targets_that_are_not_regular_files_are_refused(tmp_path):
    net = _models()["snn"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    os.symlink(fifo, tmp_path / "link-to-fifo")
    for target in ("fifo", "dir", "link-to-fifo"):
        with pytest.raises(ValueError, match="refusing to replace it"):
            net.save(tmp_path / target)
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "dir").is_dir()
    assert os.path.islink(tmp_path / "link-to-fifo")
    assert sorted(os.listdir(tmp_path)) == ["dir", "fifo", "link-to-fifo"]
    # a link to a regular file is followed: the link stays, the file it names is replaced
    real = tmp_path / "dir" / "real.npz"
    real.write_bytes(b"old")
    os.symlink(real, tmp_path / "latest.npz")
    net.save(tmp_path / "latest.npz")
    assert os.path.islink(tmp_path / "latest.npz")
    _same_model(net, sl.load(real))


# ---------------------------------------------------------------------------- damaged files

@pytest.mark.parametrize("kind", ["snn", "eprop"])
def test_flipped_byte_in_an_npy_header_is_a_checkpoint_error(tmp_path, kind):
    """Used to escape as tokenize.TokenError (NumPy's header parser)."""
    net = _models()[kind]
    path = tmp_path / "f.npz"
    net.save(path)
    name = "w1" if kind == "snn" else "w_in"
    path.write_bytes(hostile_files.flipped_npy_header(path.read_bytes(), name))
    with pytest.raises(CheckpointError, match="f.npz"):
        type(net).load(path)
    with pytest.raises(CheckpointError, match="f.npz"):
        sl.load(path)


@pytest.mark.parametrize("kind", ["snn", "eprop"])
def test_json_nested_deeply_is_a_checkpoint_error(tmp_path, kind):
    """Used to escape as RecursionError."""
    net = _models()[kind]
    path = tmp_path / "deep.npz"
    net.save(path)
    path.write_bytes(hostile_files.deep_json(path.read_bytes(), 200_000))
    for read in (sl.load, type(net).load, checkpoint.read_header):
        with pytest.raises(CheckpointError, match="deep.npz.*nested too deeply"):
            read(path)


def test_header_too_large_for_its_file_is_refused_on_both_sides(tmp_path):
    net = _models()["membrane"]
    with pytest.raises(ValueError, match="make extra smaller"):
        net.save(tmp_path / "x.npz", extra=["x" * 100] * 20_000)
    assert os.listdir(tmp_path) == []
    net.save(tmp_path / "x.npz")
    data = (tmp_path / "x.npz").read_bytes()
    text = json.dumps(dict(hostile_files.header_of(data), extra=[0] * 700_000)).encode()
    (tmp_path / "x.npz").write_bytes(hostile_files.with_header(data, text))
    with pytest.raises(CheckpointError, match="header has .* bytes, more than"):
        sl.load(tmp_path / "x.npz")


# A child process loads each file and reports its peak resident memory above what it used
# before the load (VmHWM after resetting it through /proc/self/clear_refs).
_MEASURE = """
import json, sys
import spikeloc as sl
import spikeloc.checkpoint
sl.EPropNetwork(3, 2, 2); sl.SNN(3, 2, 2, dt=1e-3, tau_hidden=0.01, tau_output=0.01)

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

results = {}
for path in sys.argv[1:]:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
    try:
        sl.load(path)
        outcome = "loaded"
    except sl.CheckpointError as e:
        outcome = "CheckpointError"
    except Exception as e:
        outcome = f"{type(e).__name__}: {e}"
    results[path] = [outcome, status("VmHWM") - before]
print(json.dumps(results))
"""


def _env():
    return dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _peak_memory(paths):
    out = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, paths)], timeout=300,
                         capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_hostile_files_fail_fast_within_the_memory_bound(tmp_path):
    """Every hostile kind, for every model class: CheckpointError, and peak memory while
    loading <= 64 MB + 4 x the file's size. Before the size checks a 20 KB file announcing
    15000 x 15000 weights took 2.7 GB, and a deflated 160 MB member was inflated whole."""
    files = {}
    for kind, net in _models().items():
        good = tmp_path / f"{kind}.npz"
        net.save(good)
        data = good.read_bytes()
        for name, build in hostile_files.BUILDERS.items():
            path = tmp_path / f"{kind}-{name}.npz"
            path.write_bytes(build(data))
            files[str(path)] = (kind, name)
    # the reported case at full size: a 1.6 MB file holding a 1.6 GB member
    path = tmp_path / "snn-1.6GB-member.npz"
    path.write_bytes(hostile_files.huge_extra_member((tmp_path / "snn.npz").read_bytes()))
    files[str(path)] = ("snn", "huge_extra_member 1.6 GB")
    results = _peak_memory(files)
    failures = []
    for path, (outcome, peak) in results.items():
        bound = 64 * MB + 4 * os.path.getsize(path)
        if outcome != "CheckpointError" or peak > bound:
            failures.append((files[path], outcome, f"{peak / MB:.0f} MB > {bound / MB:.0f} MB"
                             if peak > bound else ""))
    assert failures == [] and len(results) == len(files) >= 40


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_large_genuine_files_load_within_the_memory_bound(tmp_path):
    """The bound holds for genuine files too: loading draws the initial weights a block at a
    time and reads each array in place (about 2 x the file for an SNN)."""
    nets = [sl.SNN(1000, 3000, 12, dt=1e-3, tau_hidden=0.02, tau_output=0.02, threads=1),
            sl.EPropNetwork(100, 1500, 12, threads=1)]
    paths = [net.save(tmp_path / f"big{i}.npz") for i, net in enumerate(nets)]
    for path, (outcome, peak) in _peak_memory(paths).items():
        assert outcome == "loaded"
        assert peak <= 64 * MB + 4 * os.path.getsize(path), (path, peak / MB)
        assert os.path.getsize(path) > 9 * MB


def test_initial_weights_drawn_in_blocks_equal_one_draw(monkeypatch):
    """Drawing a block of rows at a time (to bound memory) gives the values of one draw."""
    from spikeloc import network
    for block in (1, 7, 1 << 20):
        monkeypatch.setattr(network, "DRAW_BLOCK", block)
        for draw in ("uniform", "standard_normal", "random"):
            rng, ref = np.random.default_rng(3), np.random.default_rng(3)
            got = network.draw_in_blocks(lambda size: getattr(rng, draw)(size=size), (13, 5, 2))
            want = getattr(ref, draw)(size=(13, 5, 2)).astype(np.float32)
            np.testing.assert_array_equal(got, want)
            assert rng.random() == ref.random()     # the generators stay in step


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    """A member holding pickled objects is refused from its .npy header; the pickle (which
    would create a file) never runs."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    net = _models()["snn"]
    path = tmp_path / "p.npz"
    net.save(path)
    members = hostile_files.members_of(path.read_bytes())
    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    for m in members:
        if m.name == "w1.npy":
            buf = __import__("io").BytesIO()
            np.lib.format.write_array(buf, evil, allow_pickle=True)
            m.payload, m.crc = buf.getvalue(), __import__("zlib").crc32(buf.getvalue())
            m.size = len(m.payload)
    path.write_bytes(hostile_files.archive(members))
    assert pickle.dumps(evil)  # the payload is a genuine pickle
    with pytest.raises(CheckpointError, match="p.npz: member 'w1'"):
        sl.load(path)
    assert not (tmp_path / "pwned").exists()
