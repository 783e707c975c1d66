"""Delays, recurrence and depth (MODEL.md section 7) through the Python API: the general network's
Swift kernel against the NumPy reference (python/spikeloc/reference/general.py) over random
configurations of every option combined, thread counts, the default network's fast path,
parameters, clamping, checkpoints and refusals.

Parity inputs follow python/tests/test_parity.py: weights on a 1/64 grid, and a configuration
is redrawn until no voltage of any layer lies within 2e-5 of its threshold and every max
readout has a unique winner.
"""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.reference.general import Spec, general_forward, general_loss_and_grad
from spikeloc.reference.variants import dropout_mask

from test_parity import THRESHOLD_MARGIN, TOLERANCE, relative_error, unique_maxima

READOUTS = ("mean", "sum", "max", "spike_count")
RESETS = ("delayed", "same_step", "subtractive", "zero")
SURROGATES = ("sigmoid", "fast_sigmoid", "arctan", "piecewise_linear")


def reference_problem(net, dropout_seed=0):
    """The reference's Spec and parameters of an SNN (float64 copies of its arrays)."""
    L = len(net.hidden_sizes)
    params = net.parameters()
    f64 = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
    signs = net.dale_signs
    rec = [name for name in net._rec_names]
    p = {"w": [f64(getattr(net, "_" + name)) for name in net._weight_names],
         "w_rec": [None if name is None else f64(getattr(net, "_" + name)) for name in rec],
         "b": None,
         "tau": [f64(net._tau_seconds(layer)) for layer in net._tau_layers],
         "sign": [f64(signs[name]) for name in net._weight_names],
         "sign_rec": [f64(signs[net._weight_names[l + 1]]) for l in range(L)]}
    if net.delay_options is not None:
        p["delays"] = f64(net.delays)
    reg = net.rate_regularizer
    spec = Spec(dt=net.dt, recurrent=tuple(name is not None for name in rec),
                readout=net.readout, reset=net.reset, surrogate=net.surrogate, beta=net.beta,
                adapt_tau=net.adapt_tau,
                adapt_strength=net.adapt_strength if net.adapt_tau else 0.0,
                delays=None if net.delay_options is None else net.delay_options.per,
                rate=None if reg is None else ("upper", reg.strength(net.n_out), reg.r_max),
                dropout=net.dropout, dropout_seed=dropout_seed)
    assert set(params) <= set(net._weight_names) | {n for n in rec if n} | {"delays"} | {
        f"tau_{layer}" for layer in net._tau_layers}
    return spec, p


def _ambiguous(fw, spec):
    beta_a = spec.adapt_strength if spec.adapt_tau else 0.0
    for lay in fw["layers"]:
        d = np.abs(lay["V"] - (1.0 + beta_a * lay["A"]))
        if np.any((d > 0) & (d <= THRESHOLD_MARGIN)):
            return True
    if "output_layer" in fw:
        d = np.abs(fw["output_layer"]["V"] - 1.0)
        if np.any((d > 0) & (d <= THRESHOLD_MARGIN)):
            return True
    return spec.readout == "max" and not unique_maxima(fw["output_membrane"])


