"""N-MNIST event files (MODEL.md section 5; seed 003) as spike arrays.

N-MNIST (Orchard et al. 2015) records MNIST digits with a 34 x 34 event camera. Each sample is
a binary file of 5-byte events:

    byte 0: x (0 .. 33)        byte 1: y (0 .. 33)
    byte 2, bit 7: polarity p (0 OFF, 1 ON)
    bytes 2-4, low 23 bits, big-endian: time t [microseconds]

The data set directory holds ``Train/<label>/*.bin`` and ``Test/<label>/*.bin`` (labels 0-9).

Conversion to network inputs, as in seed 003:

* pixel index ``p 34 34 + y 34 + x`` (2 x 34 x 34 = 2312 pixels);
* a *blocklist* of pixel indices removes inactive pixels; the remaining ("active") pixels, in
  increasing order, are the inputs ``0 .. n_inputs - 1``;
* time step ``round(t T / t_max)`` with ``t_max = 336040`` us (the longest recording of the
  training and test sets) and ``T = steps``. Rounding is NumPy's (half to even, as the seed's
  ``np.around``); a time that rounds to ``T`` (the last 0.5 step before ``t_max``) goes to the
  last step ``T - 1``, and events after ``t_max`` are left out.
* several events of one input in one step give a single spike (spikes are 0/1 bytes).

Events are NumPy structured arrays with fields ``x``, ``y``, ``t``, ``p`` (the layout of the
tonic library, :data:`EVENT_DTYPE`); every function that takes events accepts any structured
array with these four integer (or boolean ``p``) fields.

Example::

    from spikeloc.datasets import nmnist
    spikes, labels = nmnist.load("/data/N-MNIST", "Train", steps=100, max_per_class=100)
    spikes.shape    # (1000, 100, 2312): uint8, (samples, steps, inputs)

Everything is vectorised over the events of a file; only the loop over files is in Python.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .._files import open_regular

__all__ = [
    "WIDTH", "HEIGHT", "POLARITIES", "N_PIXELS", "T_MAX_US", "EVENT_DTYPE", "MAX_FILE_BYTES",
    "NMNISTFormatError",
    "decode", "read_events", "check_events", "pixel_index", "read_blocklist", "active_pixels",
    "events_to_spikes", "list_files", "iterate", "load", "event_counts", "inactive_pixels",
]

#: Sensor width and height [pixels] and the number of polarities.
WIDTH = 34
#: Sensor height in pixels.
HEIGHT = 34
#: Event polarities (off, on).
POLARITIES = 2
#: Number of pixel indices ``p 34 34 + y 34 + x``.
N_PIXELS = POLARITIES * HEIGHT * WIDTH
#: Longest recording of the N-MNIST training and test sets [microseconds] (seed 003).
T_MAX_US = 336040
#: Structured dtype of decoded events (tonic's layout: x, y, t [us], p).
EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

#: Largest event file :func:`read_events` reads [bytes] (N-MNIST's samples hold a few
#: thousand events, some tens of kilobytes).
MAX_FILE_BYTES = 64 << 20

_BYTES_PER_EVENT = 5
_TIME_MASK = 0x7FFFFF


class NMNISTFormatError(ValueError):
    """A malformed N-MNIST file or event array (the message names the file or argument)."""


# ---------------------------------------------------------------------------- events

def decode(data, *, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of one N-MNIST file into events (:data:`EVENT_DTYPE`, file order).

    ``data``: bytes, bytearray, memoryview or a uint8 array. ``name`` appears in error
    messages. Raises :class:`NMNISTFormatError` if the length is not a multiple of 5 (a
    truncated file) or a coordinate lies outside the 34 x 34 sensor.
    """
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    if raw.size % _BYTES_PER_EVENT:
        raise NMNISTFormatError(
            f"{name}: {raw.size} bytes is not a multiple of {_BYTES_PER_EVENT} (5 bytes per "
            f"event): the file is truncated or not an N-MNIST event file")
    ev = raw.reshape(-1, _BYTES_PER_EVENT)
    out = np.empty(ev.shape[0], dtype=EVENT_DTYPE)
    out["x"] = ev[:, 0]
    out["y"] = ev[:, 1]
    out["p"] = ev[:, 2] >> 7
    b2, b3, b4 = (ev[:, k].astype(np.int64) for k in (2, 3, 4))
    out["t"] = ((b2 << 16) | (b3 << 8) | b4) & _TIME_MASK
    _check_coordinates(out["x"], out["y"], name)
    return out


