"""Trainable synaptic delays between the inputs and the first layer (MODEL.md section 7), float64.

A delay ``d >= 0`` is a real number of time steps, ``k = floor(d)``, ``f = d - k``. The input
spike at step ``n`` reaches the synapse at ``n + d`` by linear interpolation between the two
neighbouring steps, so the current of unit ``j`` at step ``n`` is::

    I_nj = sum_i W_ij [ (1 - f_ij) x_{n-k_ij, i} + f_ij x_{n-k_ij-1, i} ]      (x at steps < 0 is 0)

``per="input"``: one delay per input fibre, ``d`` of shape (N_in,), ``d_ij = d_i``;
``per="synapse"``: one per input-unit pair, ``d`` of shape (N_in, N_out). With the current's
adjoint ``gI_nj = dL/dI_nj``::

    dL/dW_ij = sum_n gI_nj [ (1 - f_ij) x_{n-k_ij, i} + f_ij x_{n-k_ij-1, i} ]
    dL/dd_ij = W_ij sum_n gI_nj [ x_{n-k_ij-1, i} - x_{n-k_ij, i} ]

(at an integer ``d`` the right derivative; ``per="input"`` sums the second line over ``j``).
Both are written with the lagged correlations ``G_m[i, j] = sum_{b, n} x_{b, n-m, i} gI_{b, n, j}``:
``dW = (1 - f) G_k + f G_{k+1}`` and ``dd = W (G_{k+1} - G_k)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PER", "split", "shift", "delayed_current", "delay_gradients"]

PER = ("input", "synapse")


def split(d):
    """Integer part k (int64) and fraction f of the delays d (any shape)."""
    d = np.asarray(d, dtype=np.float64)
    k = np.floor(d)
    return k.astype(np.int64), d - k


def shift(x, m: int) -> np.ndarray:
    """x delayed by m >= 0 steps along axis 1: y[:, n] = x[:, n - m], 0 for n < m."""
    x = np.asarray(x, dtype=np.float64)
    y = np.zeros_like(x)
    if m < x.shape[1]:
        y[:, m:] = x[:, : x.shape[1] - m]
    return y


def _per_synapse(d, w):
    """Delays broadcast to the shape of w (N_in, N_out): a per-input vector becomes columns."""
    d = np.asarray(d, dtype=np.float64)
    return np.broadcast_to(d[:, None], w.shape) if d.ndim == 1 else d


def delayed_current(x, w, d) -> np.ndarray:
    """I (B, T, N_out) of the inputs x (B, T, N_in) through weights w (N_in, N_out) with delays
    d, (N_in,) or (N_in, N_out) [steps]: the sum over the lags m of x delayed by m times the
    weights whose delay interpolates at m."""
    w = np.asarray(w, dtype=np.float64)
    k, f = split(_per_synapse(d, w))
    current = np.zeros(np.shape(x)[:2] + (w.shape[1],))
    for m in range(int(k.max(initial=0)) + 2):
        coefficient = w * np.where(k == m, 1.0 - f, 0.0) + w * np.where(k + 1 == m, f, 0.0)
        if coefficient.any():
            current += shift(x, m) @ coefficient
    return current


def delay_gradients(x, w, d, gI):
    """(dL/dW (N_in, N_out), dL/dd (shape of d)) from the current's adjoint gI (B, T, N_out)."""
    w = np.asarray(w, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    k, f = split(_per_synapse(d, w))
    lags = int(k.max(initial=0)) + 2
    G = np.stack([np.einsum("bni,bnj->ij", shift(x, m), gI) for m in range(lags)])
    rows, cols = np.indices(w.shape)
    g_k, g_next = G[k, rows, cols], G[k + 1, rows, cols]
    grad_w = (1.0 - f) * g_k + f * g_next
    grad_d = w * (g_next - g_k)
    return grad_w, (grad_d.sum(axis=1) if d.ndim == 1 else grad_d)
