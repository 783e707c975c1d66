"""e-prop (spikeloc.EPropNetwork, MODEL.md section 5): the Swift kernel against the NumPy
reference, the e-prop = BPTT check, masks, thread determinism, recordings, bad input.

Inputs are unambiguous as in test_parity.py: weights are multiples of 1/64, the threshold is
0.625 (exact in float32), and a configuration is redrawn while any voltage lies within 2e-5 of
the threshold, so that float32 kernels and the float64 reference spike identically.
"""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.reference import eprop as ref

TOLERANCE = 1e-4
MARGIN = 2e-5
V_TH = 0.625


def relative_error(native, reference):
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.max(np.abs(reference))), 1e-30)
    return float(np.max(np.abs(np.asarray(native, dtype=np.float64) - reference)) / scale)


def ref_kwargs(net):
    return dict(dt=net.dt, tau_m=net.tau_m, tau_out=net.tau_out, v_th=net.v_th,
                gamma=net.gamma, window=net.window)


def draw(seed, **overrides):
    """A random unambiguous problem: (net, x, labels)."""
    rng = np.random.default_rng(seed)
    cfg = dict(
        n_in=int(rng.integers(1, 30)), n_hidden=int(rng.integers(1, 20)),
        n_out=int(rng.integers(2, 9)), dt=float(rng.choice([5e-4, 1e-3])),
        tau_m=float(rng.uniform(5e-3, 40e-3)), tau_out=float(rng.uniform(5e-3, 100e-3)),
        v_th=V_TH, gamma=float(rng.uniform(0.1, 1.0)),
        feedback=str(rng.choice(["random", "symmetric"])),
        loss=str(rng.choice(["cross_entropy", "mse"])),
        reg_c=float(rng.choice([0.0, 1e-3])), f_target=float(rng.uniform(0, 50)),
        recurrent=bool(rng.integers(0, 2)), sparsity_in=float(rng.choice([0.0, 0.5])),
        sparsity_rec=float(rng.choice([0.0, 0.5])), sparsity_out=float(rng.choice([0.0, 0.3])),
        seed=int(seed), threads=1)
    batch, steps = int(rng.integers(1, 12)), int(rng.integers(2, 40))
    cfg["window"] = int(rng.integers(1, steps + 1))
    cfg.update(overrides)
    net = sl.EPropNetwork(**cfg)
    for _ in range(200):
        x = (rng.random((batch, steps, net.n_in)) < rng.uniform(0.05, 0.4)).astype(np.uint8)
        labels = rng.integers(0, net.n_out, batch).astype(np.int64)
        net.w_in = rng.integers(-10, 40, net.w_in.shape) / 64
        if net.recurrent:
            net.w_rec = rng.integers(-24, 24, net.w_rec.shape) / 64
        net.w_out = rng.integers(-32, 33, net.w_out.shape) / 64
        net.b = rng.integers(-16, 17, net.n_out) / 64
        v = ref.eprop_forward(x, net.w_in, net.w_rec, net.w_out, net.b,
                              **ref_kwargs(net))["voltage"]
        if np.all(np.abs(v - net.v_th) > MARGIN):
            return net, x, labels
    raise AssertionError(f"no unambiguous configuration for seed {seed}")


def reference_grads(net, x, labels, **extra):
    loss, grads, extras = ref.eprop_loss_and_grad(
        x, labels, net.w_in, net.w_rec, net.w_out, net.b, net.feedback_weights,
        loss=net.loss, reg_c=net.reg_c, f_target=net.f_target, **ref_kwargs(net), **extra)
    for name, mask in net.masks.items():
        grads[name] = grads[name] * mask
    return loss, grads, extras


