"""Research variants of the spiking network (MODEL.md section 4), float64, written to be read.

One general network covers every variant and their combinations; with the defaults it is the
network of ``reference.network`` (delayed reset, sigmoid surrogate, scalar time constants).
Shapes: x (B, T, N_in), W1 (N_in, N_h), W2 (N_h, C), labels (B,); times in seconds.

Dale's law: the network runs on W_eff = |W| * sign (sign: one +-1 per presynaptic unit, i.e.
per row); dW = dW_eff * sign * sgn(W) with sgn(0) = 0.

LIF layer (hidden layer; also the output layer of the spike-count readout, there without
adaptation), per-neuron decay a = exp(-dt / tau), threshold theta_n = 1 + beta_a b_n
(b_0 = 0; beta_a = 0 without adaptation), v_0 = 0, for n = 0 .. T-1::

    delayed:      s_{n+1} = H(v_n - theta_n)  (s_0 = 0),  v_{n+1} = (a v_n + I_n)(1 - s_n)
    same_step:    s_n = H(v_n - theta_n),                 v_{n+1} = (a v_n + I_n)(1 - s_n)
    subtractive:  s_n = H(v_n - theta_n),                 v_{n+1} = a v_n + I_n - s_n theta_n
    all:          b_{n+1} = rho b_n + (1 - rho) s_n,      rho = exp(-dt / tau_a)

(v, b are updated for n <= T-2; the recorded spikes are s_0 .. s_{T-1}.)

Readout: J = (S * D) W2, with D the dropout mask (1 without dropout). Either the leaky
membrane u_{n+1} = a_o u_n + J_n aggregated by "mean" / "sum" (x 0.01) / "max", or
("spike_count") a LIF output layer driven by J whose logits are its spike counts
m_c = sum_n s^o_{n,c}. Loss: mean cross-entropy plus, optionally, the firing-rate regulariser
of the hidden units, per sample r_j = (sum_n s_{n,j}) / (T dt) [Hz] and
L_reg = c mean_j (max(0, r_j - r_max) / r_max)^2, averaged over the batch.

Dropout (training only): unit j of sample `index` at step n is dropped iff
uniform53(key(seed, index), n N_h + j) < p; kept spikes are scaled by 1 / (1 - p).

Backward: exact reverse mode of the above with dH/dx replaced by the surrogate (adjoints
below in ``lif_backward``); the reset and the threshold adaptation are not detached.
Learnable time constants: dL/dtau_j = dL/da_j a_j dt / tau_j^2.
"""

from __future__ import annotations

import numpy as np

from . import rng as _rng
from .network import (SUM_SCALE, _spike, aggregate, aggregate_backward, cross_entropy, sigmoid,
                      surrogate)

__all__ = [
    "RESETS", "SURROGATES", "VARIANT_READOUTS", "surrogate_fn", "dale_signs", "dale_effective",
    "dale_gradient", "dropout_mask", "lif_forward", "lif_backward", "variant_forward",
    "variant_loss_and_grad", "tau_variance_penalty",
]

RESETS = ("delayed", "same_step", "subtractive")
SURROGATES = ("sigmoid", "fast_sigmoid", "arctan", "piecewise_linear")
VARIANT_READOUTS = ("mean", "sum", "max", "spike_count")


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
    """W_eff = |W| * sign (sign per row); sign None: W unchanged."""
    w = np.asarray(w, dtype=np.float64)
    return w if sign is None else np.abs(w) * np.asarray(sign, dtype=np.float64)[:, None]