def _check_coordinates(x, y, name: str) -> None:
    bad = (x < 0) | (x >= WIDTH) | (y < 0) | (y >= HEIGHT)
    if bad.any():
        i = int(np.argmax(bad))
        raise NMNISTFormatError(
            f"{name}: event {i} has coordinates (x={int(x[i])}, y={int(y[i])}) outside the "
            f"{WIDTH} x {HEIGHT} sensor ({int(bad.sum())} such events): not an N-MNIST file?")


def read_events(path, *, max_bytes: int = MAX_FILE_BYTES) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file: events (:data:`EVENT_DTYPE`) in file order.

    Only a regular file of at most ``max_bytes`` bytes is read (a FIFO would block, a device
    such as ``/dev/zero`` never ends). Raises FileNotFoundError for a missing file and
    :class:`NMNISTFormatError` (naming the file) for a malformed one, a directory, a file that
    is not regular or one larger than ``max_bytes``.
    """
    path = os.fsdecode(os.fspath(path))
    max_bytes = int(max_bytes)
    with open_regular(path, NMNISTFormatError, "an N-MNIST event file") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NMNISTFormatError(f"{path}: larger than {max_bytes} bytes ({max_bytes // 5} "
                                f"events), far more than an N-MNIST sample holds; pass "
                                f"max_bytes= to read it anyway")
    return decode(data, name=path)


def check_events(events, *, name: str = "events") -> np.ndarray:
    """Validate a structured event array (fields x, y, t [us], p) and return it as
    :data:`EVENT_DTYPE` (a copy). Raises TypeError for a wrong type or missing fields and
    :class:`NMNISTFormatError` for out-of-range values."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(f"{name} must be a structured NumPy array with fields x, y, t, p "
                        f"(tonic's layout), got {type(events).__name__}"
                        + ("" if not isinstance(events, np.ndarray)
                           else f" of dtype {events.dtype}"))
    missing = [f for f in ("x", "y", "t", "p") if f not in events.dtype.names]
    if missing:
        raise TypeError(f"{name} lacks the field(s) {', '.join(missing)} (has "
                        f"{', '.join(events.dtype.names)})")
    for f in ("x", "y", "t", "p"):
        kind = events.dtype[f].kind
        if kind not in "iub":
            raise TypeError(f"{name}['{f}'] must hold integers, got dtype {events.dtype[f]}")
    ev = events.reshape(-1)
    out = np.empty(ev.shape[0], dtype=EVENT_DTYPE)
    for f in ("x", "y", "t", "p"):
        out[f] = ev[f].astype(np.int64)
    _check_coordinates(out["x"], out["y"], name)
    if np.any((out["p"] != 0) & (out["p"] != 1)):
        raise NMNISTFormatError(f"{name}: polarity p must be 0 or 1")
    if np.any(out["t"] < 0):
        raise NMNISTFormatError(f"{name}: times t must be >= 0 (microseconds)")
    return out


def pixel_index(events) -> np.ndarray:
    """Pixel index ``p 34 34 + y 34 + x`` of each event, int64 (n,)."""
    ev = check_events(events)
    return ev["p"] * (WIDTH * HEIGHT) + ev["y"] * WIDTH + ev["x"]


# ---------------------------------------------------------------------------- blocklist

