"""The general network: delays, recurrence and depth (MODEL.md section 7) with every variant of
section 4, and the readout and loss of e-prop (section 5). Float64, written to be read.

Inputs x (B, T, N_in) -> hidden LIF layers l = 1 .. L -> a readout of C classes. L = 0 is the
membrane-only network (the readout reads the inputs). Each hidden layer is the LIF layer of
``layers.lif_forward`` (reset, surrogate, adaptive threshold, per-neuron decay), driven by
the spikes of the layer below (x for l = 1) through ``w[l]``, and, if recurrent, by its own
spikes through ``w_rec[l]`` (I_n = s^{l-1}_n W_l + s^l_n Wrec_l). The first weight matrix may
carry delays (``delays.delayed_current``).

Readout: J = (S^L * D) W_out (+ b), D the dropout mask of the top layer. The readout membrane
is R_0 = 0, R_m = a_o R_{m-1} + J_{m-lag} + b for m >= 1, and the loss head reads the T
recorded values R_o .. R_{o+T-1}:

- timing "seeds" (lag 1, o = 0, T kernel steps): R is the u of MODEL.md section 2;
- timing "eprop" (lag 0, o = 1, T + 1 kernel steps, the input padded with one empty step):
  the readout sees the spikes of the same step, as in e-prop's y_n = kappa y_{n-1} + z_n W + b.
  With the subtractive reset the hidden spikes s_{n+1} are then e-prop's z_n.

Heads: "mean" / "sum" (x 0.01) / "max" of the recorded R, cross-entropy of the aggregate;
"spike_count": a LIF output layer driven by J whose spike counts are the logits; "window":
the per-step loss over the last ``window`` recorded steps ("cross_entropy" or "mse"
0.5 sum_k (R_k - onehot_k)^2), averaged over the window, logits the mean of R over the window.

Rate penalty on every hidden layer l, per sample, r_j = (spikes of unit j) / (T dt) [Hz]:
("upper", c, r_max): c mean_j (max(0, r_j - r_max) / r_max)^2 (MODEL.md section 4);
("target", c, f): 0.5 c mean_j (r_j - f)^2 (e-prop). Averaged over the batch.

Dale's law: ``sign[l]`` gives a sign per row of ``w[l]`` and ``sign_rec[l]`` per row of
``w_rec[l]`` (+1, -1, or 0 for an unconstrained row; None: no constraint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import delays as _delays
from .network import aggregate, aggregate_backward, cross_entropy
from .layers import dale_effective, dale_gradient, dropout_mask, lif_backward, lif_forward

__all__ = ["HEADS", "TIMINGS", "WINDOW_LOSSES", "Spec", "general_forward",
           "general_loss_and_grad", "window_loss"]

HEADS = ("mean", "sum", "max", "spike_count", "window")
TIMINGS = ("seeds", "eprop")
WINDOW_LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class Spec:
    """Options of the general network (sizes come from the parameter arrays).

    recurrent: one flag per hidden layer. readout: a head of ``HEADS``; window, loss: of the
    "window" head. delays: None, "input" or "synapse" (on the first weight matrix). rate: None,
    ("upper", c, r_max) or ("target", c, f_target). Times in seconds."""

    dt: float
    recurrent: tuple = ()
    readout: str = "mean"
    window: int = 0
    loss: str = "cross_entropy"
    timing: str = "seeds"
    reset: str = "delayed"
    surrogate: str = "sigmoid"
    beta: float = 5.0
    adapt_tau: Optional[float] = None
    adapt_strength: float = 0.0
    detach_reset: bool = False
    delays: Optional[str] = None
    rate: Optional[tuple] = None
    dropout: float = 0.0
    dropout_seed: int = 0

    @property
    def extra_steps(self) -> int:
        """Kernel steps beyond the data's T (1 for the e-prop timing)."""
        return 1 if self.timing == "eprop" else 0