@pytest.mark.parametrize("seed", range(16))
def test_loss_and_gradients_match_reference(seed):
    net, x, labels = draw(seed)
    loss, grads, logits = net.loss_and_grad(x, labels, return_logits=True)
    r_loss, r_grads, extras = reference_grads(net, x, labels)
    assert set(grads) == set(r_grads) == set(net.parameters())
    assert relative_error(loss, r_loss) <= TOLERANCE
    for name in grads:
        assert grads[name].dtype == np.float32 and grads[name].shape == r_grads[name].shape
        assert relative_error(grads[name], r_grads[name]) <= TOLERANCE, name
    assert relative_error(logits, extras["logits"]) <= TOLERANCE
    # a batch given by index equals the same samples given directly
    index = np.arange(len(x))[::-1].copy()
    _, grads2 = net.loss_and_grad(x, labels[index], index=index)
    _, r2, _ = reference_grads(net, x[index], labels[index])
    assert relative_error(grads2["w_in"], r2["w_in"]) <= TOLERANCE


def test_gradients_are_not_trivial():
    # the comparison above would pass for all-zero gradients on both sides: make sure they are not
    net, x, labels = draw(3)
    _, grads = net.loss_and_grad(x, labels)
    nonzero = [name for name, g in grads.items() if np.any(g != 0)]
    assert "w_out" in nonzero and "b" in nonzero


@pytest.mark.parametrize("seed", range(6))
def test_recordings_match_reference(seed):
    net, x, labels = draw(100 + seed)
    out = net.record(x, labels)
    fw = ref.eprop_forward(x, net.w_in, net.w_rec, net.w_out, net.b, **ref_kwargs(net))
    _, _, extras = reference_grads(net, x, labels)
    np.testing.assert_array_equal(out.spikes, fw["spikes"].astype(np.uint8))
    assert relative_error(out.voltage, fw["voltage"]) <= TOLERANCE
    assert relative_error(out.psi, fw["psi"]) <= TOLERANCE
    assert relative_error(out.readout, fw["readout"]) <= TOLERANCE
    assert relative_error(out.logits, fw["logits"]) <= TOLERANCE
    assert relative_error(out.learning_signal, extras["learning_signal"]) <= TOLERANCE
    np.testing.assert_array_equal(net.logits(x), out.logits)
    np.testing.assert_array_equal(net.predict(x), np.argmax(out.logits, axis=1))
    assert not np.any(net.record(x).learning_signal)      # no labels: no learning signal


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("reg_c", [0.0, 2e-3])
def test_eprop_equals_bptt_without_recurrence_and_reset(loss, reg_c):
    """MODEL.md section 5: with w_rec = 0, symmetric feedback and the reset removed from the
    gradient path, e-prop's gradient is BPTT's (same pseudo-derivative)."""
    net, x, labels = draw(7, loss=loss, reg_c=reg_c, feedback="symmetric", recurrent=True,
                          sparsity_in=0.0, sparsity_rec=0.0, sparsity_out=0.0, n_hidden=9,
                          n_in=12, n_out=4, autapses=True)
    net.w_rec = np.zeros_like(net.w_rec)
    kw = dict(loss=loss, reg_c=reg_c, f_target=net.f_target, **ref_kwargs(net))
    b_loss, b_grads = ref.bptt_loss_and_grad(x, labels, net.w_in, net.w_rec, net.w_out, net.b,
                                             reset_in_gradient=False, **kw)
    e_loss, e_grads, _ = ref.eprop_loss_and_grad(x, labels, net.w_in, net.w_rec, net.w_out,
                                                 net.b, net.w_out, **kw)
    n_loss, n_grads = net.loss_and_grad(x, labels)
    assert np.any(b_grads["w_in"] != 0) and np.any(b_grads["w_rec"] != 0)
    for name in b_grads:
        assert relative_error(e_grads[name], b_grads[name]) <= 1e-12, name
        assert relative_error(n_grads[name], b_grads[name]) <= TOLERANCE, name
    assert abs(e_loss - b_loss) <= 1e-12 and relative_error(n_loss, b_loss) <= TOLERANCE
    # with the reset in the gradient path BPTT differs: the check is not vacuous
    _, full = ref.bptt_loss_and_grad(x, labels, net.w_in, net.w_rec, net.w_out, net.b,
                                     reset_in_gradient=True, **kw)
    if np.any(np.asarray(ref.eprop_forward(x, net.w_in, net.w_rec, net.w_out, net.b,
                                           **ref_kwargs(net))["spikes"])):
        assert relative_error(e_grads["w_in"], full["w_in"]) > 1e-3


