"""Binary spike data as event lists (``spk_events`` in spikeloc.h).

A data set of binary spikes ``x`` of shape ``(n_samples, T, N_in)`` is held twice:

* by step: the inputs spiking in (sample s, step t) are
  ``step_events[step_ptr[s*T + t] : step_ptr[s*T + t + 1]]`` (increasing);
* by input: the steps at which (sample s, input i) spikes are
  ``input_events[input_ptr[s*N_in + i] : input_ptr[s*N_in + i + 1]]`` (increasing).

``step_ptr`` (int64, ``n_samples*T + 1``) and ``input_ptr`` (int64, ``n_samples*N_in + 1``)
start at 0 and end at ``n_events``; the event arrays are uint16, so ``T`` and ``N_in`` are at
most 65535. The networks read this form; a dense array is converted on the fly (one pass,
:meth:`SpikeEvents.from_dense`). The stimulus builds event lists directly, without a dense
array: ``Stimulus.generate(n, seed, events=True)``.

A :class:`SpikeEvents` owns its arrays and nobody can change them: they are read-only views of
``bytes`` objects (NumPy refuses to make such a view writable again), and the attributes are
read-only. The kernels index memory with these arrays, so they must not change while a kernel
that checked them runs in another thread; the extension reads such arrays in place, and copies
any other event arrays it is handed for the duration of the call.
"""

from __future__ import annotations

import numpy as np

from ._abi import Events
from ._native_api import MAX_EVENT_DIM, _native, resolve_threads

__all__ = ["SpikeEvents", "as_events"]

_FIELDS = ("step_ptr", "step_events", "input_ptr", "input_events")


def _frozen(a: np.ndarray) -> np.ndarray:
    """An immutable copy of the 1-D array ``a``: a read-only view of a ``bytes`` object."""
    return np.frombuffer(a.tobytes(), dtype=a.dtype)


def _check_dense(spikes, name: str = "spikes") -> np.ndarray:
    """A dense 0/1 spike array as uint8 C-contiguous (n, T, N_in) (no copy when possible)."""
    if isinstance(spikes, SpikeEvents):
        raise TypeError(f"{name}: expected a dense array, got SpikeEvents")
    arr = np.asarray(spikes)
    if arr.dtype == np.bool_:
        arr = np.ascontiguousarray(arr).view(np.uint8)
    elif arr.dtype != np.uint8:
        raise TypeError(
            f"{name} must be a uint8 or bool array of 0/1 values, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (n, T, N_in) (3 dimensions), got {arr.shape}")
    n, steps, n_in = arr.shape
    if not (1 <= steps <= MAX_EVENT_DIM and 1 <= n_in <= MAX_EVENT_DIM):
        raise ValueError(
            f"{name}: T and N_in (shape (n, T, N_in)) must be in [1, {MAX_EVENT_DIM}], "
            f"got T={steps}, N_in={n_in}")
    # values other than 0/1 are refused by the kernel, in the same pass that reads the array
    return np.ascontiguousarray(arr)