def _check(spec: Spec, params: dict):
    if spec.readout not in HEADS:
        raise ValueError(f"readout must be one of {HEADS}, got {spec.readout!r}")
    if spec.timing not in TIMINGS:
        raise ValueError(f"timing must be one of {TIMINGS}, got {spec.timing!r}")
    if spec.readout == "spike_count" and spec.timing != "seeds":
        raise ValueError("the spike-count readout needs the seeds' timing")
    if spec.timing == "eprop" and len(params["w"]) == 1:
        raise ValueError("the e-prop timing needs a hidden layer")
    if spec.readout == "window" and spec.loss not in WINDOW_LOSSES:
        raise ValueError(f"loss must be one of {WINDOW_LOSSES}, got {spec.loss!r}")
    if len(spec.recurrent) != len(params["w"]) - 1:
        raise ValueError("one recurrent flag per hidden layer")
    if spec.delays not in (None,) + _delays.PER:
        raise ValueError(f"delays must be None or one of {_delays.PER}, got {spec.delays!r}")


def _sizes(x, params: dict, spec: Spec):
    """Checks the spec, and returns x (float64), B, T, L, the extra kernel steps o, T + o."""
    _check(spec, params)
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    o = spec.extra_steps
    return x, B, T, len(params["w"]) - 1, o, T + o


def _listed(params, key, n):
    value = params.get(key)
    return [None] * n if value is None else list(value)


def _layer_constants(spec: Spec, tau):
    tau = np.asarray(tau, dtype=np.float64)
    return tau, np.exp(-spec.dt / tau)


def general_forward(x, params: dict, spec: Spec, *, mask=None,
                    spike_fn: str = "heaviside") -> dict:
    """Forward pass. params: "w" (L + 1 matrices, w[0] (N_in, N_1) .. w[L] (N_L, C)), "w_rec"
    (L entries, None where not recurrent), "b" (C,) or None, "delays" ((N_in,) or (N_in, N_1)
    [steps]) or None, "tau" (L + 1 per-neuron arrays [s]: hidden layers, then the output),
    "sign", "sign_rec" (Dale signs, see the module docstring) or None. mask: the dropout mask
    D (B, T_kernel, N_L) or None.

    Returns: "layers" (per hidden layer the dict of ``lif_forward``: V, S, P, A over the kernel
    steps), "hidden_spikes" (per layer (B, T, N_l), the recorded steps), "readout" (R over the
    kernel steps), "output_membrane" (B, T, C: R recorded, or the output layer's voltages for
    "spike_count"), "output_layer" (spike count only), "logits" (B, C), and what the backward
    pass needs."""
    x, B, T, L, o, Tk = _sizes(x, params, spec)
    xk = np.concatenate([x, np.zeros((B, o, x.shape[2]))], axis=1) if o else x
    signs = _listed(params, "sign", L + 1)
    signs_rec = _listed(params, "sign_rec", L)
    w_eff = [dale_effective(w, s) for w, s in zip(params["w"], signs)]
    rec_eff = [None if w is None else dale_effective(w, s)
               for w, s in zip(_listed(params, "w_rec", L), signs_rec)]
    taus = [_layer_constants(spec, t) for t in params["tau"]]
    rho = 0.0 if spec.adapt_tau is None else float(np.exp(-spec.dt / spec.adapt_tau))
    beta_a = 0.0 if spec.adapt_tau is None else float(spec.adapt_strength)
    d = params.get("delays") if spec.delays else None
    current = (xk @ w_eff[0] if d is None else _delays.delayed_current(xk, w_eff[0], d))
    layers = []
    for l in range(L):
        if l > 0:
            current = layers[-1]["S"] @ w_eff[l]
        layers.append(lif_forward(current, taus[l][1], spec.reset, rho, beta_a, spike_fn,
                                  spec.beta, w_rec=rec_eff[l]))
    C = w_eff[L].shape[1]
    b = np.zeros(C) if params.get("b") is None else np.asarray(params["b"], dtype=np.float64)
    if L:
        D = np.ones(layers[-1]["S"].shape) if mask is None else np.asarray(mask, np.float64)
        J = (layers[-1]["S"] * D) @ w_eff[L]
    else:
        D, J = None, current
    a_o = taus[L][1]
    out = {"layers": layers, "hidden_spikes": [lay["S"][:, o:o + T] for lay in layers],
           "mask": D, "J": J, "b": b, "w_eff": w_eff, "rec_eff": rec_eff, "taus": taus,
           "rho": rho, "beta_a": beta_a, "inputs": xk}
    if spec.readout == "spike_count":
        lay = lif_forward(J + b, a_o, spec.reset, 0.0, 0.0, spike_fn, spec.beta)
        out.update(output_layer=lay, output_membrane=lay["V"], logits=lay["S"].sum(axis=1))
        return out
    lag = 1 - o
    R = np.zeros((B, Tk, C))
    for m in range(1, Tk):
        R[:, m] = a_o * R[:, m - 1] + J[:, m - lag] + b
    U = R[:, o:o + T]
    logits = (U[:, T - spec.window:].mean(axis=1) if spec.readout == "window"
              else aggregate(U, spec.readout))
    out.update(readout=R, output_membrane=U, logits=logits)
    return out


