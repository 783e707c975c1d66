"""Research variants (MODEL.md section 4): the general Swift kernel against the NumPy reference
(python/spikeloc/reference/variants.py), the reference against finite differences, and the
Python API (Dale's law, learnable time constants, dropout, checkpoints).

Parity inputs follow python/tests/test_parity.py: weights on a 1/64 grid, and a configuration
is redrawn until no voltage lies within 2e-5 of its threshold (hidden units and, for the
spike-count readout, output units) and every max readout has a unique winner.
"""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.reference import variants as V

from test_parity import THRESHOLD_MARGIN, TOLERANCE, relative_error, unique_maxima

RESETS = ("delayed", "same_step", "subtractive", "zero")
SURROGATES = ("sigmoid", "fast_sigmoid", "arctan", "piecewise_linear")
READOUTS = ("mean", "sum", "max", "spike_count")


def _near_threshold(layer, beta_a):
    theta = 1.0 + beta_a * layer["A"]
    distance = np.abs(layer["V"] - theta)
    return bool(np.any((distance > 0) & (distance <= THRESHOLD_MARGIN)))


def draw_variant_configuration(seed, **fixed):
    """A random unambiguous problem with random variant options (``fixed`` overrides)."""
    rng = np.random.default_rng(5000 + seed)
    B, T = int(rng.integers(1, 9)), int(rng.integers(2, 40))
    n_in, n_h, C = int(rng.integers(1, 41)), int(rng.integers(1, 25)), int(rng.integers(2, 14))
    dt = float(rng.choice([5e-4, 1e-3]))
    opts = dict(
        reset=str(rng.choice(RESETS)), surrogate=str(rng.choice(SURROGATES)),
        readout=str(rng.choice(READOUTS)), beta=float(rng.uniform(1.0, 10.0)),
        adapt_tau=float(rng.uniform(2e-3, 30e-3)) if rng.random() < 0.5 else None,
        adapt_strength=float(rng.uniform(0.1, 2.0)),
        per_neuron=bool(rng.random() < 0.5), dale=bool(rng.random() < 0.35),
        rate=(float(rng.uniform(0.1, 2.0)), float(rng.uniform(10, 200))) if rng.random() < 0.35 else None,
        dropout=float(rng.uniform(0.1, 0.6)) if rng.random() < 0.35 else 0.0,
        dropout_seed=int(rng.integers(0, 2**63)),
    )
    opts.update(fixed)
    if opts["per_neuron"]:
        tau_h = rng.uniform(1e-3, 40e-3, n_h).astype(np.float32)
        tau_o = rng.uniform(1e-3, 40e-3, C).astype(np.float32)
    else:
        tau_h = np.full(n_h, rng.uniform(1e-3, 40e-3), dtype=np.float32)
        tau_o = np.full(C, rng.uniform(1e-3, 40e-3), dtype=np.float32)
    sign1 = V.dale_signs(n_in, rng.uniform(0, 1), "random", rng) if opts["dale"] else None
    sign2 = V.dale_signs(n_h, rng.uniform(0, 1), "first") if opts["dale"] else None
    beta_a = 0.0 if opts["adapt_tau"] is None else opts["adapt_strength"]
    for _ in range(300):
        x = (rng.random((B, T, n_in)) < rng.uniform(0.05, 0.4)).astype(np.uint8)
        w1 = (rng.integers(-20, 44, (n_in, n_h)) / 64).astype(np.float32)
        w2 = (rng.integers(-32, 33, (n_h, C)) / 64).astype(np.float32)
        labels = rng.integers(0, C, B).astype(np.int64)
        mask = V.dropout_mask(np.arange(B), T, n_h, opts["dropout"], opts["dropout_seed"])
        fw = V.variant_forward(x, w1, w2, dt, tau_h, tau_o, readout=opts["readout"],
                               reset=opts["reset"], adapt_tau=opts["adapt_tau"],
                               adapt_strength=opts["adapt_strength"], sign1=sign1, sign2=sign2,
                               mask=mask)
        hid = {"V": fw["hidden_v"], "A": fw["hidden_adapt"]}
        if _near_threshold(hid, beta_a):
            continue
        if opts["readout"] == "spike_count" and _near_threshold(fw["output_layer"], 0.0):
            continue
        if opts["readout"] == "max" and not unique_maxima(fw["output_membrane"]):
            continue
        problem = dict(B=B, T=T, n_in=n_in, n_h=n_h, C=C, dt=dt, x=x, w1=w1, w2=w2,
                       labels=labels, tau_h=tau_h, tau_o=tau_o, sign1=sign1, sign2=sign2)
        return opts, problem
    raise AssertionError(f"no unambiguous configuration found for seed {seed}")