def draw_network(seed, **fixed):
    """A random unambiguous problem: (net, x, labels) with random options (``fixed``
    overrides); every option of the variants combined with delays, recurrence and depth."""
    rng = np.random.default_rng(7000 + seed)
    L = int(rng.integers(1, 4))
    o = dict(n_hidden=[int(rng.integers(1, 12)) for _ in range(L)] if L > 1 or rng.random() < 0.5
             else int(rng.integers(1, 12)),
             recurrent=[bool(rng.random() < 0.6) for _ in range(L)],
             readout=str(rng.choice(READOUTS)), reset=str(rng.choice(RESETS)),
             surrogate=str(rng.choice(SURROGATES)), beta=float(rng.uniform(1, 8)),
             delays=[None, "input", "synapse"][int(rng.integers(0, 3))],
             max_delay=int(rng.integers(0, 8)),
             adapt_tau=float(rng.uniform(2e-3, 30e-3)) if rng.random() < 0.4 else None,
             adapt_strength=float(rng.uniform(0.1, 2.0)),
             dale=sl.Dale(float(rng.uniform(0.2, 0.8)), inhibitory="random", layers="all")
             if rng.random() < 0.35 else None,
             rate_regularizer=(float(rng.uniform(0.1, 2)), float(rng.uniform(10, 200)))
             if rng.random() < 0.35 else None,
             dropout=float(rng.uniform(0.1, 0.6)) if rng.random() < 0.3 else 0.0,
             learn_tau=[False, True, "hidden", "output"][int(rng.integers(0, 4))],
             tau_sigma=2e-3)
    o.update(fixed)
    sizes = o["n_hidden"] if isinstance(o["n_hidden"], list) else [o["n_hidden"]]
    if len(o["recurrent"]) != len(sizes):
        o["recurrent"] = [o["recurrent"][0]] * len(sizes)
    B, T = int(rng.integers(1, 7)), int(rng.integers(3, 25))
    n_in, C = int(rng.integers(1, 30)), int(rng.integers(2, 10))
    B, T, n_in = o.pop("batch", B), o.pop("steps", T), o.pop("n_in", n_in)
    dt = float(rng.choice([5e-4, 1e-3]))
    delays = o.pop("delays")
    max_delay = o.pop("max_delay")
    net = sl.SNN(n_in, o.pop("n_hidden"), C, dt=dt, tau_hidden=float(rng.uniform(2e-3, 30e-3)),
                 tau_output=float(rng.uniform(2e-3, 30e-3)), seed=seed, threads=1,
                 delays=None if delays is None else sl.Delays(max_steps=max_delay, per=delays),
                 **o)
    dims = [n_in] + list(net.hidden_sizes) + [C]
    for _ in range(1000):
        x = (rng.random((B, T, n_in)) < rng.uniform(0.05, 0.4)).astype(np.uint8)
        labels = rng.integers(0, C, B).astype(np.int64)
        for l, name in enumerate(net._weight_names):
            lo, hi = (-20, 44) if l < len(sizes) else (-32, 33)
            np.copyto(getattr(net, "_" + name), rng.integers(lo, hi, (dims[l], dims[l + 1])) / 64)
        for name, n in zip(net._rec_names, net.hidden_sizes):
            if name is not None:
                np.copyto(getattr(net, "_" + name), rng.integers(-24, 24, (n, n)) / 64)
        if net.delay_options is not None:
            d = rng.uniform(0, max_delay, net.delays.shape)
            if rng.random() < 0.2:
                d = np.round(d)  # integer delays: the right derivative
            net.delays = d
        spec, p = reference_problem(net, net._dropout_seed())
        Tk = T
        mask = (dropout_mask(np.arange(B), Tk, net.hidden_sizes[-1], spec.dropout,
                             spec.dropout_seed) if spec.dropout else None)
        if not any(_ambiguous(general_forward(x, p, spec, mask=m), spec) for m in (None, mask)):
            return net, x, labels
    raise AssertionError(f"no unambiguous configuration for seed {seed}")


def _reference_grads(net, grads, spec):
    """The reference's gradients under the SNN's parameter names and units (learned time
    constants in units of dt)."""
    out = {}
    for l, name in enumerate(net._weight_names):
        out[name] = grads["w"][l]
    for l, name in enumerate(net._rec_names):
        if name is not None:
            out[name] = grads["w_rec"][l]
    if grads["delays"] is not None:
        out["delays"] = grads["delays"]
    for layer, g in zip(net._tau_layers, grads["tau"]):
        out[f"tau_{layer}"] = g * net.dt
    return out