def test_bptt_reference_readout_gradients_match_finite_differences():
    # w_out and b do not change any spike: the loss is smooth in them
    net, x, labels = draw(11, recurrent=True, reg_c=0.0)
    kw = dict(loss=net.loss, **ref_kwargs(net))
    w_out = net.w_out.astype(np.float64)
    b = net.b.astype(np.float64)
    _, grads = ref.bptt_loss_and_grad(x, labels, net.w_in, net.w_rec, w_out, b, **kw)
    h = 1e-6
    for name, arr in (("w_out", w_out), ("b", b)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args = {"w_out": w_out, "b": b, name: plus}
            lp, _ = ref.bptt_loss_and_grad(x, labels, net.w_in, net.w_rec, args["w_out"],
                                           args["b"], **kw)
            args[name] = minus
            lm, _ = ref.bptt_loss_and_grad(x, labels, net.w_in, net.w_rec, args["w_out"],
                                           args["b"], **kw)
            numeric[idx] = (lp - lm) / (2 * h)
        assert relative_error(grads[name], numeric) <= 1e-6, name


def test_threads_bit_identical():
    net, x, labels = draw(21, recurrent=True, reg_c=1e-3)
    x = np.concatenate([x] * 4)[:30] if len(x) < 30 else x
    labels = np.resize(labels, len(x))
    results = []
    for threads in (1, 2, 4):
        net.threads = threads
        loss, grads, logits = net.loss_and_grad(x, labels, return_logits=True)
        results.append((loss, grads, logits, net.record(x, labels)))
    for loss, grads, logits, rec in results[1:]:
        assert loss == results[0][0]
        for name in grads:
            np.testing.assert_array_equal(grads[name], results[0][1][name])
        np.testing.assert_array_equal(logits, results[0][2])
        for a, b in zip(rec, results[0][3]):
            np.testing.assert_array_equal(a, b)


def test_masks_keep_absent_synapses_zero_through_training():
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", duration=0.03, anf_per_ear=10)
    ipd, spikes = stim.generate(64, seed=3)
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=12, sparsity_in=0.5, sparsity_rec=0.7,
                                       sparsity_out=0.3, threads=2)
    masks = {k: v.copy() for k, v in net.masks.items()}
    assert all(np.any(m == 0) and np.any(m == 1) for m in masks.values())
    assert np.all(np.diag(masks["w_rec"]) == 0)              # no autapses by default
    before = {k: v.copy() for k, v in net.parameters().items()}
    sl.train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=16, lr=0.05,
             progress=False)
    for name, mask in masks.items():
        w = net.parameters()[name]
        assert np.all(w[mask == 0] == 0), name
        assert np.any(w[mask == 1] != before[name][mask == 1]), name
    with pytest.raises(ValueError, match="w_rec"):
        net.w_rec = np.ones((12, 12))[:3]
    net.w_in = np.ones(net.w_in.shape)                      # assignment applies the mask
    np.testing.assert_array_equal(net.w_in, masks["w_in"].astype(np.float32))


def test_train_and_evaluate_work_unchanged(tmp_path):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", duration=0.03, anf_per_ear=10)
    ipd, spikes = stim.generate(96, seed=0)
    ipd_v, spikes_v = stim.generate(32, seed=1)
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=16, threads=1)
    assert net.window == stim.steps and net.loss == "cross_entropy"
    history = sl.train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=32, lr=0.01,
                       validation=(ipd_v, spikes_v), progress=False)
    assert history.epochs == 3 and all(np.isfinite(history.train_loss))
    assert history.train_loss[-1] < history.train_loss[0]
    ev = sl.evaluate(net, ipd_v, spikes_v, stim)
    assert ev.n == 32 and 0 <= ev.accuracy <= 1
    path = net.save(tmp_path / "net.npz")
    other = sl.EPropNetwork.load(path, threads=1)
    assert other.config == net.config
    for name, arr in net.parameters().items():
        np.testing.assert_array_equal(other.parameters()[name], arr)
    np.testing.assert_array_equal(other.feedback_weights, net.feedback_weights)
    np.testing.assert_array_equal(other.logits(spikes_v), net.logits(spikes_v))