def _general(opts, p):
    """The general network of the variant configuration (one feed-forward hidden layer; the
    kernels' spk_network_*), its parameter vector and its sign vector (None without Dale)."""
    from spikeloc.general import GeneralNetwork
    rate = opts["rate"]
    gen = GeneralNetwork(p["n_in"], [p["n_h"]], p["C"], [False], dt=p["dt"], beta=opts["beta"],
                         reset=opts["reset"], surrogate=opts["surrogate"],
                         adapt_tau=opts["adapt_tau"], adapt_strength=opts["adapt_strength"],
                         head=opts["readout"], rate=None if rate is None else ("upper", *rate),
                         dropout=opts["dropout"])
    params = gen.layout.pack({"w1": p["w1"], "w2": p["w2"], "tau_hidden": p["tau_h"],
                              "tau_output": p["tau_o"]})
    signs = gen.layout.pack_signs({"w1": p["sign1"], "w2": p["sign2"]})
    return gen, params, signs


def native_loss_and_grad(opts, p, threads=0):
    gen, params, signs = _general(opts, p)
    ev = sl.SpikeEvents.from_dense(p["x"])
    logits = np.empty((p["B"], p["C"]), np.float32)
    loss, flat = gen.loss_grad(ev, None, p["B"], p["labels"], params, signs, threads,
                               dropout_seed=opts["dropout_seed"], logits=logits)
    g = gen.layout.unpack(flat)
    return loss, g["w1"], g["w2"], g["tau_hidden"], g["tau_output"], logits


def native_forward(opts, p):
    gen, params, signs = _general(opts, p)
    ev = sl.SpikeEvents.from_dense(p["x"])
    return gen.forward(ev, None, p["B"], params, signs, 0, record=True)


def reference_loss_and_grad(opts, p):
    return V.variant_loss_and_grad(
        p["x"], p["labels"], p["w1"].astype(np.float64), p["w2"].astype(np.float64), p["dt"],
        p["tau_h"].astype(np.float64), p["tau_o"].astype(np.float64), readout=opts["readout"],
        reset=opts["reset"], surrogate=opts["surrogate"], beta=opts["beta"],
        adapt_tau=opts["adapt_tau"], adapt_strength=opts["adapt_strength"], sign1=p["sign1"],
        sign2=p["sign2"], rate_regularizer=opts["rate"], dropout=opts["dropout"],
        dropout_seed=opts["dropout_seed"])


def assert_parity(opts, p):
    loss, g1, g2, gth, gto, logits = native_loss_and_grad(opts, p)
    r_loss, r1, r2, rth, rto, ex = reference_loss_and_grad(opts, p)
    assert abs(loss - r_loss) / abs(r_loss) < TOLERANCE, opts
    assert relative_error(logits, ex["logits"]) < TOLERANCE, opts
    for name, got, want in (("w1", g1, r1), ("w2", g2, r2), ("tau_h", gth, rth),
                            ("tau_o", gto, rto)):
        if np.max(np.abs(want)) == 0:
            assert np.max(np.abs(got)) == 0, (name, opts)
        else:
            assert relative_error(got, want) < TOLERANCE, (name, opts)
    if opts["dropout"] == 0:
        # recordings of the forward pass (dropout acts in loss_and_grad only)
        f_logits, hidden, membrane = native_forward(opts, p)
        assert np.array_equal(hidden, ex["hidden_spikes"].astype(np.uint8)), opts
        assert relative_error(f_logits, ex["logits"]) < TOLERANCE, opts
        assert relative_error(membrane, ex["output_membrane"]) < TOLERANCE, opts
    return ex


@pytest.mark.parametrize("seed", range(48))
def test_variants_match_reference(seed):
    opts, p = draw_variant_configuration(seed)
    assert_parity(opts, p)


