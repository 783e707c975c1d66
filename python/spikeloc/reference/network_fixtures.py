"""Fixture cases of the general network (delays, recurrence, depth; MODEL.md section 7) for the
Swift tests (written by ``python -m spikeloc.reference.fixtures DIR`` with the other cases).

Case ``network_<name>``: ``params.json`` {batch, steps, n_in, n_out, hidden (list), recurrent
(list of bools), dt, beta, reset, surrogate, detach_reset, adapt_tau (0 = off),
adapt_strength, readout ("mean" | "sum" | "max" | "spike_count" | "window"), window,
window_loss ("cross_entropy" | "mse"), timing ("seeds" | "eprop"), bias, delays ("none" |
"input" | "synapse"), max_delay, rate ("none" | "upper" | "target"), rate_c, rate_ref,
dropout, dropout_seed, dale (bool), loss, min_threshold_distance (-1 without spiking units)}; inputs ``x.npy`` uint8
(B, T, N_in), ``labels.npy`` int64 (B,), ``params.npy`` float32 and (if ``dale``)
``signs.npy`` float32 in the flat layouts of spikeloc.h (``spk_network``); reference results
(float64): ``hidden_spikes.npy`` uint8 (B, T, sum of the layer sizes), ``logits.npy`` (B, C) and
``output_membrane.npy`` (B, T, C) of the forward pass, ``train_logits.npy`` (B, C) of the
training pass (with dropout) and ``grads.npy`` (the gradient in the layout of ``params``).

``flatten`` writes a parameter dict of ``general.py`` in the layout of the C header (the
kernel checks the length; the Swift and Python tests compare everything against this file).
"""

from __future__ import annotations

import numpy as np

from . import general as G
from .variants import dropout_mask

README = """- `network_*`: the general network (delays, recurrent and stacked layers, e-prop's
  readout; MODEL.md section 7); see `python/spikeloc/reference/network_fixtures.py` for the
  files.
"""

CASES = {
    "network_delays_input": dict(
        hidden=[9], recurrent=[True], readout="mean", reset="delayed", surrogate="sigmoid",
        beta=5.0, delays="input", max_delay=4, seed=501),
    "network_deep_synapse": dict(
        hidden=[8, 6], recurrent=[True, False], readout="window", window=7, window_loss="mse",
        reset="same_step", surrogate="fast_sigmoid", beta=3.0, delays="synapse", max_delay=3,
        dale=True, bias=True, adapt_tau=8e-3, adapt_strength=0.8, seed=502),
    "network_eprop": dict(
        hidden=[8], recurrent=[True], readout="window", window=9, window_loss="cross_entropy",
        timing="eprop", reset="subtractive", surrogate="piecewise_linear", beta=0.3,
        detach_reset=True, bias=True, rate=("target", 2e-4, 20.0), seed=503),
    "network_membrane_delays": dict(
        hidden=[], recurrent=[], readout="max", delays="input", max_delay=5, seed=504),
    "network_spike_count_deep": dict(
        hidden=[7, 6, 5], recurrent=[False, True, True], readout="spike_count",
        reset="subtractive", surrogate="arctan", beta=2.0, adapt_tau=6e-3, adapt_strength=0.5,
        rate=("upper", 1.0, 40.0), dropout=0.3, dale=True, seed=505),
}


def _weight_blocks(params: dict, spec: G.Spec, key: str, key_rec: str) -> list:
    """params[key][l], then params[key_rec][l] where layer l is recurrent, for each layer."""
    L = len(params[key]) - 1
    blocks = []
    for l in range(L + 1):
        blocks.append(params[key][l])
        if l < L and spec.recurrent[l]:
            blocks.append(params[key_rec][l])
    return blocks


def flatten(params: dict, spec: G.Spec) -> np.ndarray:
    """The parameters (or gradients) as one float64 vector: w_l then w_rec_l for each hidden
    layer, w_out, b, the delays, the time constants (spikeloc.h, ``spk_network``)."""
    blocks = _weight_blocks(params, spec, "w", "w_rec")
    if params.get("b") is not None:
        blocks.append(params["b"])
    if spec.delays:
        blocks.append(params["delays"])
    blocks.extend(params["tau"])
    return np.concatenate([np.ravel(np.asarray(b, dtype=np.float64)) for b in blocks])


def flatten_signs(params: dict, spec: G.Spec) -> np.ndarray:
    """One sign per row of each weight matrix, in the order of the parameters (0: free)."""
    blocks = _weight_blocks(params, spec, "sign", "sign_rec")
    return np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks])


def min_threshold_distance(fw: dict, spec: G.Spec) -> float:
    """The smallest |v - theta| of any hidden or spiking output unit at any step."""
    beta_a = spec.adapt_strength if spec.adapt_tau else 0.0
    dist = np.inf
    for lay in fw["layers"]:
        dist = min(dist, float(np.min(np.abs(lay["V"] - (1.0 + beta_a * lay["A"])))))
    if "output_layer" in fw:
        dist = min(dist, float(np.min(np.abs(fw["output_layer"]["V"] - 1.0))))
    return dist