def assert_parity(net, x, labels):
    spec, p = reference_problem(net, net._dropout_seed())
    loss, grads, logits = net.loss_and_grad(x, labels, return_logits=True)
    r_loss, r_grads, ex = general_loss_and_grad(x, labels, p, spec)
    want = _reference_grads(net, r_grads, spec)
    assert abs(loss - r_loss) / abs(r_loss) < TOLERANCE
    assert relative_error(logits, ex["logits"]) < TOLERANCE
    assert set(grads) == set(net.parameters())
    for name, got in grads.items():
        if np.max(np.abs(want[name])) == 0:
            assert np.max(np.abs(got)) == 0, name
        else:
            assert relative_error(got, want[name]) < TOLERANCE, name
    # the forward pass: every layer's spikes, the output membrane, the logits (no dropout)
    out = net.forward(x)
    fw = general_forward(x, p, spec)
    np.testing.assert_array_equal(out.hidden_spikes,
                                  np.concatenate(fw["hidden_spikes"], axis=2).astype(np.uint8))
    assert relative_error(out.output_membrane, fw["output_membrane"]) < TOLERANCE
    assert relative_error(out.logits, fw["logits"]) < TOLERANCE
    return ex


@pytest.mark.parametrize("seed", range(40))
def test_networks_match_the_reference(seed):
    net, x, labels = draw_network(seed)
    assert_parity(net, x, labels)


def test_random_configurations_cover_every_option():
    seen = {"readout": set(), "reset": set(), "surrogate": set(), "delays": set(), "layers": set()}
    counts = dict(recurrent=0, dale=0, rate=0, dropout=0, adapt=0, learned_tau=0, spiking=0)
    for seed in range(40):
        net, x, _ = draw_network(seed)
        seen["readout"].add(net.readout)
        seen["reset"].add(net.reset)
        seen["surrogate"].add(net.surrogate)
        seen["delays"].add(None if net.delay_options is None else net.delay_options.per)
        seen["layers"].add(len(net.hidden_sizes))
        counts["recurrent"] += any(net._rec_names)
        counts["dale"] += net.dale is not None
        counts["rate"] += net.rate_regularizer is not None
        counts["dropout"] += net.dropout > 0
        counts["adapt"] += net.adapt_tau is not None
        counts["learned_tau"] += net.learn_tau is not False
        counts["spiking"] += bool(net.forward(x).hidden_spikes.any())
    assert seen == {"readout": set(READOUTS), "reset": set(RESETS),
                    "surrogate": set(SURROGATES), "delays": {None, "input", "synapse"},
                    "layers": {1, 2, 3}}
    assert min(counts.values()) >= 6, counts
    assert counts["spiking"] >= 30, counts


COMBINATIONS = [
    # everything at once: delays per synapse, three layers, two recurrent, Dale everywhere,
    # learned taus, adaptation, subtractive reset, rate penalty, dropout, spiking readout
    dict(n_hidden=[9, 7, 5], recurrent=[True, False, True], delays="synapse", max_delay=4,
         dale=sl.Dale(0.4, inhibitory="random", layers="all"), learn_tau=True,
         adapt_tau=8e-3, adapt_strength=1.0, reset="subtractive", surrogate="fast_sigmoid",
         rate_regularizer=(1.0, 30.0), dropout=0.25, readout="spike_count"),
    dict(n_hidden=12, recurrent=[True], delays="input", max_delay=6, dale=sl.Dale(0.5),
         learn_tau="hidden", reset="same_step", surrogate="arctan", readout="max"),
    dict(n_hidden=[10, 6], recurrent=[True, True], delays="input", max_delay=3,
         learn_tau="output", adapt_tau=12e-3, adapt_strength=0.5, readout="sum",
         surrogate="piecewise_linear", beta=1.0, dropout=0.4),
    dict(n_hidden=[8, 6], recurrent=[True, True], delays="synapse", max_delay=3, learn_tau=True,
         adapt_tau=10e-3, adapt_strength=0.8, reset="zero", dale=sl.Dale(0.3, layers="all"),
         readout="spike_count"),
]