def test_random_variant_configurations_cover_every_option():
    seen = {"reset": set(), "surrogate": set(), "readout": set()}
    counts = dict(adapt=0, per_neuron=0, dale=0, rate=0, dropout=0, spiking=0)
    for seed in range(48):
        opts, p = draw_variant_configuration(seed)
        for key in seen:
            seen[key].add(opts[key])
        counts["adapt"] += opts["adapt_tau"] is not None
        counts["per_neuron"] += opts["per_neuron"]
        counts["dale"] += opts["dale"]
        counts["rate"] += opts["rate"] is not None
        counts["dropout"] += opts["dropout"] > 0
        _, _, _, _, _, ex = reference_loss_and_grad(opts, p)
        counts["spiking"] += bool(ex["hidden_spikes"].any())
    assert seen == {"reset": set(RESETS), "surrogate": set(SURROGATES), "readout": set(READOUTS)}
    assert min(counts.values()) >= 8, counts
    assert counts["spiking"] >= 36, counts


COMBINATIONS = [
    dict(reset="subtractive", adapt_tau=8e-3, adapt_strength=1.0, dale=True, per_neuron=True),
    dict(reset="subtractive", adapt_tau=8e-3, adapt_strength=1.5, dale=True, per_neuron=True,
         readout="spike_count", surrogate="fast_sigmoid"),
    dict(reset="same_step", adapt_tau=20e-3, adapt_strength=0.5, dale=True, per_neuron=True,
         rate=(1.0, 30.0), dropout=0.25, surrogate="arctan", readout="max"),
    dict(reset="delayed", adapt_tau=5e-3, adapt_strength=2.0, dale=False, per_neuron=True,
         rate=(2.0, 20.0), dropout=0.5, surrogate="piecewise_linear", readout="sum"),
    dict(reset="zero", adapt_tau=10e-3, adapt_strength=1.0, dale=True, per_neuron=True,
         rate=(1.0, 30.0), dropout=0.25, surrogate="fast_sigmoid", readout="spike_count"),
]


@pytest.mark.parametrize("case", range(len(COMBINATIONS)))
def test_combinations_match_reference(case):
    """Dale's law + per-neuron (learnable) tau + adaptive threshold + reset variants together;
    the spikes are non-trivial and the adaptation, the tau and the Dale terms all matter."""
    exercised = 0
    for seed in range(8):
        opts, p = draw_variant_configuration(100 + 10 * case + seed, **COMBINATIONS[case])
        ex = assert_parity(opts, p)
        # count the draws in which the adaptive threshold changed the dynamics
        plain = V.variant_forward(p["x"], p["w1"], p["w2"], p["dt"], p["tau_h"], p["tau_o"],
                                  readout=opts["readout"], reset=opts["reset"],
                                  sign1=p["sign1"], sign2=p["sign2"])
        exercised += (ex["hidden_spikes"].sum() >= 10
                      and not np.array_equal(plain["hidden_v"], ex["hidden_v"]))
    assert exercised >= 2


@pytest.mark.parametrize("seed", range(4))
def test_variant_results_do_not_depend_on_threads(seed):
    zero = {"reset": "zero"} if seed == 3 else {}  # seeds 0-2 draw the reset at random
    opts, p = draw_variant_configuration(200 + seed, dropout=0.3, adapt_tau=5e-3, dale=True,
                                         per_neuron=True, rate=(1.0, 20.0), **zero)
    p = dict(p)
    # a batch of several chunks (8 samples each)
    rng = np.random.default_rng(seed)
    p["B"] = 21
    p["x"] = (rng.random((21, p["T"], p["n_in"])) < 0.2).astype(np.uint8)
    p["labels"] = rng.integers(0, p["C"], 21).astype(np.int64)
    results = [native_loss_and_grad(opts, p, threads=t) for t in (1, 2, 4)]
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(other[1:], results[0][1:]):
            assert np.array_equal(a, b)


