"""spikeloc.datasets.nmnist on small synthetic files (no download).

The files are written by an encoder in this module that follows MODEL.md section 5 byte by
byte (byte 0 x, byte 1 y, bit 7 of byte 2 the polarity, low 23 bits of bytes 2-4 big-endian
the time in microseconds); the expected spike arrays come from a per-event Python loop.
"""

import os

import numpy as np
import pytest

from spikeloc.datasets import nmnist


def encode(x, y, t, p) -> bytes:
    """N-MNIST bytes of events (one Python loop, independent of the decoder)."""
    out = bytearray()
    for xi, yi, ti, pi in zip(x, y, t, p):
        assert 0 <= ti < 2**23
        out += bytes([int(xi), int(yi), (int(pi) << 7) | (int(ti) >> 16), (int(ti) >> 8) & 0xFF,
                      int(ti) & 0xFF])
    return bytes(out)


def random_events(rng, n, t_max=nmnist.T_MAX_US):
    return (rng.integers(0, 34, n), rng.integers(0, 34, n),
            np.sort(rng.integers(0, t_max + 1, n)), rng.integers(0, 2, n))


def expected_spikes(x, y, t, p, steps, t_max=nmnist.T_MAX_US, blocklist=()):
    active = [k for k in range(2 * 34 * 34) if k not in set(int(b) for b in blocklist)]
    position = {pix: i for i, pix in enumerate(active)}
    out = np.zeros((steps, len(active)), dtype=np.uint8)
    for xi, yi, ti, pi in zip(x, y, t, p):
        if ti > t_max:
            continue
        step = min(int(np.round(ti * steps / t_max)), steps - 1)
        pix = int(pi) * 34 * 34 + int(yi) * 34 + int(xi)
        if pix in position:
            out[step, position[pix]] = 1
    return out


# ---------------------------------------------------------------------------- decoding

def test_decode_known_bytes():
    data = bytes([5, 7, 0x80 | 0x01, 0x02, 0x03,      # x 5, y 7, ON, t = 0x010203
                  33, 0, 0x7F, 0xFF, 0xFF,             # x 33, y 0, OFF, t = 2^23 - 1
                  0, 33, 0x00, 0x00, 0x00])            # t = 0
    ev = nmnist.decode(data)
    assert ev.dtype == nmnist.EVENT_DTYPE
    assert ev["x"].tolist() == [5, 33, 0]
    assert ev["y"].tolist() == [7, 0, 33]
    assert ev["p"].tolist() == [1, 0, 0]
    assert ev["t"].tolist() == [0x010203, 2**23 - 1, 0]


def test_read_events_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, y, t, p = random_events(rng, 500)
    t[-1] = 2**23 - 1                                   # the largest time that fits
    path = tmp_path / "00001.bin"
    path.write_bytes(encode(x, y, t, p))
    ev = nmnist.read_events(path)
    for name, values in zip("xytp", (x, y, t, p)):
        assert np.array_equal(ev[name], values), name
    assert np.array_equal(nmnist.pixel_index(ev), p * 34 * 34 + y * 34 + x)
    assert len(nmnist.read_events(_empty(tmp_path))) == 0