def read_blocklist(blocklist) -> np.ndarray:
    """Blocked pixel indices as a sorted unique int64 array.

    ``blocklist``: None (nothing blocked), a path to a text file of pixel indices (whitespace-
    separated, as seed 003's ``NMNIST_pixels_blocklist.txt``, read with ``np.loadtxt``), or a
    sequence / array of pixel indices in [0, 2312) (integral floats are accepted).
    """
    if blocklist is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(blocklist, (str, os.PathLike)):
        path = os.fspath(blocklist)
        try:
            values = np.loadtxt(path, ndmin=1)
        except ValueError as exc:
            raise NMNISTFormatError(f"{path}: not a list of pixel indices ({exc})") from None
        name = path
    else:
        values = np.asarray(blocklist)
        name = "blocklist"
    values = values.reshape(-1)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.dtype == bool or not (np.issubdtype(values.dtype, np.integer)
                                    or np.issubdtype(values.dtype, np.floating)):
        raise TypeError(f"{name} must hold pixel indices (integers), got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise NMNISTFormatError(f"{name}: pixel indices must be whole numbers")
    idx = values.astype(np.int64)
    if idx.min() < 0 or idx.max() >= N_PIXELS:
        raise NMNISTFormatError(f"{name}: pixel indices must lie in [0, {N_PIXELS}), got "
                                f"values in [{int(idx.min())}, {int(idx.max())}]")
    return np.unique(idx)


def active_pixels(blocklist=None) -> np.ndarray:
    """The pixel indices that are inputs, in increasing order (all 2312 minus the
    blocklist): input ``k`` is pixel ``active_pixels(blocklist)[k]``."""
    blocked = read_blocklist(blocklist)
    keep = np.ones(N_PIXELS, dtype=bool)
    keep[blocked] = False
    return np.flatnonzero(keep).astype(np.int64)


def _input_lookup(blocklist) -> Tuple[np.ndarray, int]:
    """(pixel -> input index or -1, number of inputs)."""
    active = active_pixels(blocklist)
    lookup = np.full(N_PIXELS, -1, dtype=np.int64)
    lookup[active] = np.arange(active.size)
    return lookup, int(active.size)


# ---------------------------------------------------------------------------- spikes

def _check_steps(steps) -> int:
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return int(steps)


def _check_t_max(t_max) -> float:
    try:
        value = float(t_max)
    except (TypeError, ValueError):
        raise TypeError(f"t_max must be a number of microseconds, got {t_max!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"t_max must be > 0 (microseconds), got {t_max}")
    return value


def _fill(out2d, ev, steps, t_max, lookup) -> None:
    """Set out2d[step, input] = 1 for the events ``ev`` (validated EVENT_DTYPE)."""
    t = ev["t"]
    keep = t <= t_max
    step = np.rint(t[keep].astype(np.float64) * steps / t_max).astype(np.int64)
    np.minimum(step, steps - 1, out=step)
    pixel = ev["p"][keep] * (WIDTH * HEIGHT) + ev["y"][keep] * WIDTH + ev["x"][keep]
    inp = lookup[pixel]
    used = inp >= 0
    out2d[step[used], inp[used]] = 1


def events_to_spikes(events, steps: int = 100, *, t_max: float = T_MAX_US, blocklist=None,
                     name: str = "events") -> np.ndarray:
    """Spikes of one sample, uint8 (steps, n_inputs) of 0/1.

    ``events``: structured array (x, y, t [us], p); ``steps``: T; ``t_max`` [us]: the time
    mapped to step T (events after it are left out); ``blocklist``: see
    :func:`read_blocklist` (``n_inputs = 2312 - len(blocklist)``).
    """
    steps = _check_steps(steps)
    t_max = _check_t_max(t_max)
    ev = check_events(events, name=name)
    lookup, n_inputs = _input_lookup(blocklist)
    out = np.zeros((steps, n_inputs), dtype=np.uint8)
    _fill(out, ev, steps, t_max, lookup)
    return out


# ---------------------------------------------------------------------------- directories

def _split_dir(root, split) -> Tuple[str, str]:
    """(the split directory, the real path of the data root)."""
    if not isinstance(split, str):
        raise TypeError(f"split must be a string such as 'Train' or 'Test', got "
                        f"{type(split).__name__}")
    seps = {os.sep, os.altsep} - {None}
    if split in ("", ".", "..") or any(sep in split for sep in seps) or os.path.isabs(split):
        raise ValueError(f"split must name a directory inside the data root, such as 'Train' "
                         f"or 'Test', got {split!r}")
    root = os.fsdecode(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"N-MNIST root directory {root!r} does not exist")
    path = os.path.join(root, split)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"N-MNIST split directory {path!r} does not exist (expected {root}/Train/<label>/"
            f"*.bin and {root}/Test/<label>/*.bin)")
    real_root = os.path.realpath(root)
    _check_inside(path, real_root)
    return path, real_root


def _check_inside(path: str, real_root: str) -> None:
    """NMNISTFormatError if ``path`` resolves (symbolic links followed) outside the data
    root: the reader never leaves the directory it was given."""
    real = os.path.realpath(path)
    if os.path.commonpath([real, real_root]) != real_root:
        raise NMNISTFormatError(f"{path}: resolves to {real}, outside the data root "
                                f"{real_root} (a symbolic link out of the data set)")


def list_files(root, split: str = "Train", *,
               max_per_class: Optional[int] = None) -> Tuple[List[str], np.ndarray]:
    """The sample files of a split and their labels.

    Class directories are the subdirectories of ``root/split`` whose names are integers
    (``0`` .. ``9``), in numerical order; in each, the ``*.bin`` files in name order, the first
    ``max_per_class`` of them if given. Returns ``(paths, labels int64)``. Raises
    FileNotFoundError when ``root/split`` is missing, ValueError when it holds no class
    directory or ``split`` is not a directory name (an absolute path, ``..``, a path with a
    separator), and :class:`NMNISTFormatError` for a directory or file that resolves outside
    ``root`` (a symbolic link out of the data set).
    """
    if max_per_class is not None:
        if isinstance(max_per_class, (bool, np.bool_)) or not isinstance(
                max_per_class, (int, np.integer)):
            raise TypeError(f"max_per_class must be an int or None, got "
                            f"{type(max_per_class).__name__}")
        if max_per_class < 0:
            raise ValueError(f"max_per_class must be >= 0, got {max_per_class}")
    path, real_root = _split_dir(root, split)
    classes = []
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and entry.isdigit():
            _check_inside(full, real_root)
            classes.append((int(entry), full))
    if not classes:
        raise ValueError(f"N-MNIST split directory {path!r} has no class directories "
                         f"(<label>/ with a number as name)")
    classes.sort()
    paths: List[str] = []
    labels: List[int] = []
    for label, folder in classes:
        files = sorted(f for f in os.listdir(folder)
                       if f.endswith(".bin") and os.path.isfile(os.path.join(folder, f)))
        if max_per_class is not None:
            files = files[:max_per_class]
        for f in files:
            _check_inside(os.path.join(folder, f), real_root)
        paths.extend(os.path.join(folder, f) for f in files)
        labels.extend([label] * len(files))
    return paths, np.asarray(labels, dtype=np.int64)


def iterate(root, split: str = "Train", *,
            max_per_class: Optional[int] = None) -> Iterator[Tuple[np.ndarray, int, str]]:
    """Yield ``(events, label, path)`` for each sample of a split, in :func:`list_files`
    order (files are read one at a time)."""
    paths, labels = list_files(root, split, max_per_class=max_per_class)
    for path, label in zip(paths, labels):
        yield read_events(path), int(label), path


def load(root, split: str = "Train", *, steps: int = 100, max_per_class: Optional[int] = None,
         blocklist=None, t_max: float = T_MAX_US) -> Tuple[np.ndarray, np.ndarray]:
    """Load a split of an N-MNIST directory as spike arrays for training.

    Parameters
    ----------
    root : path
        The data set directory, holding ``Train/<label>/*.bin`` and ``Test/<label>/*.bin``.
    split : str
        ``"Train"`` or ``"Test"`` (any subdirectory name of ``root``).
    steps : int
        Time steps T of each sample (seed 003: 300 steps of 1 ms).
    max_per_class : int, optional
        Read at most this many files per label (the first in name order).
    blocklist : path, sequence of int or None
        Pixel indices to leave out (see :func:`read_blocklist`).
    t_max : float
        Time [us] mapped to step T (default: 336040, N-MNIST's longest recording).

    Returns
    -------
    spikes : uint8 (n, steps, n_inputs), 0/1, n_inputs = 2312 - len(blocklist)
    labels : int64 (n,)

    Memory: ``n * steps * n_inputs`` bytes (60000 training samples x 100 steps x 2312 inputs
    would be 13.9 GB: use ``max_per_class`` or a blocklist). Raises FileNotFoundError for a
    missing directory and :class:`NMNISTFormatError` naming a malformed file.
    """
    steps = _check_steps(steps)
    t_max = _check_t_max(t_max)
    lookup, n_inputs = _input_lookup(blocklist)
    paths, labels = list_files(root, split, max_per_class=max_per_class)
    spikes = np.zeros((len(paths), steps, n_inputs), dtype=np.uint8)
    for i, path in enumerate(paths):
        _fill(spikes[i], read_events(path), steps, t_max, lookup)
    return spikes, labels


# ---------------------------------------------------------------------------- statistics

def event_counts(root, split: str = "Train", *,
                 max_per_class: Optional[int] = None) -> np.ndarray:
    """Number of events of each pixel index over the files of a split, int64 (2312,)."""
    counts = np.zeros(N_PIXELS, dtype=np.int64)
    for events, _, _ in iterate(root, split, max_per_class=max_per_class):
        pix = events["p"] * (WIDTH * HEIGHT) + events["y"] * WIDTH + events["x"]
        counts += np.bincount(pix, minlength=N_PIXELS)
    return counts


def inactive_pixels(counts, min_events: int = 1) -> np.ndarray:
    """A blocklist: the pixel indices with fewer than ``min_events`` events in ``counts``
    (from :func:`event_counts`), int64 sorted."""
    counts = np.asarray(counts)
    if counts.shape != (N_PIXELS,):
        raise ValueError(f"counts must have shape ({N_PIXELS},), got {counts.shape}")
    return np.flatnonzero(counts < min_events).astype(np.int64)
