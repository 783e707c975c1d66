"""Fixture cases of the research variants for the Swift tests (written by
``python -m spikeloc.reference.fixtures DIR`` together with the other cases).

Case ``variant_<name>``: ``params.json`` {batch, steps, n_in, n_hidden, n_out, dt, readout
("mean" | "sum" | "max" | "spike_count"), reset, surrogate, beta, adapt_tau (0 = off),
adapt_strength, dale (bool), rate_c (0 = off), rate_max, dropout, dropout_seed, loss,
min_threshold_distance}; inputs ``x.npy`` uint8 (B, T, N_in), ``labels.npy`` int64 (B,),
``w1.npy`` float32 (N_in, N_h), ``w2.npy`` float32 (N_h, C), ``tau_hidden.npy`` float32 (N_h,),
``tau_output.npy`` float32 (C,), ``sign_w1.npy`` float32 (N_in,), ``sign_w2.npy`` float32 (N_h,)
(all +1 when ``dale`` is false, and then not passed to the kernel); reference results
(float64) ``hidden_spikes.npy`` uint8 (B, T, N_h) (of the forward pass, without dropout),
``logits.npy`` (B, C) and ``output_membrane.npy`` (B, T, C) of the forward pass,
``train_logits.npy`` (B, C) with dropout, ``dropout_mask.npy`` (B, T, N_h), and the loss and
gradients ``grad_w1``, ``grad_w2``, ``grad_tau_hidden``, ``grad_tau_output``.
"""

from __future__ import annotations

import numpy as np

from . import variants as V

README = """- `variant_*`: the research variants (MODEL.md section 4) in combination; see the
  docstring of `python/spikeloc/reference/variant_fixtures.py` for the files.
"""

CASES = {
    "variant_combo": dict(readout="mean", reset="subtractive", surrogate="sigmoid", beta=5.0,
                          adapt_tau=10e-3, adapt_strength=1.0, dale=True, rate=(1.0, 40.0),
                          dropout=0.0, seed=401),
    "variant_spike_count": dict(readout="spike_count", reset="same_step",
                                surrogate="fast_sigmoid", beta=4.0, adapt_tau=5e-3,
                                adapt_strength=0.5, dale=False, rate=None, dropout=0.3, seed=402),
    "variant_max": dict(readout="max", reset="delayed", surrogate="arctan", beta=2.0,
                        adapt_tau=20e-3, adapt_strength=1.5, dale=True, rate=None, dropout=0.2,
                        seed=403),
    "variant_sum": dict(readout="sum", reset="subtractive", surrogate="piecewise_linear",
                        beta=1.0, adapt_tau=None, adapt_strength=0.0, dale=False,
                        rate=(2.0, 20.0), dropout=0.0, seed=404),
}


def _case(spec, B=5, T=30, N_in=16, N_h=12, C=4, dt=1e-3):
    g = np.random.default_rng(spec["seed"])
    tau_h = g.uniform(2e-3, 20e-3, N_h).astype(np.float32)
    tau_o = g.uniform(2e-3, 20e-3, C).astype(np.float32)
    s1 = V.dale_signs(N_in, 0.5, "random", g) if spec["dale"] else np.ones(N_in)
    s2 = V.dale_signs(N_h, 0.5, "first") if spec["dale"] else np.ones(N_h)
    beta_a = 0.0 if spec["adapt_tau"] is None else spec["adapt_strength"]
    dropout_seed = int(g.integers(0, 2**52))
    kw = dict(readout=spec["readout"], reset=spec["reset"], adapt_tau=spec["adapt_tau"],
              adapt_strength=spec["adapt_strength"], sign1=s1 if spec["dale"] else None,
              sign2=s2 if spec["dale"] else None)
    for _attempt in range(1000):
        x = (g.random((B, T, N_in)) < 0.2).astype(np.uint8)
        labels = g.integers(0, C, size=B).astype(np.int64)
        w1 = (g.integers(-24, 48, (N_in, N_h)) / 64.0).astype(np.float32)
        w2 = (g.integers(-32, 32, (N_h, C)) / 64.0).astype(np.float32)
        mask = V.dropout_mask(np.arange(B), T, N_h, spec["dropout"], dropout_seed)
        dist = np.inf
        ok = True
        for m in (None, mask):
            fw = V.variant_forward(x, w1, w2, dt, tau_h, tau_o, mask=m, **kw)
            layers = [(fw["hidden_v"], 1.0 + beta_a * fw["hidden_adapt"])]
            if spec["readout"] == "spike_count":
                layers.append((fw["output_layer"]["V"], 1.0))
            for v, theta in layers:
                dist = min(dist, float(np.min(np.abs(v - theta))))
            if spec["readout"] == "max":
                u = fw["output_membrane"]
                top = u.max(axis=1, keepdims=True)
                near = np.abs(u - top) <= 1e-4 * np.maximum(1.0, np.abs(top))
                ok = ok and bool(np.all(~near | (u == top)))
        frac = float(fw["hidden_spikes"].mean())
        if ok and dist > 1e-3 and 0.03 <= frac <= 0.4:
            break
    else:
        raise RuntimeError("no unambiguous weights found")
    fw = V.variant_forward(x, w1, w2, dt, tau_h, tau_o, **kw)
    loss, g1, g2, gth, gto, ex = V.variant_loss_and_grad(
        x, labels, w1, w2, dt, tau_h, tau_o, surrogate=spec["surrogate"], beta=spec["beta"],
        rate_regularizer=spec["rate"], dropout=spec["dropout"], dropout_seed=dropout_seed, **kw)
    rate = spec["rate"] or (0.0, 100.0)
    params = {"batch": B, "steps": T, "n_in": N_in, "n_hidden": N_h, "n_out": C, "dt": dt,
              "readout": spec["readout"], "reset": spec["reset"],
              "surrogate": spec["surrogate"], "beta": spec["beta"],
              "adapt_tau": spec["adapt_tau"] or 0.0, "adapt_strength": spec["adapt_strength"],
              "dale": spec["dale"], "rate_c": rate[0], "rate_max": rate[1],
              "dropout": spec["dropout"], "dropout_seed": dropout_seed, "loss": loss,
              "min_threshold_distance": dist}
    arrays = {"x": x, "labels": labels, "w1": w1, "w2": w2, "tau_hidden": tau_h,
              "tau_output": tau_o, "sign_w1": np.asarray(s1, np.float32),
              "sign_w2": np.asarray(s2, np.float32),
              "hidden_spikes": fw["hidden_spikes"].astype(np.uint8), "logits": fw["logits"],
              "output_membrane": fw["output_membrane"], "train_logits": ex["logits"],
              "dropout_mask": ex["mask"], "grad_w1": g1, "grad_w2": g2,
              "grad_tau_hidden": gth, "grad_tau_output": gto}
    return params, arrays


def case_variants() -> dict:
    return {name: _case(spec) for name, spec in CASES.items()}