def _empty(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    return path


def test_truncated_and_malformed_files_name_the_file(tmp_path):
    good = encode([1, 2], [3, 4], [10, 20], [0, 1])
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(good[:-2])
    with pytest.raises(nmnist.NMNISTFormatError, match=r"truncated\.bin.*multiple of 5"):
        nmnist.read_events(truncated)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(good + bytes([34, 0, 0, 0, 1]))
    with pytest.raises(nmnist.NMNISTFormatError, match=r"outside\.bin: event 2 .*x=34"):
        nmnist.read_events(outside)
    with pytest.raises(FileNotFoundError):
        nmnist.read_events(tmp_path / "missing.bin")
    assert issubclass(nmnist.NMNISTFormatError, ValueError)


# ---------------------------------------------------------------------------- spikes

@pytest.mark.parametrize("steps", [1, 7, 100, 300])
def test_events_to_spikes_matches_a_per_event_loop(steps):
    rng = np.random.default_rng(steps)
    x, y, t, p = random_events(rng, 2000)
    t[:3] = [0, nmnist.T_MAX_US, nmnist.T_MAX_US + 5]    # first step, last step, left out
    blocklist = rng.choice(2312, size=300, replace=False)
    ev = nmnist.decode(encode(x, y, t, p))
    got = nmnist.events_to_spikes(ev, steps, blocklist=blocklist)
    assert got.dtype == np.uint8 and got.shape == (steps, 2312 - 300)
    assert np.array_equal(got, expected_spikes(x, y, t, p, steps, blocklist=blocklist))
    assert got.max() == 1
    # no blocklist: all 2312 pixels; a different t_max rescales the times
    assert np.array_equal(nmnist.events_to_spikes(ev, steps),
                          expected_spikes(x, y, t, p, steps))
    assert np.array_equal(nmnist.events_to_spikes(ev, steps, t_max=200000.0),
                          expected_spikes(x, y, t, p, steps, t_max=200000.0))


def test_time_and_pixel_mapping_of_single_events():
    # pixel p 34 34 + y 34 + x, step round(t T / t_max)
    ev = np.array([(3, 2, 168020, 1)], dtype=nmnist.EVENT_DTYPE)      # t = t_max / 2
    s = nmnist.events_to_spikes(ev, 10)
    assert np.argwhere(s).tolist() == [[5, 1156 + 2 * 34 + 3]]
    # a blocklist shifts the input index down by the blocked pixels below it
    s = nmnist.events_to_spikes(ev, 10, blocklist=[0, 1, 376, 2311])   # three below 1227
    assert np.argwhere(s).tolist() == [[5, 1156 + 71 - 3]]
    # a blocked pixel's events vanish
    assert nmnist.events_to_spikes(ev, 10, blocklist=[1156 + 71]).sum() == 0


def test_tonic_layout_and_other_dtypes_are_accepted():
    tonic_dtype = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
    ev = np.array([(1, 2, True, 1000), (30, 31, False, 300000)], dtype=tonic_dtype)
    spikes = nmnist.events_to_spikes(ev, 50)
    expected = expected_spikes([1, 30], [2, 31], [1000, 300000], [1, 0], 50)
    assert np.array_equal(spikes, expected)
    with pytest.raises(TypeError, match="lacks the field"):
        nmnist.events_to_spikes(np.zeros(2, dtype=[("x", int), ("y", int), ("t", int)]), 5)
    with pytest.raises(TypeError, match="structured"):
        nmnist.events_to_spikes(np.zeros((2, 4)), 5)
    bad_p = np.array([(1, 2, 10, 2)], dtype=nmnist.EVENT_DTYPE)
    with pytest.raises(nmnist.NMNISTFormatError, match="polarity"):
        nmnist.events_to_spikes(bad_p, 5)
    bad_y = np.array([(1, 40, 10, 0)], dtype=nmnist.EVENT_DTYPE)
    with pytest.raises(nmnist.NMNISTFormatError, match="y=40"):
        nmnist.events_to_spikes(bad_y, 5, name="sample 3")
    with pytest.raises(ValueError, match="steps"):
        nmnist.events_to_spikes(ev, 0)
    with pytest.raises(ValueError, match="t_max"):
        nmnist.events_to_spikes(ev, 5, t_max=0)


def test_blocklist_forms(tmp_path):
    path = tmp_path / "NMNIST_pixels_blocklist.txt"
    np.savetxt(path, np.array([7.0, 3.0, 7.0, 2311.0]))       # floats, as np.loadtxt reads
    assert nmnist.read_blocklist(path).tolist() == [3, 7, 2311]
    assert nmnist.read_blocklist(str(path)).tolist() == [3, 7, 2311]
    assert nmnist.read_blocklist(None).size == 0
    active = nmnist.active_pixels([3, 7])
    assert active.size == 2310 and 3 not in active and 7 not in active
    with pytest.raises(nmnist.NMNISTFormatError, match="2312"):
        nmnist.read_blocklist([2312])
    with pytest.raises(nmnist.NMNISTFormatError, match="whole"):
        nmnist.read_blocklist([1.5])
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 x\n")
    with pytest.raises(nmnist.NMNISTFormatError, match="bad.txt"):
        nmnist.read_blocklist(bad)


# ---------------------------------------------------------------------------- directories

def make_dataset(root, counts, seed=0):
    """root/Train/<label>/<k>.bin with counts[label] files; returns {path: events}."""
    rng = np.random.default_rng(seed)
    files = {}
    for split, per_label in (("Train", counts), ("Test", {0: 1, 1: 1})):
        for label, n in per_label.items():
            d = os.path.join(root, split, str(label))
            os.makedirs(d, exist_ok=True)
            for k in range(n):
                x, y, t, p = random_events(rng, int(rng.integers(1, 300)))
                path = os.path.join(d, f"{k:05d}.bin")
                with open(path, "wb") as f:
                    f.write(encode(x, y, t, p))
                files[path] = (x, y, t, p)
    return files


def test_load_a_directory(tmp_path):
    files = make_dataset(tmp_path, {0: 3, 1: 2, 10: 2, 2: 4})
    os.makedirs(tmp_path / "Train" / "notes")                 # not a class: ignored
    (tmp_path / "Train" / "1" / "README.txt").write_text("x")  # not a .bin: ignored
    blocklist = np.arange(0, 2312, 3)
    spikes, labels = nmnist.load(tmp_path, "Train", steps=40, blocklist=blocklist)
    assert spikes.dtype == np.uint8 and labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2, 10, 10]
    assert spikes.shape == (11, 40, 2312 - blocklist.size)
    paths, labels2 = nmnist.list_files(tmp_path, "Train")
    assert np.array_equal(labels, labels2)
    for i, path in enumerate(paths):
        x, y, t, p = files[path]
        assert np.array_equal(spikes[i], expected_spikes(x, y, t, p, 40, blocklist=blocklist))
    # max_per_class takes the first files in name order
    few, few_labels = nmnist.load(tmp_path, "Train", steps=40, max_per_class=1,
                                  blocklist=blocklist)
    assert few_labels.tolist() == [0, 1, 2, 10]
    assert np.array_equal(few, spikes[[0, 3, 5, 9]])
    test, test_labels = nmnist.load(tmp_path, split="Test")
    assert test.shape == (2, 100, 2312) and test_labels.tolist() == [0, 1]
    # iterate yields the same files in the same order
    got = [(label, path) for _, label, path in nmnist.iterate(tmp_path, "Train")]
    assert got == list(zip(labels.tolist(), paths))


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nmnist.load(tmp_path / "nowhere")
    make_dataset(tmp_path, {0: 1})
    with pytest.raises(FileNotFoundError, match=r"Validation"):
        nmnist.load(tmp_path, "Validation")
    os.makedirs(tmp_path / "Empty" / "x")
    with pytest.raises(ValueError, match="no class directories"):
        nmnist.load(tmp_path, "Empty")
    bad = tmp_path / "Train" / "0" / "99999.bin"
    bad.write_bytes(b"\x01\x02\x03")
    with pytest.raises(nmnist.NMNISTFormatError, match="99999.bin"):
        nmnist.load(tmp_path, "Train")
    with pytest.raises(ValueError, match="max_per_class"):
        nmnist.load(tmp_path, "Train", max_per_class=-1)
    with pytest.raises(TypeError, match="split"):
        nmnist.load(tmp_path, 0)