@pytest.mark.parametrize("case", range(len(COMBINATIONS)))
def test_combinations_match_the_reference(case):
    exercised = 0
    for seed in range(6):
        net, x, labels = draw_network(100 + 10 * case + seed, batch=4, steps=25, n_in=20,
                                      **COMBINATIONS[case])
        ex = assert_parity(net, x, labels)
        exercised += all(lay["S"].sum() > 0 for lay in ex["layers"])
    assert exercised >= 4  # every layer spikes in most draws


@pytest.mark.parametrize("seed", range(4))
def test_results_do_not_depend_on_threads(seed):
    zero = {"reset": "zero"} if seed == 3 else {}  # seeds 0-2 draw the reset at random
    net, _, _ = draw_network(200 + seed, n_hidden=[8, 6], recurrent=[True, True],
                             delays="synapse", max_delay=3, dropout=0.3,
                             rate_regularizer=(1.0, 20.0), dale=sl.Dale(0.5, layers="all"),
                             **zero)
    rng = np.random.default_rng(seed)
    x = (rng.random((21, 20, net.n_in)) < 0.25).astype(np.uint8)   # several chunks of 8
    labels = rng.integers(0, net.n_out, 21)
    results = []
    for threads in (1, 2, 4):
        net.threads = threads
        net._dropout_calls = 0  # the same masks
        loss, grads = net.loss_and_grad(x, labels)
        results.append((loss, grads, net.forward(x)))
    for loss, grads, out in results[1:]:
        assert loss == results[0][0]
        for name in grads:
            np.testing.assert_array_equal(grads[name], results[0][1][name])
        for a, b in zip(out, results[0][2]):
            np.testing.assert_array_equal(a, b)


def test_the_kernel_leaves_subnormals_on_for_the_caller():
    # every kernel flushes subnormals to zero while it runs (Support.swift, parallelFor with
    # withoutSubnormals) and must restore the calling thread's floating-point mode: the general
    # network and the tutorial's fast kernel alike
    tiny = np.float32(1e-38)
    assert tiny * np.float32(0.5) > 0
    general, _, _ = draw_network(7, n_hidden=[6], recurrent=[True])
    default = sl.SNN(general.n_in, 6, 3, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, seed=1)
    x = (np.random.default_rng(0).random((3, 10, general.n_in)) < 0.3).astype(np.uint8)
    for net in (general, default):
        for threads in (1, 2):
            net.threads = threads
            net.loss_and_grad(x, np.zeros(3, dtype=np.int64))
            net.forward(x)
            assert tiny * np.float32(0.5) > 0, f"flush-to-zero leaked (threads {threads})"


def test_the_default_network_keeps_its_fast_path_bit_for_bit():
    """No option beyond the seeds: the tutorial's own kernel, unchanged; a network with one
    recurrent layer whose w_rec is zero gives its spikes and (to rounding) its gradients."""
    rng = np.random.default_rng(3)
    x = (rng.random((10, 30, 16)) < 0.2).astype(np.uint8)
    labels = rng.integers(0, 4, 10)
    plain = sl.SNN(16, 12, 4, dt=1e-3, tau_hidden=10e-3, tau_output=10e-3, seed=1)
    assert plain._general is None and not plain._variant
    cfg = plain._abi_config(30)
    from spikeloc._native_api import _native
    g1, g2 = np.empty_like(plain.w1), np.empty_like(plain.w2)
    want = _native.snn_loss_grad(cfg, sl.SpikeEvents.from_dense(x)._abi(), None, 10, labels,
                                 plain.w1, plain.w2, g1, g2, None, 0)
    loss, grads = plain.loss_and_grad(x, labels)
    assert loss == want
    np.testing.assert_array_equal(grads["w1"], g1)
    np.testing.assert_array_equal(grads["w2"], g2)
    rec = sl.SNN(16, 12, 4, dt=1e-3, tau_hidden=10e-3, tau_output=10e-3, seed=1, recurrent=True)
    np.testing.assert_array_equal(rec.w1, plain.w1)
    np.testing.assert_array_equal(rec.w2, plain.w2)   # the same draws, w_rec after them
    rec.w_rec = np.zeros((12, 12))
    np.testing.assert_array_equal(rec.forward(x).hidden_spikes, plain.forward(x).hidden_spikes)
    r_loss, r_grads = rec.loss_and_grad(x, labels)
    assert r_loss == pytest.approx(loss, rel=1e-5)
    for name in ("w1", "w2"):
        assert relative_error(r_grads[name], grads[name]) < 1e-5
    assert np.abs(r_grads["w_rec"]).max() > 0