def test_feedforward_variant_has_no_recurrent_weights():
    net, x, labels = draw(5, recurrent=False)
    assert net.w_rec is None and "w_rec" not in net.parameters()
    _, grads = net.loss_and_grad(x, labels)
    assert set(grads) == {"w_in", "w_out", "b"}


def test_bad_input_names_the_argument():
    net = sl.EPropNetwork(6, 5, 3, window=4, threads=1)
    x = np.zeros((2, 8, 6), np.uint8)
    labels = np.array([0, 2])
    with pytest.raises(ValueError, match="n_in"):
        net.loss_and_grad(np.zeros((2, 8, 5), np.uint8), labels)
    with pytest.raises(ValueError, match="labels"):
        net.loss_and_grad(x, np.array([0, 3]))
    with pytest.raises(TypeError, match="labels"):
        net.loss_and_grad(x, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="spikes"):
        net.logits(np.zeros((2, 8, 6), np.float32))
    with pytest.raises(ValueError, match="window"):
        net.logits(np.zeros((2, 3, 6), np.uint8))
    with pytest.raises(ValueError, match="feedback"):
        sl.EPropNetwork(6, 5, 3, feedback="transpose")
    with pytest.raises(ValueError, match="loss"):
        sl.EPropNetwork(6, 5, 3, loss="hinge")
    with pytest.raises(ValueError, match="sparsity_in"):
        sl.EPropNetwork(6, 5, 3, sparsity_in=1.0)
    with pytest.raises(ValueError, match="mask_out"):
        sl.EPropNetwork(6, 5, 3, mask_out=np.ones((3, 5), np.uint8))
    with pytest.raises(ValueError, match="mask_in"):
        sl.EPropNetwork(6, 5, 3, mask_in=np.full((6, 5), 2))
    with pytest.raises(ValueError, match="tau_m"):
        sl.EPropNetwork(6, 5, 3, tau_m=0.0)
    with pytest.raises(ValueError, match="v_th"):
        sl.EPropNetwork(6, 5, 3, v_th=-1.0)
    with pytest.raises(ValueError, match="reg_c"):
        sl.EPropNetwork(6, 5, 3, reg_c=-1.0)
    with pytest.raises(TypeError, match="recurrent"):
        sl.EPropNetwork(6, 5, 3, recurrent="yes")
    with pytest.raises(ValueError, match="w_out"):
        net.w_out = np.zeros((3, 5))
    net._w_in[0, 0] = np.nan
    with pytest.raises(ValueError, match="w_in"):
        net.loss_and_grad(x, labels)


def test_native_layer_rejects_bad_arrays():
    """The extension and the kernel check what Python code could get wrong."""
    from spikeloc._native_api import _native
    net = sl.EPropNetwork(4, 3, 2, window=2, threads=1)
    ev = sl.SpikeEvents.from_dense(np.zeros((1, 5, 4), np.uint8))
    cfg = net._abi_config(5)
    logits = np.empty((1, 2), np.float32)
    args = [cfg, ev._abi(), None, 1, None, net.w_in, net.w_rec, net.w_out, net.b, None, logits]
    _native.eprop_forward(*args)
    bad = list(args)
    bad[7] = net.w_out.astype(np.float64)
    with pytest.raises(TypeError, match="w_out"):
        _native.eprop_forward(*bad)
    bad = list(args)
    bad[6] = None
    with pytest.raises(TypeError, match="w_rec"):
        _native.eprop_forward(*bad)
    bad = list(args)
    bad[0] = cfg[:4] + (9,) + cfg[5:]
    with pytest.raises(ValueError, match="window"):
        _native.eprop_forward(*bad)
    bad = list(args)
    bad[0] = cfg[:12] + (5,) + cfg[13:]
    with pytest.raises(ValueError, match="loss"):
        _native.eprop_forward(*bad)
    with pytest.raises(ValueError, match="learning signals need labels"):
        _native.eprop_forward(*args, learning_signal=np.empty(15, np.float32))
    g = [np.empty_like(net.w_in), np.empty_like(net.w_rec), np.empty_like(net.w_out),
         np.empty_like(net.b)]
    with pytest.raises(TypeError, match="feedback"):
        _native.eprop_loss_grad(cfg, ev._abi(), None, 1, np.zeros(1, np.int64), net.w_in,
                                net.w_rec, net.w_out, net.b, None, None, None, None, *g)
    with pytest.raises(ValueError, match="mask_in"):
        _native.eprop_loss_grad(cfg, ev._abi(), None, 1, np.zeros(1, np.int64), net.w_in,
                                net.w_rec, net.w_out, net.b, net.w_out, np.ones(3, np.uint8),
                                None, None, *g)