def window_loss(U, labels, window: int, loss: str):
    """Per-step loss over the last ``window`` steps of U (B, T, C), averaged over the window
    and the batch, and its gradient dU (B, T, C): cross-entropy -log softmax(U_n)[y] (error
    softmax - onehot) or squared error 0.5 sum_k (U_nk - onehot_k)^2 (error U_n - onehot)."""
    B, T, C = U.shape
    onehot = np.eye(C)[np.asarray(labels, dtype=np.int64)]
    dU = np.zeros_like(U)
    total = 0.0
    for n in range(T - window, T):
        if loss == "cross_entropy":
            z = U[:, n] - U[:, n].max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            step, err = -(logp * onehot).sum(axis=1), np.exp(logp) - onehot
        else:
            err = U[:, n] - onehot
            step = 0.5 * (err * err).sum(axis=1)
        total += step.sum() / (window * B)
        dU[:, n] = err / (window * B)
    return float(total), dU


def _rate_penalty(S, spec: Spec, T: int):
    """Loss term and dL/ds (B, N), constant in time, of one layer's spikes S (B, T_k, N)."""
    kind, c, ref = spec.rate
    B, _, N = S.shape
    seconds = T * spec.dt
    r = S.sum(axis=1) / seconds
    if kind == "upper":
        e = np.maximum(0.0, r - ref) / ref
        return float((c * (e ** 2).mean(axis=1)).mean()), 2.0 * c / N * e / ref / seconds / B
    if kind == "target":
        return (float((0.5 * c * ((r - ref) ** 2).mean(axis=1)).mean()),
                c * (r - ref) / (N * seconds * B))
    raise ValueError(f"rate kind must be 'upper' or 'target', got {kind!r}")


