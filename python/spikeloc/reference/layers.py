"""Building blocks of the research variants and of the general network (MODEL.md sections 4
and 7), float64, written to be read: the LIF layer with every reset, surrogate, adaptive
threshold and optional recurrent weights, Dale's law and the dropout mask.

LIF layer, per-neuron decay a = exp(-dt / tau), threshold theta_n = 1 + beta_a b_n
(b_0 = 0; beta_a = 0 without adaptation), v_0 = 0, for n = 0 .. T-1::

    delayed:      s_{n+1} = H(v_n - theta_n)  (s_0 = 0),  v_{n+1} = (a v_n + I_n)(1 - s_n)
    same_step:    s_n = H(v_n - theta_n),                 v_{n+1} = (a v_n + I_n)(1 - s_n)
    subtractive:  s_n = H(v_n - theta_n),                 v_{n+1} = a v_n + I_n - s_n theta_n
    zero:         s_n = H(v_n - theta_n),                 v_{n+1} = a v_n (1 - s_n) + I_n
    all:          b_{n+1} = rho b_n + (1 - rho) s_n,      rho = exp(-dt / tau_a)

(v, b are updated for n <= T-2; the recorded spikes are s_0 .. s_{T-1}.) A recurrent layer
adds s_n Wrec to I_n.

Dale's law: the network runs on W_eff = |W| * sign (sign: one +-1 per presynaptic unit, i.e.
per row; 0 leaves a row unconstrained); dW = dW_eff * sign * sgn(W) with sgn(0) = 0.

Dropout (training only): unit j of sample `index` at step n is dropped iff
uniform53(key(seed, index), n N + j) < p; kept spikes are scaled by 1 / (1 - p).
"""

from __future__ import annotations

import numpy as np

from . import rng as _rng
from .network import _spike, surrogate

__all__ = ["RESETS", "SURROGATES", "surrogate_fn", "dale_signs", "dale_effective",
           "dale_gradient", "dropout_mask", "lif_forward", "lif_backward"]

RESETS = ("delayed", "same_step", "subtractive", "zero")
SURROGATES = ("sigmoid", "fast_sigmoid", "arctan", "piecewise_linear")


