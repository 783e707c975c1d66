"""Careless and hostile arguments that used to hang, read without bound, leave their
directory or fail far from their cause: the N-MNIST reader, Stimulus sizes, and model
options given as the wrong kind of value."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.datasets import nmnist

PYTHON_DIR = str(Path(sl.__file__).resolve().parent.parent)


def _env():
    return dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _sample(path, n=3):
    ev = np.zeros((n, 5), np.uint8)
    ev[:, 0] = np.arange(n) % 34
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ev.tobytes())


# ---------------------------------------------------------------------------- N-MNIST

_READ = """
import sys
import spikeloc as sl
from spikeloc.datasets import nmnist
read = {"nmnist": nmnist.read_events, "checkpoint": sl.load}[sys.argv[1]]
try:
    read(sys.argv[2])
except ValueError as e:   # NMNISTFormatError and CheckpointError
    print("refused:", e)
"""


@pytest.mark.parametrize("reader, what", [("nmnist", "an N-MNIST event file"),
                                          ("checkpoint", "a spikeloc checkpoint file")])
def test_devices_and_fifos_are_refused_without_blocking(tmp_path, reader, what):
    """/dev/zero was read until MemoryError; a FIFO blocked forever in open()."""
    fifo = tmp_path / "sample.bin"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo)):
        out = subprocess.run([sys.executable, "-c", _READ, reader, target],
                             capture_output=True, text=True, timeout=60, env=_env())
        assert out.returncode == 0, out.stderr
        assert "refused" in out.stdout and f"not {what}" in out.stdout


def test_read_events_bounds_the_read(tmp_path):
    path = tmp_path / "big.bin"
    _sample(path, 40)
    assert len(nmnist.read_events(path, max_bytes=200)) == 40
    with pytest.raises(nmnist.NMNISTFormatError, match="big.bin: larger than 199 bytes"):
        nmnist.read_events(path, max_bytes=199)
    assert nmnist.MAX_FILE_BYTES >= 1 << 20


@pytest.mark.parametrize("split", ["..", ".", "", "/etc", "Train/../..", "../outside"])
def test_split_names_a_directory_inside_the_root(tmp_path, split):
    _sample(tmp_path / "root" / "Train" / "0" / "a.bin")
    _sample(tmp_path / "outside" / "0" / "b.bin")
    with pytest.raises(ValueError, match="split must name a directory inside the data root"):
        nmnist.list_files(tmp_path / "root", split)


def test_symbolic_links_out_of_the_root_are_refused(tmp_path):
    """The reader followed links to anywhere; links inside the root still work."""
    root = tmp_path / "root"
    _sample(root / "Train" / "0" / "a.bin")
    _sample(tmp_path / "elsewhere" / "secret.bin")
    _sample(tmp_path / "elsewhere" / "7" / "c.bin")
    os.symlink(root / "Train" / "0" / "a.bin", root / "Train" / "0" / "inside.bin")
    paths, labels = nmnist.list_files(root, "Train")
    assert [os.path.basename(p) for p in paths] == ["a.bin", "inside.bin"]
    os.symlink(tmp_path / "elsewhere" / "secret.bin", root / "Train" / "0" / "z.bin")
    with pytest.raises(nmnist.NMNISTFormatError, match="z.bin.*outside the data root"):
        nmnist.list_files(root, "Train")
    os.remove(root / "Train" / "0" / "z.bin")
    os.symlink(tmp_path / "elsewhere" / "7", root / "Train" / "7")
    with pytest.raises(nmnist.NMNISTFormatError, match="7.*outside the data root"):
        nmnist.load(root, "Train", steps=5)
    os.remove(root / "Train" / "7")
    os.symlink(tmp_path / "elsewhere", root / "Test")
    with pytest.raises(nmnist.NMNISTFormatError, match="Test.*outside the data root"):
        nmnist.list_files(root, "Test")
    # a root that is itself a link is fine: it is resolved first
    os.symlink(root, tmp_path / "link-to-root")
    assert len(nmnist.list_files(tmp_path / "link-to-root", "Train")[0]) == 2


# ---------------------------------------------------------------------------- Stimulus

@pytest.mark.parametrize("kw", [{"duration": 100.0}, {"duration": 65.5355},
                                {"dt": 1e-300}, {"dt": 5e-324}])
def test_stimulus_refuses_more_steps_than_events_hold(kw):
    """T > 65535 used to generate data every network refused; a tiny dt gave NumPy's
    'Maximum allowed dimension exceeded' or Python's OverflowError."""
    with pytest.raises(ValueError, match=r"dt = .* at most 65535 steps"):
        sl.Stimulus(**kw)


def test_stimulus_limits_hold_at_the_boundary():
    assert sl.Stimulus(duration=65.535).steps == 65535
    with pytest.raises(ValueError, match="anf_per_ear must be <= 32767"):
        sl.Stimulus(anf_per_ear=32768)
    assert sl.Stimulus(anf_per_ear=32767, duration=0.002).n_in == 65534


# ---------------------------------------------------------------------------- model options

@pytest.mark.parametrize("value, error", [(1.0, TypeError), (1, TypeError),
                                          (np.array([True]), TypeError),
                                          (np.array([True, False]), TypeError),
                                          ("both", ValueError), (None, TypeError)])
def test_learn_tau_is_a_bool_or_a_layer_name(value, error):
    """1.0 was accepted as True (a membership test); an array failed inside a comparison
    without naming the argument."""
    with pytest.raises(error, match="learn_tau must be False, True, 'hidden' or 'output'"):
        sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.02, tau_output=0.02, learn_tau=value)


def test_learn_tau_accepts_bools_and_names():
    for value, names in ((True, {"tau_hidden", "tau_output"}), (np.bool_(True),
                         {"tau_hidden", "tau_output"}), (False, set()),
                         ("hidden", {"tau_hidden"}), ("output", {"tau_output"})):
        net = sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.02, tau_output=0.02, learn_tau=value)
        assert set(net.parameters()) - {"w1", "w2"} == names
        assert net.config.get("learn_tau", False) in (False, True, "hidden", "output")


@pytest.mark.parametrize("make, name", [
    (lambda: sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.02, tau_output=0.02, reset=["delayed"]),
     "reset"),
    (lambda: sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.02, tau_output=0.02,
                    surrogate={"sigmoid": 1}), "surrogate"),
    (lambda: sl.EPropNetwork(4, 3, 2, loss=["mse"]), "loss"),
    (lambda: sl.EPropNetwork(4, 3, 2, feedback=np.array(["random"])), "feedback"),
])
def test_choices_given_as_lists_name_the_argument(make, name):
    """reset=[...] gave "unhashable type: 'list'"."""
    with pytest.raises(TypeError, match=f"{name} must be one of"):
        make()


@pytest.mark.parametrize("make", [
    lambda t: sl.SNN(4, 3, 2, dt=1e-3, tau_hidden=0.02, tau_output=0.02, threads=t),
    lambda t: sl.MembraneOnly(4, 2, dt=1e-3, tau=0.02, threads=t),
    lambda t: sl.EPropNetwork(4, 3, 2, threads=t),
])
def test_too_many_threads_fail_at_construction(make, monkeypatch):
    """threads=10**6 used to be accepted and fail at the model's first call."""
    with pytest.raises(ValueError, match=r"threads must be in \[0, 4096\]"):
        make(10**6)
    net = make(4096)
    with pytest.raises(ValueError, match="threads"):
        net.threads = 4097
    assert net.threads == 4096
    monkeypatch.setenv("SPIKELOC_NUM_THREADS", "1000000")
    with pytest.raises(ValueError, match="threads"):
        make(None)
