"""Optimisers (MODEL.md section 3) that update float32 parameter arrays in place.

``params`` is a dict name -> float32 C-contiguous writable array (e.g. ``model.parameters()``)
or a model with a ``parameters()`` method. ``step(grads)`` takes a dict with the same names and
shapes.

A step is all or nothing: if it would leave any parameter (or Adam's moments) NaN or
infinite (a learning rate near the float32 range, ``eps=0`` with a parameter whose gradient
has always been 0, gradients whose square overflows), the parameters and the optimiser's
state are restored to what they were before the step and :class:`NonFiniteStepError` is
raised. The check keeps a copy of the arrays a step writes (in buffers allocated once): for
the tutorial's network (21,200 weights) an Adam step takes ~1.6 times as long, which is
~1 % of a training step (``benchmarks/guards.py``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ._native_api import _native, check_real

__all__ = ["Adam", "SGD", "NonFiniteStepError"]


class NonFiniteStepError(FloatingPointError):
    """An optimiser step would have made a parameter (or the optimiser's state) NaN or
    infinite; the step was undone, so the parameters and the state are those before it.
    ``name`` is the first parameter affected."""

    def __init__(self, message, *, name):
        super().__init__(message)
        self.name = name


class Snapshot:
    """Copies of a set of arrays, taken into buffers allocated once, for undoing an in-place
    update that went non-finite (:meth:`take` before it, :meth:`first_non_finite` after it,
    :meth:`restore` to undo it)."""

    def __init__(self, arrays: dict):
        self.arrays = dict(arrays)
        self._copies = {key: np.empty_like(arr) for key, arr in self.arrays.items()}

    def holds(self, arrays: dict) -> bool:
        """Whether this snapshot is of exactly these array objects."""
        return arrays.keys() == self.arrays.keys() and all(
            arr is self.arrays[key] for key, arr in arrays.items())

    def take(self) -> None:
        for key, arr in self.arrays.items():
            np.copyto(self._copies[key], arr)

    def first_non_finite(self):
        """The key of the first array holding NaN or an infinity, else None."""
        return next((key for key, arr in self.arrays.items() if not np.isfinite(arr).all()),
                    None)

    def restore(self) -> None:
        for key, arr in self.arrays.items():
            np.copyto(arr, self._copies[key])


def _collect_params(params) -> dict:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if not isinstance(params, dict):
        raise TypeError(
            f"params must be a dict name -> float32 array or a model with .parameters(), "
            f"got {type(params).__name__}")
    if not params:
        raise ValueError("params is empty")
    out = {}
    for name, arr in params.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"params[{name!r}] must be a numpy array, got {type(arr).__name__}")
        if arr.dtype != np.float32:
            raise TypeError(f"params[{name!r}] must be a float32 array, got {arr.dtype}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"params[{name!r}] must be C-contiguous")
        if not arr.flags.writeable:
            raise ValueError(f"params[{name!r}] must be writable (it is updated in place)")
        out[name] = arr
    return out


class _Optimizer:
    def __init__(self, params, lr):
        # built on a model: its steps hold the model's lock (see spikeloc.SNN.lock)
        self._lock = getattr(params, "lock", None) or contextlib.nullcontext()
        self.params = _collect_params(params)
        self.lr = lr
        self._snapshot = None

    def _written(self) -> dict:
        """The arrays a step writes, by name: the parameters (and the optimiser's state)."""
        return dict(self.params)

    def _apply(self, grads: dict) -> None:
        raise NotImplementedError

    def _save_counters(self):
        return None

    def _restore_counters(self, saved) -> None:
        pass

    def step(self, grads) -> None:
        """Apply one update with ``grads`` (dict name -> array shaped like the parameter),
        in place; raises :class:`NonFiniteStepError` (and changes nothing) if the update
        would make a parameter or the optimiser's state non-finite."""
        grads = self._checked_grads(grads)
        with self._lock:
            self._step(grads)

    def _step(self, grads) -> None:
        written = self._written()
        if self._snapshot is None or not self._snapshot.holds(written):
            self._snapshot = Snapshot(written)
        self._snapshot.take()
        counters = self._save_counters()
        self._apply(grads)
        bad = self._snapshot.first_non_finite()
        if bad is not None:
            self._snapshot.restore()
            self._restore_counters(counters)
            name = bad[0] if isinstance(bad, tuple) else bad
            raise NonFiniteStepError(
                f"the optimiser step would make {name!r} NaN or infinite (lr = {self._lr:g}"
                f"{self._step_hint()}); the step was undone", name=name)

    def _step_hint(self) -> str:
        return ""

    @property
    def lr(self) -> float:
        """Learning rate."""
        return self._lr

    @lr.setter
    def lr(self, value):
        value = check_real(value, "lr")
        if value < 0:
            raise ValueError(f"lr must be >= 0, got {value}")
        self._lr = value

    def _checked_grads(self, grads) -> dict:
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict name -> array, got {type(grads).__name__}")
        if set(grads) != set(self.params):
            raise ValueError(
                f"grads must have the keys {sorted(self.params)}, got {sorted(grads)}")
        out = {}
        for name, w in self.params.items():
            g = np.asarray(grads[name])
            if g.dtype == object or not np.issubdtype(g.dtype, np.floating):
                raise TypeError(f"grads[{name!r}] must be a float array, got dtype {g.dtype}")
            if g.shape != w.shape:
                raise ValueError(
                    f"grads[{name!r}] must have shape {w.shape} (like the parameter), "
                    f"got {g.shape}")
            g = np.ascontiguousarray(g, dtype=np.float32)
            if not np.isfinite(g).all():
                raise ValueError(f"grads[{name!r}] contains NaN or infinite values")
            out[name] = g
        return out


class SGD(_Optimizer):
    """Plain gradient descent: ``w -= lr * grad`` (in place)."""

    def __init__(self, params, lr):
        super().__init__(params, lr)

    def _apply(self, grads) -> None:
        for name, w in self.params.items():
            _native.sgd_step(w, grads[name], self._lr)


class Adam(_Optimizer):
    """Adam with the semantics of ``torch.optim.Adam`` (no weight decay, no amsgrad).

    Keeps the moments ``m``, ``v`` (float32, shaped like the parameter) and the step count per
    parameter; ``step(grads)`` updates the parameter arrays in place.
    """

    def __init__(self, params, lr=0.01, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        beta1, beta2 = check_real(beta1, "betas[0]"), check_real(beta2, "betas[1]")
        for name, b in (("betas[0]", beta1), ("betas[1]", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        eps = check_real(eps, "eps")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.betas = (beta1, beta2)
        self.eps = eps
        self.state = {
            name: {"step": 0, "m": np.zeros_like(w), "v": np.zeros_like(w)}
            for name, w in self.params.items()
        }

    def _written(self) -> dict:
        out = dict(self.params)
        for name, st in self.state.items():
            out[(name, "m")] = st["m"]
            out[(name, "v")] = st["v"]
        return out

    def _save_counters(self):
        return {name: st["step"] for name, st in self.state.items()}

    def _restore_counters(self, saved) -> None:
        for name, step in saved.items():
            self.state[name]["step"] = step

    def _step_hint(self) -> str:
        return f", eps = {self.eps:g}"

    def _apply(self, grads) -> None:
        beta1, beta2 = self.betas
        for name, w in self.params.items():
            st = self.state[name]
            st["step"] += 1
            _native.adam_step(w, grads[name], st["m"], st["v"], self._lr, beta1, beta2,
                              self.eps, st["step"])

    @property
    def steps_taken(self) -> int:
        """Number of steps taken (of the first parameter)."""
        return next(iter(self.state.values()))["step"]

