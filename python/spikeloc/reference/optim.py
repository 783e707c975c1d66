"""Optimisers (MODEL.md section 3): Adam with torch.optim.Adam semantics, and plain SGD.

Both functions are pure: they return new float64 arrays and leave their arguments unchanged
(the C kernels ``spk_adam_step`` / ``spk_sgd_step`` update float32 buffers in place).
"""

from __future__ import annotations

import numpy as np

__all__ = ["adam_step", "sgd_step", "adam_trajectory"]


def adam_step(w, g, m, v, lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8, t: int = 1):
    """One Adam step (no weight decay, no amsgrad); ``t >= 1`` is the step being taken.

        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2
        w = w - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    (the order of operations of torch.optim.Adam's single-tensor path). All arrays have the
    same shape. Returns ``(w, m, v)`` as new float64 arrays.
    """
    if t < 1:
        raise ValueError("Adam step t must be >= 1")
    w = np.asarray(w, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    m = beta1 * np.asarray(m, dtype=np.float64) + (1.0 - beta1) * g
    v = beta2 * np.asarray(v, dtype=np.float64) + (1.0 - beta2) * g * g
    bc1 = 1.0 - beta1**t
    bc2 = 1.0 - beta2**t
    denom = np.sqrt(v) / np.sqrt(bc2) + eps
    w = w - (lr / bc1) * m / denom
    return w, m, v


def sgd_step(w, g, lr: float):
    """Plain gradient descent: returns ``w - lr g`` (float64, new array)."""
    return np.asarray(w, dtype=np.float64) - lr * np.asarray(g, dtype=np.float64)


def adam_trajectory(w0, grads, lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.999,
                    eps: float = 1e-8) -> np.ndarray:
    """Weights after each of ``len(grads)`` Adam steps from ``w0`` with m = v = 0 initially.
    grads (steps, n); returns (steps, n) float64."""
    w = np.asarray(w0, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t, g in enumerate(np.asarray(grads, dtype=np.float64), start=1):
        w, m, v = adam_step(w, g, m, v, lr, beta1, beta2, eps, t)
        out.append(w)
    return np.array(out)