def general_loss_and_grad(x, labels, params: dict, spec: Spec, *, index=None,
                          spike_fn: str = "heaviside"):
    """Loss and surrogate gradients (BPTT) of the general network.

    Returns ``(loss, grads, extras)``: grads has "w" (list, raw weights: Dale's law applied),
    "w_rec" (list, None where not recurrent), "b" (C,), "delays" (shape of the delays, or
    None), "tau" (list of dL/dtau per layer and the output [1/s]); extras is the forward dict
    plus "dlogits" (aggregate heads). The dropout mask comes from ``dropout_mask(index, ...)``
    (index defaulting to 0 .. B-1) over the kernel steps."""
    x, B, T, L, o, Tk = _sizes(x, params, spec)
    if index is None:
        index = np.arange(B)
    mask = None
    if spec.dropout > 0 and L:
        mask = dropout_mask(index, Tk, np.shape(params["w"][L - 1])[1] if L else 0,
                            spec.dropout, spec.dropout_seed)
    fw = general_forward(x, params, spec, mask=mask, spike_fn=spike_fn)
    layers, w_eff, rec_eff, taus = fw["layers"], fw["w_eff"], fw["rec_eff"], fw["taus"]
    a_o = taus[L][1]
    C = w_eff[L].shape[1]
    dlogits = None
    if spec.readout == "spike_count":
        loss, dlogits = cross_entropy(fw["logits"], labels)
        dso = np.broadcast_to(dlogits[:, None, :], (B, Tk, C)).copy()   # m_c = sum_n s^o_n
        dJ, ga_o, _ = lif_backward(dso, fw["output_layer"], a_o, spec.reset, 0.0, 0.0,
                                   spec.surrogate, spec.beta, detach_reset=spec.detach_reset)
        grad_b = dJ.sum(axis=(0, 1))
    else:
        U, R = fw["output_membrane"], fw["readout"]
        if spec.readout == "window":
            loss, dU = window_loss(U, labels, spec.window, spec.loss)
        else:
            loss, dlogits = cross_entropy(fw["logits"], labels)
            dU = aggregate_backward(U, dlogits, spec.readout)
        dR = np.zeros((B, Tk, C))
        dR[:, o:o + T] = dU
        lag = 1 - o
        dJ = np.zeros((B, Tk, C))
        gR = np.zeros((B, C))
        ga_o, grad_b = np.zeros(C), np.zeros(C)
        for m in range(Tk - 1, 0, -1):                 # R_m = a_o R_{m-1} + J_{m-lag} + b
            gR = dR[:, m] + a_o * gR
            dJ[:, m - lag] = gR
            grad_b += gR.sum(axis=0)
            ga_o += (gR * R[:, m - 1]).sum(axis=0)
    grads_eff = [None] * (L + 1)
    grads_rec = [None] * L
    ga = [None] * L
    if L:
        S, D = layers[-1]["S"], fw["mask"]
        grads_eff[L] = np.einsum("btk,btc->kc", S * D, dJ)
        ds = [np.zeros_like(lay["S"]) for lay in layers]
        ds[L - 1] += D * (dJ @ w_eff[L].T)
        if spec.rate is not None:
            for l, lay in enumerate(layers):
                term, dr = _rate_penalty(lay["S"], spec, T)
                loss += term
                ds[l] += dr[:, None, :]
        for l in range(L - 1, -1, -1):
            gI, ga[l], grads_rec[l] = lif_backward(
                ds[l], layers[l], taus[l][1], spec.reset, fw["rho"], fw["beta_a"],
                spec.surrogate, spec.beta, w_rec=rec_eff[l], detach_reset=spec.detach_reset)
            if l > 0:
                grads_eff[l] = np.einsum("bti,btj->ij", layers[l - 1]["S"], gI)
                ds[l - 1] += gI @ w_eff[l].T
        first = gI
    else:
        first = dJ
    grad_delays = None
    if spec.delays:
        grads_eff[0], grad_delays = _delays.delay_gradients(fw["inputs"], w_eff[0],
                                                            params["delays"], first)
    else:
        grads_eff[0] = np.einsum("bti,btj->ij", fw["inputs"], first)
    signs = _listed(params, "sign", L + 1)
    signs_rec = _listed(params, "sign_rec", L)
    grads = {
        "w": [dale_gradient(g, w, s) for g, w, s in zip(grads_eff, params["w"], signs)],
        "w_rec": [None if g is None else dale_gradient(g, w, s)
                  for g, w, s in zip(grads_rec, _listed(params, "w_rec", L), signs_rec)],
        "b": grad_b,
        "delays": grad_delays,
        "tau": [g * a * spec.dt / tau ** 2
                for g, (tau, a) in zip(ga + [ga_o], taus)],
    }
    extras = dict(fw)
    extras["dlogits"] = dlogits
    return float(loss), grads, extras