class SpikeEvents:
    """Compact event-list form of a binary spike array of shape (n_samples, T, N_in).

    Build one with :meth:`from_dense`; its arrays are immutable (read-only views of ``bytes``).
    ``len(events)`` is the number of samples.
    """

    __slots__ = ("_n_samples", "_steps", "_n_in", "_step_ptr", "_step_events", "_input_ptr",
                 "_input_events")

    def __init__(self, n_samples, steps, n_in, step_ptr, step_events, input_ptr, input_events):
        """Immutable copies of existing arrays (checked for shapes and dtypes; contents are
        checked by the kernels that read them). Prefer :meth:`from_dense`."""
        from ._native_api import check_int
        n_samples = check_int(n_samples, "n_samples", minimum=0)
        steps = check_int(steps, "steps", minimum=1, maximum=MAX_EVENT_DIM)
        n_in = check_int(n_in, "n_in", minimum=1, maximum=MAX_EVENT_DIM)
        arrays = {}
        for name, value, dtype, length in (
                ("step_ptr", step_ptr, np.int64, n_samples * steps + 1),
                ("step_events", step_events, np.uint16, None),
                ("input_ptr", input_ptr, np.int64, n_samples * n_in + 1),
                ("input_events", input_events, np.uint16, None)):
            arr = np.asarray(value)
            if arr.dtype != dtype:
                raise TypeError(f"{name} must be a {np.dtype(dtype).name} array, got {arr.dtype}")
            if arr.ndim != 1:
                raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
            if length is not None and arr.shape[0] != length:
                raise ValueError(f"{name} must have {length} entries, got {arr.shape[0]}")
            arrays[name] = _frozen(arr)
        n_events = arrays["step_events"].shape[0]
        if arrays["input_events"].shape[0] != n_events:
            raise ValueError("step_events and input_events must have the same length")
        for name in ("step_ptr", "input_ptr"):
            a = arrays[name]
            if a[0] != 0 or a[-1] != n_events:
                raise ValueError(f"{name} must start at 0 and end at n_events={n_events}")
        self._set(n_samples, steps, n_in, *(arrays[name] for name in _FIELDS))

    def _set(self, n_samples, steps, n_in, step_ptr, step_events, input_ptr, input_events):
        for name, value in zip(self.__slots__, (n_samples, steps, n_in, step_ptr, step_events,
                                                input_ptr, input_events)):
            setattr(self, name, value)

    def __reduce__(self):
        # through the constructor, which checks and freezes the arrays
        return (SpikeEvents, (self._n_samples, self._steps, self._n_in, self._step_ptr,
                              self._step_events, self._input_ptr, self._input_events))

    @classmethod
    def from_dense(cls, spikes, threads=None) -> "SpikeEvents":
        """Event lists of a dense spike array, uint8 or bool of 0/1, shape (n, T, N_in).

        One multi-threaded pass over the array (``spk_events_from_dense``); the kernel writes
        the event lists straight into the ``bytes`` objects that the result keeps (no copy).
        ``threads``: worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores)."""
        x = _check_dense(spikes)
        threads = resolve_threads(threads)
        n, steps, n_in = x.shape
        return cls._built(n, steps, n_in, _native.events_from_dense(x, n, steps, n_in, threads))

    @classmethod
    def _built(cls, n, steps, n_in, parts) -> "SpikeEvents":
        """A SpikeEvents over the four ``bytes`` objects (step_ptr, step_events, input_ptr,
        input_events) that a building kernel returned (read-only views, no copy)."""
        self = cls.__new__(cls)
        self._set(n, steps, n_in, *(np.frombuffer(b, dtype=t) for b, t in
                                     zip(parts, (np.int64, np.uint16, np.int64, np.uint16))))
        return self

    def to_dense(self, threads=None) -> np.ndarray:
        """The dense uint8 spike array (n_samples, T, N_in)."""
        threads = resolve_threads(threads)
        x = np.empty((self._n_samples, self._steps, self._n_in), dtype=np.uint8)
        if self._n_samples:
            _native.events_to_dense(self._abi(), x, threads)
        return x

    def _abi(self) -> Events:
        """The ``spk_events`` struct that ``spikeloc._native`` takes."""
        return Events(self._n_samples, self._steps, self._n_in, self.n_events, self._step_ptr,
                      self._step_events, self._input_ptr, self._input_events)

    @property
    def step_ptr(self) -> np.ndarray:
        """int64 (n_samples T + 1): events of (sample s, step t) are
        ``step_events[step_ptr[s T + t] : step_ptr[s T + t + 1]]`` (read-only)."""
        return self._step_ptr

    @property
    def step_events(self) -> np.ndarray:
        """uint16 (n_events): the spiking inputs, in step order (read-only)."""
        return self._step_events

    @property
    def input_ptr(self) -> np.ndarray:
        """int64 (n_samples N_in + 1): spikes of (sample s, input i) are
        ``input_events[input_ptr[s N_in + i] : input_ptr[s N_in + i + 1]]`` (read-only)."""
        return self._input_ptr

    @property
    def input_events(self) -> np.ndarray:
        """uint16 (n_events): the spike steps, in input order (read-only)."""
        return self._input_events

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self._n_samples

    @property
    def steps(self) -> int:
        """Number of time steps T."""
        return self._steps

    @property
    def n_in(self) -> int:
        """Number of inputs N_in."""
        return self._n_in

    @property
    def shape(self) -> tuple:
        """Shape (n_samples, T, N_in) of the dense array."""
        return (self._n_samples, self._steps, self._n_in)

    @property
    def n_events(self) -> int:
        """Total number of spikes."""
        return int(self._step_events.shape[0])

    @property
    def density(self) -> float:
        """Fraction of (sample, step, input) entries that are spikes."""
        total = self._n_samples * self._steps * self._n_in
        return self.n_events / total if total else 0.0

    def __len__(self) -> int:
        return self._n_samples

    def __repr__(self) -> str:
        return (f"SpikeEvents(n_samples={self._n_samples}, steps={self._steps}, "
                f"n_in={self._n_in}, n_events={self.n_events})")


def as_events(spikes, threads=None) -> SpikeEvents:
    """``spikes`` as :class:`SpikeEvents`: returned as is, or converted from a dense uint8/bool
    array of shape (n, T, N_in)."""
    if isinstance(spikes, SpikeEvents):
        return spikes
    return SpikeEvents.from_dense(spikes, threads=threads)
