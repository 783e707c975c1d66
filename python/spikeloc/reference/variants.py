"""Research variants of the spiking network (MODEL.md section 4), float64, written to be read.

One general network covers every variant and their combinations; with the defaults it is the
network of ``reference.network`` (delayed reset, sigmoid surrogate, scalar time constants).
Shapes: x (B, T, N_in), W1 (N_in, N_h), W2 (N_h, C), labels (B,); times in seconds.

Dale's law, the LIF layer (hidden layer; also the output layer of the spike-count readout,
there without adaptation) and the dropout mask are the building blocks of ``layers.py``,
re-exported here; the network is the general network (``general.py``) with one feed-forward
hidden layer.

Readout: J = (S * D) W2, with D the dropout mask (1 without dropout). Either the leaky
membrane u_{n+1} = a_o u_n + J_n aggregated by "mean" / "sum" (x 0.01) / "max", or
("spike_count") a LIF output layer driven by J whose logits are its spike counts
m_c = sum_n s^o_{n,c}. Loss: mean cross-entropy plus, optionally, the firing-rate regulariser
of the hidden units, per sample r_j = (sum_n s_{n,j}) / (T dt) [Hz] and
L_reg = c mean_j (max(0, r_j - r_max) / r_max)^2, averaged over the batch.

Backward: exact reverse mode of the above with dH/dx replaced by the surrogate (adjoints
below in ``lif_backward``); the reset and the threshold adaptation are not detached.
Learnable time constants: dL/dtau_j = dL/da_j a_j dt / tau_j^2.
"""

from __future__ import annotations

import numpy as np

from .general import Spec, general_forward, general_loss_and_grad
from .layers import (RESETS, SURROGATES, dale_effective, dale_gradient, dale_signs, dropout_mask,
                     lif_backward, lif_forward, surrogate_fn)

__all__ = [
    "RESETS", "SURROGATES", "VARIANT_READOUTS", "surrogate_fn", "dale_signs", "dale_effective",
    "dale_gradient", "dropout_mask", "lif_forward", "lif_backward", "variant_forward",
    "variant_loss_and_grad", "tau_variance_penalty",
]

VARIANT_READOUTS = ("mean", "sum", "max", "spike_count")


# ---------------------------------------------------------------------------- network
# These wrappers keep the variants' argument names and results.

def _spec(dt, readout, reset, adapt_tau, adapt_strength, surrogate="sigmoid", beta=5.0,
          rate_regularizer=None, dropout=0.0, dropout_seed=0):
    rate = None if rate_regularizer is None else ("upper",) + tuple(rate_regularizer)
    return Spec(dt=dt, recurrent=(False,), readout=readout, reset=reset, surrogate=surrogate,
                beta=beta, adapt_tau=adapt_tau, adapt_strength=adapt_strength, rate=rate,
                dropout=dropout, dropout_seed=dropout_seed)


def _params(w1, w2, tau_h, tau_o, sign1, sign2):
    n_h, C = np.shape(w1)[1], np.shape(w2)[1]
    tau = [np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)).copy()
           for t, n in ((tau_h, n_h), (tau_o, C))]
    return {"w": [w1, w2], "w_rec": [None], "b": None, "tau": tau, "sign": [sign1, sign2]}


def _variant_result(fw) -> dict:
    """The general network's forward dict under the variants' names."""
    hid = fw["layers"][0]
    (tau_h, a_h), (tau_o, a_o) = fw["taus"]
    out = {"hidden_v": hid["V"], "hidden_spikes": hid["S"], "hidden_pre": hid["P"],
           "hidden_adapt": hid["A"], "mask": fw["mask"], "J": fw["J"],
           "w1_eff": fw["w_eff"][0], "w2_eff": fw["w_eff"][1], "a_h": a_h, "a_o": a_o,
           "tau_h": tau_h, "tau_o": tau_o, "rho": fw["rho"], "beta_a": fw["beta_a"],
           "output_membrane": fw["output_membrane"], "logits": fw["logits"]}
    if "output_layer" in fw:
        out.update(output_layer=fw["output_layer"], output_spikes=fw["output_layer"]["S"])
    return out


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
    fw = general_forward(x, _params(w1, w2, tau_h, tau_o, sign1, sign2),
                         _spec(dt, readout, reset, adapt_tau, adapt_strength, beta=beta),
                         mask=mask, spike_fn=spike_fn)
    return _variant_result(fw)


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
    if readout not in VARIANT_READOUTS:
        raise ValueError(f"readout must be one of {VARIANT_READOUTS}, got {readout!r}")
    spec = _spec(dt, readout, reset, adapt_tau, adapt_strength, surrogate, beta,
                 rate_regularizer, dropout, dropout_seed)
    loss, grads, fw = general_loss_and_grad(x, labels,
                                            _params(w1, w2, tau_h, tau_o, sign1, sign2), spec,
                                            index=index, spike_fn=spike_fn)
    extras = _variant_result(fw)
    extras["dlogits"] = fw["dlogits"]
    g1, g2 = grads["w"]
    gth, gto = grads["tau"]
    return loss, g1, g2, gth, gto, extras


def tau_variance_penalty(tau, lam: float):
    """lambda Var(tau) (population variance, ddof 0) and its gradient 2 lambda (tau - mean) / N."""
    tau = np.asarray(tau, dtype=np.float64)
    return float(lam * tau.var()), 2.0 * lam * (tau - tau.mean()) / tau.size