def test_parameters_names_and_shapes():
    single = sl.SNN(6, 5, 3, dt=1e-3, tau_hidden=0.01, tau_output=0.01, recurrent=True,
                    delays=sl.Delays(max_steps=4), learn_tau=True)
    assert list(single.parameters()) == ["w1", "w_rec", "w2", "delays", "tau_hidden",
                                         "tau_output"]
    assert single.w_rec.shape == (5, 5) and single.delays.shape == (6,)
    assert ((single.delays >= 0) & (single.delays <= 4)).all() and single.delays.std() > 0
    deep = sl.SNN(6, [5, 4], 3, dt=1e-3, tau_hidden=[0.01, 0.02], tau_output=0.01,
                  recurrent=[False, True], delays=sl.Delays(per="synapse", init="zero"),
                  learn_tau="hidden")
    assert {k: v.shape for k, v in deep.parameters().items()} == {
        "w1": (6, 5), "w2": (5, 4), "w_rec2": (4, 4), "w3": (4, 3), "delays": (6, 5),
        "tau_hidden1": (5,), "tau_hidden2": (4,)}
    assert np.all(deep.delays == 0)
    np.testing.assert_allclose(deep.tau_hidden[1], 0.02, rtol=1e-6)
    with pytest.raises(AttributeError, match="w_rec"):
        deep.w_rec
    fixed = sl.SNN(6, 5, 3, dt=1e-3, tau_hidden=0.01, tau_output=0.01,
                   delays=sl.Delays(max_steps=5, learn=False, init=2.5))
    assert "delays" not in fixed.parameters() and np.all(fixed.delays == 2.5)


def test_after_step_clamps_the_delays_and_training_moves_them():
    stim = sl.Stimulus(phase_offset="per_sample", anf_per_ear=8)
    ipd, x = stim.generate(64, 0)
    net = sl.SNN.for_stimulus(stim, n_hidden=10, delays=sl.Delays(max_steps=3), seed=2)
    before = net.delays.copy()
    net.delays[:3] = [-1.0, 7.0, 2.0]   # out of range, as a large optimiser step could leave them
    net.after_step()
    np.testing.assert_array_equal(net.delays[:3], [0.0, 3.0, 2.0])
    net.delays = before
    sl.train(net, ipd, x, stimulus=stim, epochs=2, batch_size=16, lr=0.1, progress=False)
    assert not np.array_equal(net.delays, before)
    assert ((net.delays >= 0) & (net.delays <= 3)).all()
    with pytest.raises(ValueError, match=r"\[0, max_steps = 3\]"):
        net.delays = np.full(net.n_in, 3.5)