def test_event_counts_and_inactive_pixels(tmp_path):
    files = make_dataset(tmp_path, {0: 2, 3: 2})
    counts = nmnist.event_counts(tmp_path, "Train")
    expected = np.zeros(2312, dtype=np.int64)
    for path, (x, y, t, p) in files.items():
        if os.sep + "Train" + os.sep in path:
            for xi, yi, pi in zip(x, y, p):
                expected[pi * 1156 + yi * 34 + xi] += 1
    assert np.array_equal(counts, expected)
    blocked = nmnist.inactive_pixels(counts, min_events=2)
    assert np.array_equal(blocked, np.flatnonzero(expected < 2))
    spikes, _ = nmnist.load(tmp_path, "Train", steps=20, blocklist=blocked)
    assert spikes.shape[2] == int((expected >= 2).sum())


def test_loaded_spikes_train_a_network(tmp_path):
    """The arrays feed spikeloc's networks directly (shape and dtype check through a forward)."""
    import spikeloc as sl
    make_dataset(tmp_path, {0: 2, 1: 2})
    spikes, labels = nmnist.load(tmp_path, "Train", steps=30)
    net = sl.SNN(spikes.shape[2], 5, 2, dt=1e-3, tau_hidden=20e-3, tau_output=20e-3)
    loss, grads = net.loss_and_grad(spikes, labels)
    assert np.isfinite(loss) and grads["w1"].shape == (2312, 5)


def test_package_attributes():
    import spikeloc as sl
    assert sl.datasets.nmnist is nmnist
    assert sl.analysis.tuning_curves is sl.tuning_curves