def test_zero_reset_keeps_the_input_of_the_spiking_step():
    """One unit, the same current 0.7 at every step, a = exp(-1): the voltage climbs 0, 0.7,
    0.958, 1.052 (spike at step 3). The zero reset sets v to 0 and still adds the spiking
    step's input (v_4 = 0.7: a spike every 3 steps); the same-step reset also discards it
    (v_4 = 0: every 4 steps). Kernel and reference agree on both."""
    T = 13
    x = np.ones((1, T, 1), dtype=np.uint8)
    want = {"zero": [3, 6, 9, 12], "same_step": [3, 7, 11]}
    for reset, steps in want.items():
        net = sl.SNN(1, 1, 2, dt=1e-3, tau_hidden=1e-3, tau_output=1e-2, reset=reset)
        net.w1, net.w2 = np.array([[0.7]]), np.array([[1.0, -1.0]])
        assert np.flatnonzero(net.forward(x).hidden_spikes[0, :, 0]).tolist() == steps, reset
        ref = V.variant_forward(x, net.w1, net.w2, 1e-3, np.array([1e-3]), np.array([1e-2]),
                                reset=reset)
        assert np.flatnonzero(ref["hidden_spikes"][0, :, 0]).tolist() == steps, reset


def test_default_options_give_the_fast_path_result():
    """The general kernel with default options computes the plain network (same spikes; loss
    and gradients agree to float32 rounding)."""
    opts, p = draw_variant_configuration(300, reset="delayed", surrogate="sigmoid",
                                         readout="mean", adapt_tau=None, per_neuron=False,
                                         dale=False, rate=None, dropout=0.0)
    net = sl.SNN(p["n_in"], p["n_h"], p["C"], dt=p["dt"], tau_hidden=float(p["tau_h"][0]),
                 tau_output=float(p["tau_o"][0]), beta=opts["beta"])
    net.w1, net.w2 = p["w1"], p["w2"]
    assert not net._variant
    loss, grads = net.loss_and_grad(p["x"], p["labels"])
    v_loss, g1, g2, *_ = native_loss_and_grad(opts, p)
    assert abs(loss - v_loss) / abs(loss) < 1e-5
    assert relative_error(g1, grads["w1"]) < 1e-5
    assert relative_error(g2, grads["w2"]) < 1e-5


# ---------------------------------------------------------------------------- the reference

FD_CASES = [
    dict(reset="delayed", readout="mean"),
    dict(reset="same_step", readout="sum", adapt_tau=4e-3),
    dict(reset="subtractive", readout="max", adapt_tau=4e-3, dale=True),
    dict(reset="subtractive", readout="spike_count", adapt_tau=4e-3, dale=True,
         rate_regularizer=(0.5, 50.0), dropout=0.3),
    dict(reset="delayed", readout="spike_count", rate_regularizer=(1.0, 30.0)),
    dict(reset="same_step", readout="spike_count", adapt_tau=6e-3, dropout=0.2),
    dict(reset="zero", readout="mean", adapt_tau=4e-3, dale=True),
    dict(reset="zero", readout="spike_count", rate_regularizer=(0.5, 50.0), dropout=0.3),
]


@pytest.mark.parametrize("case", range(len(FD_CASES)))
def test_reference_gradients_match_finite_differences(case):
    """With a smooth spike function sigmoid(beta x), whose derivative is the sigmoid surrogate,
    the reference's gradients (weights, both time constants) are exact derivatives."""
    kw = dict(FD_CASES[case])
    rng = np.random.default_rng(case)
    B, T, Ni, Nh, C, dt = 3, 12, 5, 4, 3, 1e-3
    x = (rng.random((B, T, Ni)) < 0.4).astype(float)
    w1, w2 = rng.normal(0.6, 0.5, (Ni, Nh)), rng.normal(0, 0.5, (Nh, C))
    labels = rng.integers(0, C, B)
    th, to = rng.uniform(3e-3, 9e-3, Nh), rng.uniform(3e-3, 9e-3, C)
    dale = kw.pop("dale", False)
    s1 = V.dale_signs(Ni, 0.4) if dale else None
    s2 = V.dale_signs(Nh, 0.5) if dale else None

    def f(a, b, c, d):
        return V.variant_loss_and_grad(x, labels, a, b, dt, c, d, spike_fn="sigmoid", sign1=s1,
                                       sign2=s2, adapt_strength=1.5, dropout_seed=7, beta=2.0,
                                       **kw)

    _, g1, g2, gth, gto, _ = f(w1, w2, th, to)
    for k, (arr, g, h) in enumerate(((w1, g1, 1e-6), (w2, g2, 1e-6), (th, gth, 1e-9),
                                     (to, gto, 1e-9))):
        numeric = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            args = [w1, w2, th, to]
            up, down = arr.copy(), arr.copy()
            up[i] += h
            down[i] -= h
            args[k] = up
            lp = f(*args)[0]
            args[k] = down
            numeric[i] = (lp - f(*args)[0]) / (2 * h)
        assert np.max(np.abs(numeric)) > 0
        assert relative_error(g, numeric) < 1e-5, (case, k)


