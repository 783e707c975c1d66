"""EPropNetwork(conventions="nest"): NEST's numbers (seed 003) read the way NEST reads them."""

import math

import numpy as np
import pytest

import spikeloc as sl

#: Seed 003's numbers, as a NEST user knows them.
NEST = dict(dt=1e-3, tau_m=30e-3, tau_out=100e-3, v_th=0.6, gamma=0.5, loss="mse", window=10,
            reg_c=2 / 300, f_target=10.0, sparsity_in=0.75, sparsity_rec=0.99)


def digits(n, steps=100, n_in=400, seed=0):
    """Ten classes of sparse event patterns: each class drives its own inputs at its own
    times (N-MNIST-like density, ~1 %)."""
    proto = np.random.default_rng(1234)
    inputs = [proto.choice(n_in, 60, replace=False) for _ in range(10)]
    onsets = [proto.integers(0, steps - 30, 60) for _ in range(10)]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    x = (rng.random((n, steps, n_in)) < 0.003).astype(np.uint8)
    for b, c in enumerate(labels):
        for k in range(60):
            t = onsets[c][k] + np.flatnonzero(rng.random(30) < 0.2)
            x[b, t, inputs[c][k]] = 1
    return sl.SpikeEvents.from_dense(x), labels.astype(np.int64)


def twin(nest_net, **changes):
    """A spikeloc-conventions network with the NEST network's weights and feedback."""
    kw = dict(NEST, **changes)
    net = sl.EPropNetwork(nest_net.n_in, nest_net.n_hidden, nest_net.n_out, seed=1,
                          mask_in=nest_net.masks["w_in"], mask_rec=nest_net.masks["w_rec"],
                          mask_out=nest_net.masks["w_out"], **kw)
    for name, value in nest_net.parameters().items():
        getattr(net, name)[...] = value
    net._feedback[...] = nest_net._feedback
    return net


def test_initialisation_is_seed_003s():
    nest = sl.EPropNetwork(400, 60, 10, seed=1, conventions="nest", **NEST)
    plain = sl.EPropNetwork(400, 60, 10, seed=1, **NEST)
    s = 1 - math.exp(-1e-3 / 100e-3)
    # w_out: the same Glorot draw times NEST's scale_factor 1 - kappa
    np.testing.assert_allclose(nest.w_out, plain.w_out * s, rtol=1e-6)
    assert np.array_equal(nest.w_in, plain.w_in) and np.array_equal(nest.w_rec, plain.w_rec)
    # feedback: N(0, 1) / scale_factor (seed 003's randn(n_rec, n_out) / scale_factor)
    fb = nest.feedback_weights * s
    assert abs(fb.mean()) < 0.1 and 0.9 < fb.std() < 1.1
    assert nest.config["conventions"] == "nest" and "conventions" not in plain.config
    with pytest.raises(ValueError, match="conventions must be one of"):
        sl.EPropNetwork(4, 3, 2, conventions="tf")


def test_gamma_is_the_height_of_the_pseudo_derivative():
    x, _ = digits(8)
    net = sl.EPropNetwork(x.n_in, 60, 10, seed=1, conventions="nest", **NEST)
    rec = net.record(x)
    expected = 0.5 * np.maximum(0.0, 1.0 - np.abs(rec.voltage - 0.6) / 0.6)
    np.testing.assert_allclose(rec.psi, expected, rtol=1e-5, atol=1e-7)
    assert rec.psi.max() > 0.3


def test_loss_and_gradients_are_nests_sums():
    """Loss and gradients: s^2 W times spikeloc's, with the kernel's gamma = gamma v_th and
    regulariser reg_c N_h T dt / (1000 s^2 W) (EPropNetwork's docstring)."""
    x, labels = digits(16)
    nest = sl.EPropNetwork(x.n_in, 60, 10, seed=1, conventions="nest", **NEST)
    s, T, W = 1 - math.exp(-0.01), x.steps, 10
    plain = twin(nest, gamma=0.5 * 0.6, reg_c=(2 / 300) * 60 * T * 1e-3 / (1000 * s * s * W))
    loss_n, g_n = nest.loss_and_grad(x, labels)
    loss_p, g_p = plain.loss_and_grad(x, labels)
    assert loss_n == pytest.approx(s * s * W * loss_p, rel=1e-12)
    for name in g_p:
        np.testing.assert_allclose(g_n[name], np.float32(s * s * W) * g_p[name], rtol=1e-6)
    # the same through BPTT of the same network (the NumPy reference)
    dense = x.to_dense()[:2]
    loss_b, g_b = nest.bptt(reset_in_gradient=False).loss_and_grad(dense, labels[:2])
    loss_pb, g_pb = plain.bptt(reset_in_gradient=False).loss_and_grad(dense, labels[:2])
    assert loss_b == pytest.approx(s * s * W * loss_pb, rel=1e-9)
    np.testing.assert_allclose(g_b["w_out"], s * s * W * g_pb["w_out"], rtol=1e-5)


def test_nests_numbers_train_stably_only_with_nests_conventions():
    """Seed 003's learning rate 5e-3 and regulariser 2/300 with gradient descent after every
    sample: spikeloc's conventions blow up within a few samples, NEST's learn."""
    x, labels = digits(128)
    plain = sl.EPropNetwork(x.n_in, 60, 10, seed=1, **dict(NEST, gamma=0.3))
    with pytest.raises(sl.NonFiniteLossError):
        sl.train(plain, None, x, labels=labels, epochs=2, lr=5e-3, optimizer="sgd",
                 batch_size=1, progress=False)
    nest = sl.EPropNetwork(x.n_in, 60, 10, seed=1, conventions="nest", **NEST)
    history = sl.train(nest, None, x, labels=labels, epochs=2, lr=5e-3, optimizer="sgd",
                       batch_size=1, progress=False)
    assert np.all(np.isfinite(history.train_loss))
    assert np.mean(nest.predict(x) == labels) > 0.5                  # chance: 0.1
    assert nest.record(x).spikes.mean() > 0                          # the layer still fires