def test_checkpoints_round_trip(tmp_path):
    stim = sl.Stimulus(phase_offset="per_sample", anf_per_ear=6)
    _, x = stim.generate(4, 0)
    for kw in (dict(n_hidden=[7, 5], recurrent=[True, False],
                    delays=sl.Delays(per="synapse", max_steps=3), learn_tau=True,
                    dale=sl.Dale(0.5, layers="all")),
               dict(n_hidden=9, recurrent=True, delays=sl.Delays(learn=False, max_steps=2),
                    readout="spike_count")):
        net = sl.SNN.for_stimulus(stim, seed=4, **kw)
        if not net.delay_options.learn:
            net.delays = np.linspace(0, 2, net.n_in)   # fixed, but set: saved too
        path = net.save(tmp_path / "net.npz")
        back = sl.load(path)
        assert repr(back) == repr(net)
        for name, arr in net.parameters().items():
            np.testing.assert_array_equal(back.parameters()[name], arr)
        np.testing.assert_array_equal(back.delays, net.delays)
        np.testing.assert_array_equal(back.logits(x), net.logits(x))
    mo = sl.MembraneOnly.for_stimulus(stim, delays=sl.Delays(max_steps=4), readout="max")
    back = sl.load(mo.save(tmp_path / "mo.npz"))
    np.testing.assert_array_equal(back.delays, mo.delays)
    np.testing.assert_array_equal(back.logits(x), mo.logits(x))


def test_membrane_only_with_delays_matches_the_reference():
    rng = np.random.default_rng(9)
    x = (rng.random((6, 25, 10)) < 0.3).astype(np.uint8)
    labels = rng.integers(0, 3, 6)
    for per, readout in (("input", "max"), ("synapse", "sum"), ("input", "mean")):
        net = sl.MembraneOnly(10, 3, dt=1e-3, tau=8e-3, readout=readout,
                              delays=sl.Delays(max_steps=5, per=per), seed=3)
        net.w = rng.integers(-32, 33, (10, 3)) / 64
        spec = Spec(dt=1e-3, readout=readout, delays=per)
        p = {"w": [net.w.astype(np.float64)], "tau": [np.full(3, 8e-3)],
             "delays": net.delays.astype(np.float64)}
        loss, grads, logits = net.loss_and_grad(x, labels, return_logits=True)
        r_loss, r_grads, ex = general_loss_and_grad(x, labels, p, spec)
        assert loss == pytest.approx(r_loss, rel=TOLERANCE)
        assert relative_error(grads["w"], r_grads["w"][0]) < TOLERANCE
        assert relative_error(grads["delays"], r_grads["delays"]) < TOLERANCE
        assert relative_error(net.forward(x).output_membrane, ex["output_membrane"]) < TOLERANCE


def test_bad_options_are_refused():
    kw = dict(dt=1e-3, tau_hidden=0.01, tau_output=0.01)
    with pytest.raises(ValueError, match="n_hidden"):
        sl.SNN(4, [], 2, **kw)
    with pytest.raises(ValueError, match=r"n_hidden\[1\]"):
        sl.SNN(4, [3, 0], 2, **kw)
    with pytest.raises(TypeError, match="recurrent"):
        sl.SNN(4, [3, 3], 2, recurrent=[True], **kw)
    with pytest.raises(TypeError, match="recurrent"):
        sl.SNN(4, 3, 2, recurrent="yes", **kw)
    with pytest.raises(ValueError, match="tau_hidden"):
        sl.SNN(4, [3, 3], 2, dt=1e-3, tau_hidden=[0.01, 0.01, 0.01], tau_output=0.01)
    with pytest.raises(TypeError, match="delays"):
        sl.SNN(4, 3, 2, delays=5, **kw)
    for bad, match in ((dict(max_steps=-1), "max_steps"), (dict(per="unit"), "per"),
                       (dict(init="random"), "init"), (dict(init=12.0), "init"),
                       (dict(learn="yes"), "learn")):
        with pytest.raises((ValueError, TypeError), match=match):
            sl.Delays(**bad)
    with pytest.raises(ValueError, match="w4"):
        sl.SNN(4, [3, 3], 2, dale=sl.Dale(0.5, layers=("w4",)), **kw)
    with pytest.raises(AttributeError, match="delays"):
        sl.SNN(4, 3, 2, **kw).delays
