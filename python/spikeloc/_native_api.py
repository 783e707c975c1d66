"""Thin helpers around the compiled extension ``spikeloc._native``.

Loads the extension (with a helpful message when it has not been built), resolves thread
counts, and holds the small validation helpers that turn bad arguments into ValueError /
TypeError naming the argument before anything reaches the kernels.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from . import _kernels

try:
    if _kernels.load() is None:
        raise ImportError("no kernels library (libSpikeLocKernels.<variant>.so) next to it")
    from . import _native
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "spikeloc's compiled extension (spikeloc._native) is missing or cannot be loaded: "
        f"{exc}. Install the package with `pip install .`, or build it in place with "
        "`python setup.py build_ext --inplace` and put python/ on PYTHONPATH."
    ) from exc

__all__ = [
    "_native",
    "resolve_threads",
    "check_real",
    "check_int",
    "check_positive",
    "check_seed",
    "as_float32_matrix",
    "check_index",
    "check_labels",
]

MAX_INT32 = 2**31 - 1
MAX_EVENT_DIM = 65535  # T and N_in of an event list (uint16 entries)

THREADS_ENV = "SPIKELOC_NUM_THREADS"


def resolve_threads(threads=None) -> int:
    """Thread count handed to the kernels.

    ``None`` → the count set by :func:`kernel_threads` in this context if any, else the
    environment variable ``SPIKELOC_NUM_THREADS`` if set, else 0 (one thread per online CPU).
    Results are bit-identical for every thread count.
    """
    if threads is None:
        scoped = _SCOPED_THREADS.get()  # set by kernel_threads() (spikeloc.sweep's jobs)
        if scoped is not None:
            return scoped
        env = os.environ.get(THREADS_ENV, "").strip()
        if not env:
            return 0
        try:
            value = int(env)
        except ValueError:
            raise ValueError(
                f"{THREADS_ENV} must be a non-negative integer, got {env!r}") from None
        if not 0 <= value <= MAX_INT32:
            raise ValueError(f"{THREADS_ENV} must be a non-negative integer, got {env!r}")
        return value
    return check_int(threads, "threads", minimum=0, maximum=MAX_INT32)


def check_int(value, name: str, minimum=None, maximum=None) -> int:
    """An integer (not bool) within [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(value, name: str) -> float:
    """A finite real number (not bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_positive(value, name: str) -> float:
    """A finite real number > 0."""
    value = check_real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_seed(seed, name: str = "seed") -> int:
    """A seed: integer in [0, 2**64)."""
    return check_int(seed, name, minimum=0, maximum=2**64 - 1)


def real_array(value, name: str, kind: str = "real") -> np.ndarray:
    """``value`` as an array of real numbers (integer or floating dtype), else TypeError."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a {kind} array, got dtype {arr.dtype}")
    return arr


def as_float32_matrix(value, name: str, shape) -> np.ndarray:
    """A finite float32 C-contiguous copy of ``value`` with exactly ``shape``."""
    arr = real_array(value, name, kind="real (float32)")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def check_finite_array(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_index(index, n_samples: int, name: str = "index"):
    """Optional sample indices → (int64 C-contiguous array or None, batch size)."""
    if index is None:
        if n_samples < 1:
            raise ValueError("spikes: empty batch (no samples)")
        return None, n_samples
    arr = np.asarray(index)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (no samples)")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_samples:
        raise ValueError(
            f"{name} must be in [0, {n_samples}) (the samples in spikes), "
            f"got values in [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype=np.int64), int(arr.shape[0])


def check_labels(labels, batch: int, num_classes: int, name: str = "labels") -> np.ndarray:
    """Class labels → int64 C-contiguous array of length ``batch`` in [0, num_classes)."""
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != batch:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but the batch has {batch} samples")
    if batch:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{name} must be in [0, {num_classes}), got values in [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


# ---- scoped default thread count (kernel_threads; used by spikeloc.sweep) ---------------------
import contextlib as _contextlib
import contextvars as _contextvars

#: Thread count that ``threads=None`` resolves to in the current context (None: not set).
_SCOPED_THREADS = _contextvars.ContextVar("spikeloc_kernel_threads", default=None)


@_contextlib.contextmanager
def kernel_threads(threads: int):
    """Within the ``with`` block (in this thread / context), ``threads=None`` means ``threads``.

    It takes precedence over ``SPIKELOC_NUM_THREADS``; an explicit ``threads=`` argument still
    wins. Models resolve their thread count when they are built, so build them inside the
    block. :func:`spikeloc.sweep` runs every job inside ``kernel_threads(1)``: the pool uses the
    cores, each job's kernels one. Context variables are per thread, so other threads are not
    affected. Results are bit-identical for every thread count.
    """
    value = check_int(threads, "threads", minimum=0, maximum=MAX_INT32)
    token = _SCOPED_THREADS.set(value)
    try:
        yield value
    finally:
        _SCOPED_THREADS.reset(token)