def surrogate_fn(x, kind: str = "sigmoid", beta: float = 5.0) -> np.ndarray:
    """Surrogate derivative of H at x with scale beta:
    sigmoid beta sig(beta x)(1 - sig(beta x)); fast_sigmoid 1 / (1 + beta |x|)^2;
    arctan (beta / 2) / (1 + (pi beta x / 2)^2); piecewise_linear beta max(0, 1 - |x|)."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "sigmoid":
        return surrogate(x, beta)
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + beta * np.abs(x)) ** 2
    if kind == "arctan":
        return (beta / 2.0) / (1.0 + (np.pi * beta * x / 2.0) ** 2)
    if kind == "piecewise_linear":
        return beta * np.maximum(0.0, 1.0 - np.abs(x))
    raise ValueError(f"surrogate must be one of {SURROGATES}, got {kind!r}")


# ---------------------------------------------------------------------------- Dale's law

def dale_signs(n: int, ie_ratio: float, inhibitory: str = "first", rng=None) -> np.ndarray:
    """Sign per presynaptic unit (+1 excitatory, -1 inhibitory), float64 (n,).
    "first": the first ceil(ie_ratio n) units are inhibitory (seed 000, torch.arange);
    "random": floor(ie_ratio n) units drawn without replacement by ``rng`` (seed 001)."""
    signs = np.ones(n)
    if inhibitory == "first":
        signs[: int(np.ceil(ie_ratio * n - 1e-12))] = -1.0
    elif inhibitory == "random":
        signs[rng.choice(n, int(np.floor(ie_ratio * n + 1e-12)), replace=False)] = -1.0
    else:
        raise ValueError(f"inhibitory must be 'first' or 'random', got {inhibitory!r}")
    return signs


def dale_effective(w, sign) -> np.ndarray:
    """W_eff = |W| * sign (sign per row: +1, -1, or 0 for a row left unconstrained, W_eff = W);
    sign None: W unchanged."""
    w = np.asarray(w, dtype=np.float64)
    if sign is None:
        return w
    sign = np.asarray(sign, dtype=np.float64)[:, None]
    return np.where(sign == 0, w, np.abs(w) * sign)


def dale_gradient(g_eff, w, sign) -> np.ndarray:
    """dW = dW_eff * sign * sgn(W), sgn(0) = 0 (a weight at 0 stays culled); rows with sign 0
    (unconstrained) keep dW_eff."""
    if sign is None:
        return g_eff
    sign = np.asarray(sign, dtype=np.float64)[:, None]
    return np.where(sign == 0, g_eff, g_eff * sign * np.sign(np.asarray(w)))


# ---------------------------------------------------------------------------- dropout

def dropout_mask(index, steps: int, n_hidden: int, p: float, seed: int) -> np.ndarray:
    """D (B, T, N_h): 0 where uniform53(key(seed, index_b), n N_h + j) < p, else 1 / (1 - p)."""
    index = np.asarray(index, dtype=np.int64)
    if p == 0:
        return np.ones((index.size, steps, n_hidden))
    words = np.arange(steps * n_hidden, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _rng.word(_rng.key(seed, index)[:, None], words[None, :]) >> np.uint64(11)
    u = bits.astype(np.float64) / 2.0**53
    return np.where(u < p, 0.0, 1.0 / (1.0 - p)).reshape(index.size, steps, n_hidden)


# ---------------------------------------------------------------------------- LIF layer

def lif_forward(I, a, reset: str = "delayed", rho: float = 0.0, beta_a: float = 0.0,
                spike_fn: str = "heaviside", beta: float = 5.0, w_rec=None) -> dict:
    """LIF layer driven by currents I (B, T, N) with decays a (N,) (see the module docstring).
    With recurrent weights w_rec (N, N) the current of step n is I_n + s_n w_rec (the spike
    recorded at step n drives step n + 1 like I_n does; MODEL.md section 7).
    Returns V (v_n), S (s_n), P (a v_n + I_n; 0 at n = T-1), A (b_n), all (B, T, N)."""
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    B, T, N = I.shape
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (N,))
    V, S, P, A = (np.zeros((B, T, N)) for _ in range(4))
    for n in range(T):
        theta = 1.0 + beta_a * A[:, n]
        q = _spike(V[:, n] - theta, spike_fn, beta)
        if reset == "delayed":
            if n + 1 < T:
                S[:, n + 1] = q
        else:
            S[:, n] = q
        if n == T - 1:
            break
        s = S[:, n]
        current = I[:, n] if w_rec is None else I[:, n] + s @ w_rec
        P[:, n] = a * V[:, n] + current
        if reset == "subtractive":
            V[:, n + 1] = P[:, n] - s * theta
        elif reset == "zero":
            V[:, n + 1] = a * V[:, n] * (1.0 - s) + current
        else:
            V[:, n + 1] = P[:, n] * (1.0 - s)
        A[:, n + 1] = rho * A[:, n] + (1.0 - rho) * s
    return {"V": V, "S": S, "P": P, "A": A}


def lif_backward(ds, fw, a, reset: str = "delayed", rho: float = 0.0, beta_a: float = 0.0,
                 surrogate: str = "sigmoid", beta: float = 5.0, w_rec=None,
                 detach_reset: bool = False):
    """Adjoints of ``lif_forward`` given ds (B, T, N), the direct gradient of the spikes.
    Returns (gI (B, T, N), ga (N,), g_rec (N, N) or None without w_rec). With
    sg_n = surr(v_n - theta_n), gX' = gX_{n+1} and r_n = gI_n w_rec^T (0 without w_rec):

      delayed:     gs_n = ds_n + r_n - gv' P_n + gb' (1 - rho)
                   gv_n = gs' sg_n + gv' a (1 - s_n);  gb_n = -beta_a gs' sg_n + rho gb'
                   gI_n = gv' (1 - s_n);  ga += gv' v_n (1 - s_n)
      same_step:   gs_n = ds_n + r_n - gv' P_n + gb' (1 - rho)
                   gv_n = gs_n sg_n + gv' a (1 - s_n); gb_n = -beta_a gs_n sg_n + rho gb'
                   gI_n = gv' (1 - s_n);  ga += gv' v_n (1 - s_n)
      subtractive: gs_n = ds_n + r_n - gv' theta_n + gb' (1 - rho)
                   gv_n = gs_n sg_n + gv' a;  gb_n = -beta_a (gs_n sg_n + gv' s_n) + rho gb'
                   gI_n = gv';  ga += gv' v_n
      zero:        gs_n = ds_n + r_n - gv' a v_n + gb' (1 - rho)
                   gv_n, gb_n as same_step;  gI_n = gv';  ga += gv' v_n (1 - s_n)
      g_rec = sum_n s_n^T gI_n

    for n = T-1 .. 0, starting from gv_T = gb_T = gs_T = 0 (nothing at step T exists).
    ``detach_reset`` treats the reset as a constant (the terms -gv' P_n, -gv' theta_n,
    -gv' a v_n and -beta_a gv' s_n vanish; the forward values still multiply), as e-prop does."""
    V, S, P, A = fw["V"], fw["S"], fw["P"], fw["A"]
    B, T, N = V.shape
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (N,))
    keep_reset = 0.0 if detach_reset else 1.0
    gI = np.zeros((B, T, N))
    ga = np.zeros(N)
    g_rec = None if w_rec is None else np.zeros((N, N))
    gv1, gb1, gs1 = np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, N))
    for n in range(T - 1, -1, -1):
        v, s = V[:, n], S[:, n]
        theta = 1.0 + beta_a * A[:, n]
        sg = surrogate_fn(v - theta, surrogate, beta)
        gI[:, n] = gv1 if reset in ("subtractive", "zero") else gv1 * (1.0 - s)
        ds_n = ds[:, n]
        if w_rec is not None:
            ds_n = ds_n + gI[:, n] @ w_rec.T
            g_rec += s.T @ gI[:, n]
        if reset == "subtractive":
            gs = ds_n - keep_reset * gv1 * theta + gb1 * (1.0 - rho)
            gv = gs * sg + gv1 * a
            gb = -beta_a * (gs * sg + keep_reset * gv1 * s) + rho * gb1
            ga += (gv1 * v).sum(axis=0)
        else:
            reset_value = a * v if reset == "zero" else P[:, n]  # what (1 - s_n) multiplies
            gs = ds_n - keep_reset * gv1 * reset_value + gb1 * (1.0 - rho)
            through = gs1 if reset == "delayed" else gs
            gv = through * sg + gv1 * a * (1.0 - s)
            gb = -beta_a * through * sg + rho * gb1
            ga += (gv1 * v * (1.0 - s)).sum(axis=0)
        gv1, gb1, gs1 = gv, gb, gs
    return gI, ga, g_rec