def _case(c: dict, B=5, T=24, N_in=12, C=4, dt=1e-3):
    g = np.random.default_rng(c["seed"])
    sizes, L = list(c["hidden"]), len(c["hidden"])
    dims = [N_in] + sizes + [C]
    spec = G.Spec(dt=dt, recurrent=tuple(c["recurrent"]), readout=c["readout"],
                  window=c.get("window", 0), loss=c.get("window_loss", "cross_entropy"),
                  timing=c.get("timing", "seeds"), reset=c.get("reset", "delayed"),
                  surrogate=c.get("surrogate", "sigmoid"), beta=c.get("beta", 5.0),
                  adapt_tau=c.get("adapt_tau"), adapt_strength=c.get("adapt_strength", 0.0),
                  detach_reset=c.get("detach_reset", False), delays=c.get("delays"),
                  rate=c.get("rate"), dropout=c.get("dropout", 0.0),
                  dropout_seed=int(g.integers(0, 2**52)))
    tau = [g.uniform(2e-3, 20e-3, n).astype(np.float32).astype(np.float64) for n in sizes + [C]]
    max_delay = c.get("max_delay", 0)
    for _attempt in range(2000):
        x = (g.random((B, T, N_in)) < 0.25).astype(np.uint8)
        labels = g.integers(0, C, size=B).astype(np.int64)
        w = [g.integers(-20 if l == 0 else -28, 44 if l < L else 33, (dims[l], dims[l + 1])) / 64.0
             for l in range(L + 1)]
        params = {"w": w, "tau": tau,
                  "w_rec": [g.integers(-24, 24, (n, n)) / 64.0 if r else None
                            for n, r in zip(sizes, c["recurrent"])],
                  "b": g.integers(-16, 17, C) / 64.0 if c.get("bias") else None}
        if spec.delays == "input":
            params["delays"] = g.uniform(0, max_delay, N_in).astype(np.float32).astype(np.float64)
        elif spec.delays == "synapse":
            params["delays"] = g.uniform(0, max_delay, (N_in, dims[1])).astype(np.float32)
            params["delays"] = params["delays"].astype(np.float64)
        if c.get("dale"):
            params["sign"] = [g.choice([-1.0, 0.0, 1.0], n) for n in dims[:-1]]
            params["sign_rec"] = [g.choice([-1.0, 1.0], n) for n in sizes]
        mask = (dropout_mask(np.arange(B), T + spec.extra_steps, sizes[-1], spec.dropout,
                             spec.dropout_seed) if spec.dropout else None)
        dist, ok = np.inf, True
        for m in (None, mask):
            fw = G.general_forward(x, params, spec, mask=m)
            dist = min(dist, min_threshold_distance(fw, spec))
            if spec.readout == "max":
                u = fw["output_membrane"]
                top = u.max(axis=1, keepdims=True)
                near = np.abs(u - top) <= 1e-4 * np.maximum(1.0, np.abs(top))
                ok = ok and bool(np.all(near.sum(axis=1) == 1))
        active = [float(s.mean()) for s in fw["hidden_spikes"]]
        if ok and dist > 1e-3 and all(0.03 <= a <= 0.5 for a in active):
            break
    else:
        raise RuntimeError(f"no unambiguous weights found for {c}")
    fw = G.general_forward(x, params, spec)
    loss, grads, ex = G.general_loss_and_grad(x, labels, params, spec)
    grads["b"] = None if params["b"] is None else grads["b"]   # the layout has no b without one
    rate = spec.rate or ("none", 0.0, 100.0)
    meta = {"batch": B, "steps": T, "n_in": N_in, "n_out": C, "hidden": sizes,
            "recurrent": list(c["recurrent"]), "dt": dt, "beta": spec.beta, "reset": spec.reset,
            "surrogate": spec.surrogate, "detach_reset": spec.detach_reset,
            "adapt_tau": spec.adapt_tau or 0.0, "adapt_strength": spec.adapt_strength,
            "readout": spec.readout, "window": spec.window, "window_loss": spec.loss,
            "timing": spec.timing, "bias": params["b"] is not None,
            "delays": spec.delays or "none", "max_delay": max_delay, "rate": rate[0],
            "rate_c": rate[1], "rate_ref": rate[2], "dropout": spec.dropout,
            "dropout_seed": spec.dropout_seed, "dale": bool(c.get("dale")), "loss": loss,
            "min_threshold_distance": dist if np.isfinite(dist) else -1.0}
    hidden = (np.concatenate(fw["hidden_spikes"], axis=2) if L
              else np.zeros((B, T, 0))).astype(np.uint8)
    arrays = {"x": x, "labels": labels, "params": flatten(params, spec).astype(np.float32),
              "hidden_spikes": hidden, "logits": fw["logits"],
              "output_membrane": fw["output_membrane"], "train_logits": ex["logits"],
              "grads": flatten(grads, spec)}
    if c.get("dale"):
        arrays["signs"] = flatten_signs(params, spec).astype(np.float32)
    return meta, arrays


def case_networks() -> dict:
    return {name: _case(c) for name, c in CASES.items()}
