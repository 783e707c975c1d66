"""Optimisers (MODEL.md section 3) that update float32 parameter arrays in place.

``params`` is a dict name -> float32 C-contiguous writable array (e.g. ``model.parameters()``)
or a model with a ``parameters()`` method. ``step(grads)`` takes a dict with the same names and
shapes.
"""

from __future__ import annotations

import numpy as np

from ._native_api import _native, check_real

__all__ = ["Adam", "SGD"]


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
        self.params = _collect_params(params)
        self.lr = lr

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

    def step(self, grads) -> None:
        """Apply one update with ``grads`` (dict name -> array shaped like the parameter)."""
        grads = self._checked_grads(grads)
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

    def step(self, grads) -> None:
        """Apply one Adam update with ``grads`` (dict name -> array shaped like the parameter)."""
        grads = self._checked_grads(grads)
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