def dale_gradient(g_eff, w, sign) -> np.ndarray:
    """dW = dW_eff * sign * sgn(W), sgn(0) = 0 (a weight at 0 stays culled)."""
    if sign is None:
        return g_eff
    return g_eff * np.asarray(sign, dtype=np.float64)[:, None] * np.sign(np.asarray(w))


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
                spike_fn: str = "heaviside", beta: float = 5.0) -> dict:
    """LIF layer driven by currents I (B, T, N) with decays a (N,) (see the module docstring).
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
        P[:, n] = a * V[:, n] + I[:, n]
        V[:, n + 1] = P[:, n] - s * theta if reset == "subtractive" else P[:, n] * (1.0 - s)
        A[:, n + 1] = rho * A[:, n] + (1.0 - rho) * s
    return {"V": V, "S": S, "P": P, "A": A}


def lif_backward(ds, fw, a, reset: str = "delayed", rho: float = 0.0, beta_a: float = 0.0,
                 surrogate: str = "sigmoid", beta: float = 5.0):
    """Adjoints of ``lif_forward`` given ds (B, T, N), the direct gradient of the spikes.
    Returns (gI (B, T, N), ga (N,)). With sg_n = surr(v_n - theta_n) and gX' = gX_{n+1}:

      delayed:     gs_n = ds_n - gv' P_n + gb' (1 - rho)
                   gv_n = gs' sg_n + gv' a (1 - s_n);  gb_n = -beta_a gs' sg_n + rho gb'
                   gI_n = gv' (1 - s_n);  ga += gv' v_n (1 - s_n)
      same_step:   gs_n = ds_n - gv' P_n + gb' (1 - rho)
                   gv_n = gs_n sg_n + gv' a (1 - s_n); gb_n = -beta_a gs_n sg_n + rho gb'
                   gI_n = gv' (1 - s_n);  ga += gv' v_n (1 - s_n)
      subtractive: gs_n = ds_n - gv' theta_n + gb' (1 - rho)
                   gv_n = gs_n sg_n + gv' a;  gb_n = -beta_a (gs_n sg_n + gv' s_n) + rho gb'
                   gI_n = gv';  ga += gv' v_n

    for n = T-1 .. 0, starting from gv_T = gb_T = gs_T = 0 (nothing at step T exists)."""
    V, S, P, A = fw["V"], fw["S"], fw["P"], fw["A"]
    B, T, N = V.shape
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), (N,))
    gI = np.zeros((B, T, N))
    ga = np.zeros(N)
    gv1, gb1, gs1 = np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, N))
    for n in range(T - 1, -1, -1):
        v, s = V[:, n], S[:, n]
        theta = 1.0 + beta_a * A[:, n]
        sg = surrogate_fn(v - theta, surrogate, beta)
        if reset == "subtractive":
            gs = ds[:, n] - gv1 * theta + gb1 * (1.0 - rho)
            gv = gs * sg + gv1 * a
            gb = -beta_a * (gs * sg + gv1 * s) + rho * gb1
            gI[:, n] = gv1
            ga += (gv1 * v).sum(axis=0)
        else:
            gs = ds[:, n] - gv1 * P[:, n] + gb1 * (1.0 - rho)
            through = gs1 if reset == "delayed" else gs
            gv = through * sg + gv1 * a * (1.0 - s)
            gb = -beta_a * through * sg + rho * gb1
            gI[:, n] = gv1 * (1.0 - s)
            ga += (gv1 * v * (1.0 - s)).sum(axis=0)
        gv1, gb1, gs1 = gv, gb, gs
    return gI, ga


# ---------------------------------------------------------------------------- network

def _decay(tau, n: int, dt: float) -> tuple:
    tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), (n,)).copy()
    return tau, np.exp(-dt / tau)


def variant_forward(x, w1, w2, dt: float, tau_h, tau_o, *, readout: str = "mean",
                    reset: str = "delayed", adapt_tau=None, adapt_strength: float = 0.0,
                    sign1=None, sign2=None, mask=None, spike_fn: str = "heaviside",
                    beta: float = 5.0) -> dict:
    """Forward pass of the general network. tau_h (N_h,) or scalar, tau_o (C,) or scalar [s];
    adapt_tau [s] (None: no adaptive threshold); sign1 (N_in,), sign2 (N_h,) Dale signs or
    None; mask: dropout mask D (B, T, N_h) or None. Returns the hidden layer's V, S, P, A as
    hidden_v, hidden_spikes, hidden_pre, hidden_adapt, output_membrane (u, or the output LIF
    voltages for "spike_count"), output_spikes ("spike_count" only), logits, and the inputs
    of the backward pass."""
    if readout not in VARIANT_READOUTS:
        raise ValueError(f"readout must be one of {VARIANT_READOUTS}, got {readout!r}")
    x = np.asarray(x, dtype=np.float64)
    w1e, w2e = dale_effective(w1, sign1), dale_effective(w2, sign2)
    B, T, _ = x.shape
    N_h, C = w1e.shape[1], w2e.shape[1]
    tau_h, a_h = _decay(tau_h, N_h, dt)
    tau_o, a_o = _decay(tau_o, C, dt)
    rho = 0.0 if adapt_tau is None else float(np.exp(-dt / adapt_tau))
    beta_a = 0.0 if adapt_tau is None else float(adapt_strength)
    hid = lif_forward(x @ w1e, a_h, reset, rho, beta_a, spike_fn, beta)
    D = np.ones((B, T, N_h)) if mask is None else np.asarray(mask, dtype=np.float64)
    J = (hid["S"] * D) @ w2e
    out = {"hidden_v": hid["V"], "hidden_spikes": hid["S"], "hidden_pre": hid["P"],
           "hidden_adapt": hid["A"], "mask": D, "J": J, "w1_eff": w1e, "w2_eff": w2e,
           "a_h": a_h, "a_o": a_o, "tau_h": tau_h, "tau_o": tau_o, "rho": rho, "beta_a": beta_a}
    if readout == "spike_count":
        o = lif_forward(J, a_o, reset, 0.0, 0.0, spike_fn, beta)
        out.update(output_layer=o, output_membrane=o["V"], output_spikes=o["S"],
                   logits=o["S"].sum(axis=1))
    else:
        U = np.zeros((B, T, C))
        for n in range(T - 1):
            U[:, n + 1] = a_o * U[:, n] + J[:, n]
        out.update(output_membrane=U, logits=aggregate(U, readout))
    return out


def variant_loss_and_grad(x, labels, w1, w2, dt: float, tau_h, tau_o, *, readout: str = "mean",
                          reset: str = "delayed", surrogate: str = "sigmoid", beta: float = 5.0,
                          adapt_tau=None, adapt_strength: float = 0.0, sign1=None, sign2=None,
                          rate_regularizer=None, dropout: float = 0.0, dropout_seed: int = 0,
                          index=None, spike_fn: str = "heaviside"):
    """Loss and surrogate gradients of the general network.

    rate_regularizer: None or (c, r_max [Hz]). dropout: probability p (mask from
    ``dropout_mask(index, ...)``, index defaulting to 0 .. B-1). Returns
    ``(loss, grad_w1, grad_w2, grad_tau_h (N_h,), grad_tau_o (C,), extras)``; the weight
    gradients are with respect to the raw weights (Dale's law applied)."""
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    N_h, C = np.shape(w1)[1], np.shape(w2)[1]
    if index is None:
        index = np.arange(B)
    mask = dropout_mask(index, T, N_h, dropout, dropout_seed) if dropout > 0 else None
    fw = variant_forward(x, w1, w2, dt, tau_h, tau_o, readout=readout, reset=reset,
                         adapt_tau=adapt_tau, adapt_strength=adapt_strength, sign1=sign1,
                         sign2=sign2, mask=mask, spike_fn=spike_fn, beta=beta)
    S, D, a_o = fw["hidden_spikes"], fw["mask"], fw["a_o"]
    loss, dm = cross_entropy(fw["logits"], labels)
    if readout == "spike_count":
        dso = np.broadcast_to(dm[:, None, :], (B, T, C)).copy()   # m_c = sum_n s^o_n
        dJ, ga_o = lif_backward(dso, fw["output_layer"], a_o, reset, 0.0, 0.0, surrogate, beta)
    else:
        U = fw["output_membrane"]
        du = aggregate_backward(U, dm, readout)
        dJ = np.zeros((B, T, C))
        gu = du[:, T - 1].copy()
        for n in range(T - 2, -1, -1):
            dJ[:, n] = gu                                          # dJ_n = gu_{n+1}
            gu = du[:, n] + a_o * gu
        ga_o = (dJ * U).sum(axis=(0, 1))                            # u_{n+1} = a_o u_n + J_n
    g2e = np.einsum("btk,btc->kc", S * D, dJ)
    ds = D * (dJ @ fw["w2_eff"].T)
    if rate_regularizer is not None:
        c, r_max = rate_regularizer
        r = S.sum(axis=1) / (T * dt)                                # (B, N_h) [Hz]
        e = np.maximum(0.0, r - r_max) / r_max
        loss += float((c * (e ** 2).mean(axis=1)).mean())
        ds = ds + (2.0 * c / N_h * e / r_max / (T * dt) / B)[:, None, :]
    hid = {"V": fw["hidden_v"], "S": S, "P": fw["hidden_pre"], "A": fw["hidden_adapt"]}
    gI, ga_h = lif_backward(ds, hid, fw["a_h"], reset, fw["rho"], fw["beta_a"], surrogate, beta)
    g1e = np.einsum("bti,bth->ih", x, gI)
    g1, g2 = dale_gradient(g1e, w1, sign1), dale_gradient(g2e, w2, sign2)
    gtau_h = ga_h * fw["a_h"] * dt / fw["tau_h"] ** 2
    gtau_o = ga_o * a_o * dt / fw["tau_o"] ** 2
    extras = dict(fw)
    extras["dlogits"] = dm
    return loss, g1, g2, gtau_h, gtau_o, extras


def tau_variance_penalty(tau, lam: float):
    """lambda Var(tau) (population variance, ddof 0) and its gradient 2 lambda (tau - mean) / N."""
    tau = np.asarray(tau, dtype=np.float64)
    return float(lam * tau.var()), 2.0 * lam * (tau - tau.mean()) / tau.size