def test_reference_defaults_are_the_plain_network():
    from spikeloc.reference import network as N
    rng = np.random.default_rng(3)
    x = (rng.random((4, 15, 6)) < 0.4).astype(float)
    w1, w2 = rng.normal(0.5, 0.5, (6, 5)), rng.normal(0, 0.5, (5, 3))
    labels = rng.integers(0, 3, 4)
    for readout in ("mean", "sum", "max"):
        loss, g1, g2, _ = N.snn_loss_and_grad(x, labels, w1, w2, 1e-3, 5e-3, 7e-3, readout=readout)
        v_loss, v1, v2, *_ = V.variant_loss_and_grad(x, labels, w1, w2, 1e-3, 5e-3, 7e-3,
                                                     readout=readout)
        assert v_loss == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(v1, g1, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(v2, g2, rtol=1e-10, atol=1e-14)


def test_dale_signs_and_effective_weights():
    rng = np.random.default_rng(0)
    assert (V.dale_signs(7, 0.5, "first") == [-1, -1, -1, -1, 1, 1, 1]).all()  # ceil(3.5)
    s = V.dale_signs(7, 0.5, "random", rng)
    assert (s == -1).sum() == 3                                                 # floor(3.5)
    net = sl.SNN(10, 6, 3, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3,
                 dale=sl.Dale(0.5, excitatory_only=("w1",)))
    signs = net.dale_signs
    assert (signs["w1"] == 1).all() and (signs["w2"] == [-1, -1, -1, 1, 1, 1]).all()
    assert (net.w1_eff >= 0).all()
    assert (net.w2_eff[:3] <= 0).all() and (net.w2_eff[3:] >= 0).all()
    np.testing.assert_array_equal(np.abs(net.w2_eff), np.abs(net.w2))
    plain = sl.SNN(10, 6, 3, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3,
                   dale=sl.Dale(0.5, layers=("w2",)))
    assert plain.dale_signs["w1"] is None
    np.testing.assert_array_equal(plain.w1_eff, plain.w1)


# ---------------------------------------------------------------------------- the model API

def _small_task(n=96, seed=0):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, spikes = stim.generate(n, seed=seed)
    return stim, ipd, sl.SpikeEvents.from_dense(spikes)


def test_training_with_dale_keeps_every_sign():
    stim, ipd, x = _small_task()
    net = sl.SNN.for_stimulus(stim, n_hidden=12, tau_hidden=5e-3, seed=3,
                              dale=sl.Dale(0.5, inhibitory="random"))
    before = {k: v.copy() for k, v in net.parameters().items()}
    sl.train(net, ipd, x, stimulus=stim, epochs=3, batch_size=32, progress=False)
    assert any(not np.array_equal(before[k], v) for k, v in net.parameters().items())
    for layer, eff in (("w1", net.w1_eff), ("w2", net.w2_eff)):
        sign = net.dale_signs[layer][:, None]
        assert (eff * sign >= 0).all(), layer
        assert ((eff * sign) > 0).mean() > 0.9, layer


def test_learnable_tau_trains_clamps_and_penalises():
    stim, ipd, x = _small_task()
    labels = stim.labels(ipd)[:32]
    dt = stim.dt
    kw = dict(n_hidden=10, tau_hidden=2e-3, seed=1, learn_tau=True, tau_sigma=0.5e-3,
              tau_min=1.5e-3)
    net = sl.SNN.for_stimulus(stim, tau_var_penalty=0.1, **kw)
    assert set(net.parameters()) == {"w1", "w2", "tau_hidden", "tau_output"}
    tau0 = net.tau_hidden.copy()                       # seconds
    assert tau0.shape == (10,) and tau0.std() > 0 and (tau0 >= np.float32(1.5e-3)).all()
    # the parameters are the time constants in units of dt
    np.testing.assert_allclose(net.parameters()["tau_hidden"] * dt, tau0, rtol=1e-6)
    loss, grads = net.loss_and_grad(x, labels, index=np.arange(32))
    # the kernel's tau gradient, chained to the parameter (d tau / d param = dt)
    plain = sl.SNN.for_stimulus(stim, **kw)
    loss0, grads0 = plain.loss_and_grad(x, labels, index=np.arange(32))
    r = V.variant_loss_and_grad(
        x.to_dense()[:32], labels, plain.w1.astype(np.float64), plain.w2.astype(np.float64), dt,
        plain.tau_hidden.astype(np.float64), plain.tau_output.astype(np.float64))
    assert relative_error(grads0["tau_hidden"], r[3] * dt) < 1e-4
    assert relative_error(grads0["tau_output"], r[4] * dt) < 1e-4
    # the variance penalty lambda Var(tau / dt) adds to the loss and the tau gradients
    penalty_h, g_h = V.tau_variance_penalty(net.parameters()["tau_hidden"], 0.1)
    penalty_o, g_o = V.tau_variance_penalty(net.parameters()["tau_output"], 0.1)
    assert penalty_h > 0 and penalty_o > 0
    assert loss - loss0 == pytest.approx(penalty_h + penalty_o, rel=1e-4)
    assert relative_error(grads["tau_hidden"] - grads0["tau_hidden"], g_h) < 1e-4
    assert relative_error(grads["tau_output"] - grads0["tau_output"], g_o) < 1e-4
    sl.train(net, ipd, x, stimulus=stim, epochs=2, batch_size=32, progress=False)
    assert not np.array_equal(net.tau_hidden, tau0)
    assert np.abs(net.tau_hidden - tau0).max() < 2e-3  # lr 0.01 in time steps: small moves
    assert (net.tau_hidden >= np.float32(1.5e-3)).all()
    assert (net.tau_output >= np.float32(1.5e-3)).all()
    # the clamp itself
    net.parameters()["tau_hidden"][0] = 0.1
    net.after_step()
    assert net.parameters()["tau_hidden"][0] == np.float32(1.5)
    assert net.tau_hidden[0] == pytest.approx(1.5e-3, rel=1e-6)


def test_dale_weight_at_zero_stays_culled():
    """sgn(0) = 0: a raw weight at exactly 0 gets no gradient under Dale's law (as in the
    seeds, where torch.abs has derivative 0 at 0); without Dale's law it does."""
    stim, ipd, x = _small_task(40)
    labels = stim.labels(ipd)
    for dale in (sl.Dale(0.5), None):
        culled = dale is not None
        net = sl.SNN.for_stimulus(stim, n_hidden=8, tau_hidden=5e-3, seed=5, dale=dale,
                                  reset="same_step")
        net.w1[:, 3] = np.abs(net.w1[:, 3]) + 0.05     # unit 3 spikes
        net.w1[:40, 3] = 0.0
        _, grads = net.loss_and_grad(x, labels)
        assert np.all(grads["w1"][:40, 3] == 0) == culled
        assert np.any(grads["w1"][40:, 3] != 0)
        net.w2[:, :] = 0.0
        _, grads = net.loss_and_grad(x, labels)
        assert np.all(grads["w2"] == 0) == culled


def test_for_stimulus_with_per_neuron_hidden_taus():
    stim = sl.Stimulus.tutorial()
    net = sl.SNN.for_stimulus(stim, n_hidden=4, tau_hidden=[1e-3, 2e-3, 3e-3, 6e-3])
    assert net.tau_output == pytest.approx(3e-3)
    np.testing.assert_allclose(net.tau_hidden, [1e-3, 2e-3, 3e-3, 6e-3], rtol=1e-6)


def test_learn_one_layer_only_and_fixed_heterogeneous_tau():
    net = sl.SNN(8, 5, 3, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, learn_tau="output")
    assert set(net.parameters()) == {"w1", "w2", "tau_output"}
    assert net.tau_hidden == 5e-3
    taus = np.linspace(2e-3, 10e-3, 5)
    het = sl.SNN(8, 5, 3, dt=1e-3, tau_hidden=taus, tau_output=5e-3)
    assert set(het.parameters()) == {"w1", "w2"}
    np.testing.assert_allclose(het.tau_hidden, taus, rtol=1e-6)
    with pytest.raises(ValueError, match="tau_hidden"):
        sl.SNN(8, 5, 3, dt=1e-3, tau_hidden=np.ones(4) * 1e-3, tau_output=5e-3)
    with pytest.raises(ValueError, match="learn_tau"):
        sl.SNN(8, 5, 3, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, learn_tau="both")


def test_dropout_only_in_training_and_fresh_each_call():
    stim, ipd, x = _small_task(40)
    labels = stim.labels(ipd)
    # per-neuron taus (all equal) run the general kernel without dropout
    kw = dict(n_hidden=16, tau_hidden=np.full(16, 5e-3), tau_output=5e-3, seed=2)
    net = sl.SNN.for_stimulus(stim, dropout=0.5, **kw)
    plain = sl.SNN.for_stimulus(stim, **kw)
    assert plain._variant
    np.testing.assert_array_equal(net.logits(x), plain.logits(x))
    l1, _ = net.loss_and_grad(x, labels)
    l2, _ = net.loss_and_grad(x, labels)
    l0, _ = plain.loss_and_grad(x, labels)
    assert len({l0, l1, l2}) == 3


def test_variant_options_reject_bad_values():
    kw = dict(dt=1e-3, tau_hidden=5e-3, tau_output=5e-3)
    for bad, match in ((dict(reset="soft"), "reset"), (dict(surrogate="relu"), "surrogate"),
                       (dict(readout="rate"), "readout"), (dict(dropout=1.0), "dropout"),
                       (dict(adapt_tau=-1.0), "adapt_tau"), (dict(adapt_strength=-1), "adapt"),
                       (dict(tau_sigma=-1e-3, learn_tau=True), "tau_sigma")):
        with pytest.raises(ValueError, match=match):
            sl.SNN(4, 3, 2, **kw, **bad)
    with pytest.raises(ValueError, match="ie_ratio"):
        sl.Dale(1.5)
    with pytest.raises(ValueError, match="layers"):
        sl.Dale(0.5, layers=("w0",))
    with pytest.raises(ValueError, match="w3"):  # a two-layer network has no w3
        sl.SNN(4, 3, 2, **kw, dale=sl.Dale(0.5, layers=("w3",)))
    with pytest.raises(TypeError, match="rate_regularizer"):
        sl.SNN(4, 3, 2, **kw, rate_regularizer=3.0)


def test_checkpoint_round_trips_variant_options(tmp_path):
    stim, ipd, x = _small_task(40)
    net = sl.SNN.for_stimulus(stim, n_hidden=9, tau_hidden=3e-3, seed=4, reset="subtractive",
                              surrogate="arctan", learn_tau=True, tau_sigma=0.5e-3,
                              tau_var_penalty=0.1, adapt_tau=10e-3, adapt_strength=0.7,
                              readout="spike_count", dale=sl.Dale(0.3, inhibitory="random"),
                              rate_regularizer=sl.RateRegularizer(r_max=50.0), dropout=0.2)
    sl.train(net, ipd, x, stimulus=stim, epochs=1, batch_size=20, progress=False)
    path = net.save(tmp_path / "variant.npz")
    back = sl.load(path)
    assert back.config == net.config
    for name, arr in net.parameters().items():
        np.testing.assert_array_equal(back.parameters()[name], arr)
    np.testing.assert_array_equal(back.dale_signs["w1"], net.dale_signs["w1"])
    np.testing.assert_array_equal(back.logits(x), net.logits(x))
    het = sl.SNN(6, 4, 3, dt=1e-3, tau_hidden=np.array([1e-3, 2e-3, 3e-3, 4e-3]),
                 tau_output=5e-3, readout="max")
    back = sl.load(het.save(tmp_path / "het.npz"))
    np.testing.assert_array_equal(back.tau_hidden, het.tau_hidden)
    assert back.config == het.config