@pytest.mark.parametrize("seed", range(12))
def test_bptt_view_trains_the_same_network(seed):
    """The BPTT view (the general network's Swift kernel) against the NumPy reference BPTT,
    with and without the reset in the gradient, recurrent or not, both losses."""
    net, x, labels = draw(31 + seed, reg_c=1e-3 if seed % 3 else 0.0)
    view = net.bptt(reset_in_gradient=seed % 2 == 0)
    assert view.parameters()["w_in"] is net.w_in
    loss, grads, logits = view.loss_and_grad(sl.SpikeEvents.from_dense(x), labels,
                                             return_logits=True)
    r_loss, r_grads = ref.bptt_loss_and_grad(
        x, labels, net.w_in, net.w_rec, net.w_out, net.b, loss=net.loss, reg_c=net.reg_c,
        f_target=net.f_target, reset_in_gradient=view.reset_in_gradient, **ref_kwargs(net))
    assert loss == pytest.approx(r_loss, rel=1e-5)
    assert set(grads) == set(net.parameters())
    for name, mask in net.masks.items():
        want = r_grads[name] * mask
        assert np.all(grads[name][mask == 0] == 0), name
        scale = max(float(np.max(np.abs(want))), 1e-30)
        assert np.max(np.abs(grads[name] - want)) / scale < 1e-4, name
    assert np.max(np.abs(grads["b"] - r_grads["b"])) <= 1e-4 * max(np.max(np.abs(r_grads["b"])), 1e-30)
    np.testing.assert_allclose(logits, net.logits(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(view.predict(x), net.predict(x))


@pytest.mark.parametrize("steps, dt, tau_m, tau_out", [
    (600, 1e-3, 20e-3, 30e-3),      # 5 blocks of 120 steps, the window from mid-block
    (257, 1e-3, 20e-3, 30e-3),      # blocks of 86, 86 and 85 steps
    (50, 1e-3, 0.6e-3, 40e-3),      # one block, dt > tau_m
    (300, 1e-4, 0.5e-3, 5e-3),      # the 250 Hz study's time scales, 3 blocks of 100 steps
])
def test_long_samples_and_block_lengths(steps, dt, tau_m, tau_out):
    """The kernel updates the traces in blocks of steps (exact, backward recursions within a
    block): check long samples, several blocks and uneven ones against the step-by-step
    reference."""
    net, x, labels = draw(41, n_in=12, n_hidden=10, n_out=3, dt=dt, tau_m=tau_m,
                          tau_out=tau_out, recurrent=True, reg_c=1e-4, window=steps // 2)
    rng = np.random.default_rng(steps)
    for _ in range(200):
        x = (rng.random((3, steps, 12)) < 0.1).astype(np.uint8)
        v = ref.eprop_forward(x, net.w_in, net.w_rec, net.w_out, net.b,
                              **ref_kwargs(net))["voltage"]
        if np.all(np.abs(v - net.v_th) > MARGIN):
            break
    else:
        raise AssertionError("no unambiguous input found")
    labels = np.array([0, 1, 2])
    loss, grads = net.loss_and_grad(x, labels)
    r_loss, r_grads, _ = reference_grads(net, x, labels)
    assert relative_error(loss, r_loss) <= TOLERANCE
    for name in grads:
        assert np.any(r_grads[name] != 0), name
        assert relative_error(grads[name], r_grads[name]) <= TOLERANCE, name
