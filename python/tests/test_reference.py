"""Tests of the NumPy reference implementation itself (no compiled extension needed).

Run: PYTHONPATH=python pytest python/tests/test_reference.py
"""

import json
import math
import os

import numpy as np
import pytest

from spikeloc import reference as ref
from spikeloc.reference import (fixtures, network, network_fixtures, optim, rng, stim,
                                variant_fixtures)

MASK = (1 << 64) - 1


def mix64_py(z: int) -> int:
    """Pure-Python SplitMix64 finaliser, independent of the NumPy implementation."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


# ---------------------------------------------------------------------------- rng

def test_splitmix64_known_answers():
    # SplitMix64 from state 0: state += GAMMA; out = mix64(state).
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    got = rng.word(0, np.arange(3))
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == expected
    state = 0
    for e in expected:
        state = (state + rng.GAMMA) & MASK
        assert mix64_py(state) == e


def test_constants():
    assert rng.WORD_IPD == 2**62
    assert rng.WORD_PHASE == 2**62 + 1
    assert rng.SET_INDEX == 2**63 - 1


def test_mix64_matches_python_ints():
    g = np.random.default_rng(0)
    zs = [0, 1, MASK, 2**63, 2**63 - 1] + [int(v) for v in g.integers(0, 2**63, 50)]
    got = rng.mix64(np.array(zs, dtype=np.uint64))
    assert [int(v) for v in got] == [mix64_py(z) for z in zs]


@pytest.mark.parametrize("seed,index", [(0, 0), (42, 7), (2**64 - 1, 2**63 - 1), (123, -1)])
def test_key_and_word_match_python_ints(seed, index):
    k = mix64_py(mix64_py(seed) ^ ((index * rng.GAMMA) & MASK))
    assert int(rng.key(seed, index)[0]) == k
    for w in (0, 1, 5, rng.WORD_IPD, rng.WORD_PHASE):
        assert int(rng.word(k, w)[0]) == mix64_py(k + (w + 1) * rng.GAMMA)


def test_stimulus_uniforms_bits():
    seed, index, n = 99, 3, 11
    k = mix64_py(mix64_py(seed) ^ ((index * rng.GAMMA) & MASK))
    expected = []
    for e in range(n):
        wd = mix64_py(k + (e // 2 + 1) * rng.GAMMA)
        m = (wd >> 40) if e % 2 == 0 else ((wd >> 8) & 0xFFFFFF)
        expected.append(m / 2**24)
    np.testing.assert_array_equal(rng.stimulus_uniforms(seed, index, n), expected)
    # several streams at once give the same rows
    both = rng.stimulus_uniforms(seed, np.array([index, index + 1]), n)
    np.testing.assert_array_equal(both[0], expected)
    np.testing.assert_array_equal(both[1], rng.stimulus_uniforms(seed, index + 1, n))


def test_uniform53_bits():
    seed, first, w, n = 5, 10, rng.WORD_PHASE, 4
    out = rng.uniform53(seed, first, w, n)
    for b in range(n):
        k = mix64_py(mix64_py(seed) ^ (((first + b) * rng.GAMMA) & MASK))
        assert out[b] == (mix64_py(k + (w + 1) * rng.GAMMA) >> 11) / 2**53
    # the per-set draw uses stream INT64_MAX
    assert stim.draw_phase_per_set(seed) == rng.uniform53(seed, rng.SET_INDEX, w, 1)[0]


def test_uniforms_range_and_moments():
    u = rng.stimulus_uniforms(2024, 0, 200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert np.all(u * 2**24 == np.floor(u * 2**24))       # multiples of 2^-24
    assert np.all(u.astype(np.float32) == u)               # exact in float32
    sigma = math.sqrt(1 / 12 / u.size)
    assert abs(u.mean() - 0.5) < 5 * sigma
    assert abs(u.var() - 1 / 12) < 0.002
    # neighbouring elements (the two halves of one word) are uncorrelated
    assert abs(np.corrcoef(u[0::2], u[1::2])[0, 1]) < 5 / math.sqrt(u.size / 2)
    v = rng.uniform53(7, 0, rng.WORD_IPD, 100_000)
    assert v.min() >= 0.0 and v.max() < 1.0
    assert abs(v.mean() - 0.5) < 5 * math.sqrt(1 / 12 / v.size)


def test_streams_are_independent_of_batching():
    a = rng.uniform53(11, 0, rng.WORD_IPD, 10)
    b = rng.uniform53(11, 4, rng.WORD_IPD, 3)
    np.testing.assert_array_equal(a[4:7], b)


# ---------------------------------------------------------------------------- stimulus

def test_default_params_are_the_tutorial():
    p = stim.StimulusParams()
    assert (p.dt, p.steps, p.freq, p.anf_per_ear, p.rate_max, p.envelope_power) == \
        (1e-3, 100, 20.0, 100, 600.0, 2.0)
    assert not p.null_phase_delays and p.n_in == 200
    assert stim.StimulusParams.from_duration(0.1, 1e-4).steps == 1000
    assert stim.NUM_CLASSES == 12


def test_phase_delays():
    np.testing.assert_allclose(stim.phase_delays(5), np.linspace(0, np.pi / 2, 5))
    assert stim.phase_delays(5)[-1] == np.pi / 2
    np.testing.assert_array_equal(stim.phase_delays(5, null=True), np.zeros(5))


def test_spike_probability_formula():
    params = stim.StimulusParams(steps=7, anf_per_ear=3, envelope_power=3.0)
    ipd = np.array([0.3, -1.2])
    phase = np.array([0.25, 0.7])
    p = stim.spike_probability(ipd, phase, params)
    assert p.shape == (2, 7, 6)
    psi = np.linspace(0, np.pi / 2, 3)
    for b in range(2):
        for n in range(7):
            for j in range(6):
                theta = 2 * np.pi * (params.freq * n * params.dt + phase[b]) + psi[j % 3]
                if j >= 3:
                    theta += ipd[b]
                expect = params.rate_max * params.dt * ((1 + np.sin(theta)) / 2) ** 3
                assert p[b, n, j] == pytest.approx(expect, rel=1e-12, abs=1e-15)
    assert p.min() >= 0 and p.max() <= params.rate_max * params.dt * (1 + 1e-12)


def test_envelope_power_zero_gives_constant_rate():
    params = stim.StimulusParams(steps=10, anf_per_ear=4, envelope_power=0.0)
    # phase 0.75 cycles makes sin theta = -1 exactly-ish at n = 0, psi = 0: 0^0 = 1
    p = stim.spike_probability([0.0], [0.75], params)
    np.testing.assert_allclose(p, params.rate_max * params.dt)


def test_null_phase_delays_and_zero_ipd_make_ears_identical():
    params = stim.StimulusParams(steps=20, anf_per_ear=5, null_phase_delays=True)
    spikes, U, p = stim.stimulus([0.0, 0.0], [0.1, 0.6], params, seed=3)
    np.testing.assert_array_equal(p[:, :, :5], p[:, :, 5:])
    np.testing.assert_array_equal(p[:, :, 0:1] * np.ones(5), p[:, :, :5])


def test_stimulus_uses_sample_streams():
    params = stim.StimulusParams(steps=10, anf_per_ear=4)
    ipd = stim.draw_ipd(3, 8, first_index=5)
    phase = stim.draw_phase_per_sample(3, 8, first_index=5)
    spikes, U, p = stim.stimulus(ipd, phase, params, seed=8, first_index=5)
    assert spikes.dtype == np.uint8 and spikes.shape == (3, 10, 8)
    np.testing.assert_array_equal(spikes, (U < p).astype(np.uint8))
    np.testing.assert_array_equal(U[1].ravel(), rng.stimulus_uniforms(8, 6, 80))
    # sample 6 alone gives the same spikes as inside the batch
    s1, _, _ = stim.stimulus(ipd[1:2], phase[1:2], params, seed=8, first_index=6)
    np.testing.assert_array_equal(s1[0], spikes[1])


def test_draws_ranges():
    ipd = stim.draw_ipd(10_000, 1)
    assert ipd.min() >= -np.pi / 2 and ipd.max() < np.pi / 2
    ph = stim.draw_phase_per_sample(10_000, 1)
    assert ph.min() >= 0 and ph.max() < 1
    assert not np.array_equal(ipd, -np.pi / 2 + np.pi * ph)   # different words
    assert 0 <= stim.draw_phase_per_set(1) < 1


@pytest.mark.parametrize("k,exact", [(0, 1.0), (1, 0.5), (2, 3 / 8), (3, 5 / 16)])
def test_envelope_mean_integer(k, exact):
    assert stim.envelope_mean(k) == pytest.approx(exact, rel=1e-15)


@pytest.mark.parametrize("k", [0.5, 1.5, 2.0, 2.7, 4.0])
def test_envelope_mean_quadrature(k):
    theta = np.linspace(0, 2 * np.pi, 200_001)[:-1]
    quad = np.mean(((1 + np.sin(theta)) / 2) ** k)
    assert stim.envelope_mean(k) == pytest.approx(quad, rel=1e-9)


def test_mean_probability_over_whole_cycles_is_analytic():
    params = stim.StimulusParams()   # T f dt = 2 whole cycles, 50 steps per cycle
    ipd = stim.draw_ipd(6, 4)
    phase = stim.draw_phase_per_sample(6, 4)
    p = stim.spike_probability(ipd, phase, params)
    np.testing.assert_allclose(p.mean(axis=1), stim.expected_rate(params), rtol=1e-12)
    assert stim.expected_rate(params) == pytest.approx(0.6 * 3 / 8)


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_firing_statistics(k):
    params = stim.StimulusParams(envelope_power=k, anf_per_ear=50)
    B = 64
    ipd = stim.draw_ipd(B, 17)
    phase = stim.draw_phase_per_sample(B, 17)
    spikes, U, p = stim.stimulus(ipd, phase, params, seed=17)
    n = spikes.size
    # Given p, the count is a sum of independent Bernoullis; over whole cycles the expected
    # count is exactly n * rate, and its variance is at most that of Binomial(n, rate).
    rate = stim.expected_rate(params)
    assert abs(spikes.sum() - n * rate) < 5 * math.sqrt(n * rate * (1 - rate))
    assert abs(spikes.sum() - p.sum()) < 5 * math.sqrt((p * (1 - p)).sum())
    # and spikes follow the envelope: mean spike indicator where p is large vs small
    assert spikes[p > 0.5 * p.max()].mean() > spikes[p < 0.1 * p.max()].mean()


def test_labels_edges():
    C = 12
    eps = 1e-12
    assert stim.labels(-np.pi / 2, C) == 0
    assert stim.labels(np.nextafter(np.pi / 2, 0), C) == C - 1
    assert stim.labels(np.pi / 2, C) == C - 1            # clamped
    assert stim.labels(-np.pi, C) == 0 and stim.labels(np.pi, C) == C - 1
    edges = -np.pi / 2 + np.arange(C) * np.pi / C
    np.testing.assert_array_equal(stim.labels(edges + eps, C), np.arange(C))
    np.testing.assert_array_equal(stim.labels(edges[1:] - eps, C), np.arange(C - 1))
    assert stim.labels(np.array([0.0]), C).dtype == np.int64


def test_midpoints_roundtrip():
    C = 12
    mids = stim.midpoints(np.arange(C), C)
    np.testing.assert_allclose(mids, -np.pi / 2 + (np.arange(C) + 0.5) * np.pi / C)
    np.testing.assert_array_equal(stim.labels(mids, C), np.arange(C))
    assert mids[0] == pytest.approx(-np.pi / 2 + np.pi / 24)
    assert stim.abs_error_deg(mids, np.arange(C), C) == pytest.approx(np.zeros(C), abs=1e-12)
    assert stim.abs_error_deg(-np.pi / 2, 0, C) == pytest.approx(7.5)


# ---------------------------------------------------------------------------- network

def _loss_fd(f, w, h=1e-6):
    """Central finite differences of the scalar function f at w."""
    g = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        wp = w.copy()
        wp[idx] += h
        wm = w.copy()
        wm[idx] -= h
        g[idx] = (f(wp) - f(wm)) / (2 * h)
    return g


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def _small_problem(seed, B=3, T=14, N_in=6, N_h=5, C=4, scale=1.5):
    g = np.random.default_rng(seed)
    x = (g.random((B, T, N_in)) < 0.35).astype(np.uint8)
    y = g.integers(0, C, B)
    w1 = g.normal(0, scale, (N_in, N_h))
    w2 = g.normal(0, 1.0, (N_h, C))
    return x, y, w1, w2


def test_sigmoid_and_surrogate_stable():
    x = np.array([-1e6, -800.0, -50.0, 0.0, 50.0, 800.0, 1e6, np.inf, -np.inf])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = network.sigmoid(x)
        d = network.surrogate(x, beta=5.0)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(d))
    assert s[0] == 0.0 and s[3] == 0.5 and s[-3] == 1.0
    assert d[3] == pytest.approx(5.0 / 4) and d[0] == 0.0 and d[6] == 0.0
    xs = np.linspace(-3, 3, 13)
    sig = 1 / (1 + np.exp(-5 * xs))
    # (the naive product loses digits to cancellation in 1 - sig for large x)
    np.testing.assert_allclose(network.surrogate(xs, 5.0), 5 * sig * (1 - sig), rtol=1e-8)


def test_log_softmax_stable():
    m = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    lp = network.log_softmax(m)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0)
    np.testing.assert_allclose(lp[1], np.log(np.exp(m[1]) / np.exp(m[1]).sum()))


def test_snn_forward_recursion_by_hand():
    x, y, w1, w2 = _small_problem(0)
    dt, th, to = 1e-3, 10e-3, 20e-3
    out = network.snn_forward(x, w1, w2, dt, th, to, "mean")
    S, V, U = out["hidden_spikes"], out["hidden_v"], out["output_membrane"]
    B, T, _ = x.shape
    a, ao = np.exp(-dt / th), np.exp(-dt / to)
    assert np.all(S[:, 0] == 0) and np.all(V[:, 0] == 0) and np.all(U[:, 0] == 0)
    assert set(np.unique(S)) <= {0.0, 1.0} and 0 < S.mean() < 1
    for b in range(B):
        v = np.zeros(w1.shape[1])
        s = np.zeros(w1.shape[1])
        u = np.zeros(w2.shape[1])
        for n in range(T - 1):
            v_new = (a * v + x[b, n] @ w1) * (1 - s)
            u = ao * u + s @ w2
            s = (v - 1 > 0).astype(float)
            v = v_new
            np.testing.assert_allclose(V[b, n + 1], v, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(S[b, n + 1], s)
            np.testing.assert_allclose(U[b, n + 1], u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["logits"], U.mean(axis=1))
    np.testing.assert_allclose(network.snn_forward(x, w1, w2, dt, th, to, "sum")["logits"],
                               0.01 * U.sum(axis=1))
    np.testing.assert_allclose(network.snn_forward(x, w1, w2, dt, th, to, "max")["logits"],
                               U.max(axis=1))


@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_snn_gradient_sigmoid_spikes_matches_finite_differences(readout):
    x, y, w1, w2 = _small_problem(1)
    args = dict(dt=1e-3, tau_h=5e-3, tau_o=8e-3, readout=readout, beta=2.0, spike_fn="sigmoid")
    loss, g1, g2, _ = network.snn_loss_and_grad(x, y, w1, w2, **args)
    fd1 = _loss_fd(lambda w: network.snn_loss_and_grad(x, y, w, w2, **args)[0], w1)
    fd2 = _loss_fd(lambda w: network.snn_loss_and_grad(x, y, w1, w, **args)[0], w2)
    assert _rel_err(g1, fd1) < 1e-5
    assert _rel_err(g2, fd2) < 1e-5
    assert np.max(np.abs(g1)) > 1e-4   # the test is not vacuous


@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_snn_w2_gradient_is_exact_for_heaviside(readout):
    # For fixed spikes the loss is smooth in W2 (spikes do not depend on W2).
    x, y, w1, w2 = _small_problem(2)
    args = dict(dt=1e-3, tau_h=10e-3, tau_o=10e-3, readout=readout)
    _, _, g2, ex = network.snn_loss_and_grad(x, y, w1, w2, **args)
    assert 0 < ex["hidden_spikes"].mean() < 1
    fd2 = _loss_fd(lambda w: network.snn_loss_and_grad(x, y, w1, w, **args)[0], w2)
    assert _rel_err(g2, fd2) < 1e-5


def test_snn_heaviside_gradient_uses_surrogate():
    x, y, w1, w2 = _small_problem(3)
    args = dict(dt=1e-3, tau_h=10e-3, tau_o=10e-3, readout="mean")
    loss, g1, g2, ex = network.snn_loss_and_grad(x, y, w1, w2, beta=5.0, **args)
    assert np.all(np.isfinite(g1)) and np.max(np.abs(g1)) > 0
    # forward (and so the loss and dW2) does not depend on beta; dW1 does
    loss2, g1b, g2b, _ = network.snn_loss_and_grad(x, y, w1, w2, beta=1.0, **args)
    assert loss == loss2
    np.testing.assert_array_equal(g2, g2b)
    assert not np.allclose(g1, g1b)


def test_snn_w2_gradient_by_hand():
    # One sample, two hidden units, four steps, "sum" readout written out by hand.
    T = 4
    x = np.zeros((1, T, 1))
    x[0, :, 0] = [1, 1, 0, 1]
    w1 = np.array([[1.3, 0.4]])
    w2 = np.array([[0.7, -0.2], [0.1, 0.5]])
    y = np.array([1])
    dt, tau, beta = 1e-3, 5e-3, 5.0
    a = np.exp(-dt / tau)
    loss, g1, g2, ex = network.snn_loss_and_grad(x, y, w1, w2, dt, tau, tau, "sum", beta)
    dm = ex["dlogits"][0]
    S = ex["hidden_spikes"][0]
    assert S.sum() > 0
    # u_1 = J_0, u_2 = a u_1 + J_1, u_3 = a u_2 + J_2 -> d(sum u)/dJ_n = sum_{k>n} a^(k-n-1)
    coef = np.array([1 + a + a**2, 1 + a, 1.0, 0.0])
    g2_manual = 0.01 * np.einsum("n,nk,c->kc", coef, S, dm)
    np.testing.assert_allclose(g2, g2_manual, rtol=1e-12, atol=1e-15)


def _snn_jvp(x, y, w1, w2, d1, d2, dt, tau_h, tau_o, readout, beta):
    """Forward-mode directional derivative of the loss along (d1, d2), with H' replaced by the
    surrogate: an implementation independent of the reverse loop (its transpose)."""
    x = x.astype(float)
    B, T, _ = x.shape
    a, ao = np.exp(-dt / tau_h), np.exp(-dt / tau_o)
    I, dI = x @ w1, x @ d1
    v = np.zeros((B, w1.shape[1]))
    s, dv, ds = np.zeros_like(v), np.zeros_like(v), np.zeros_like(v)
    u = np.zeros((B, w2.shape[1]))
    du = np.zeros_like(u)
    us, dus = [u], [du]
    for n in range(T - 1):
        P, dP = a * v + I[:, n], a * dv + dI[:, n]
        u, du = ao * u + s @ w2, ao * du + ds @ w2 + s @ d2
        v_new, dv_new = P * (1 - s), dP * (1 - s) - P * ds
        s, ds = (v - 1 > 0).astype(float), network.surrogate(v - 1, beta) * dv
        v, dv = v_new, dv_new
        us.append(u)
        dus.append(du)
    U, dU = np.stack(us, 1), np.stack(dus, 1)
    m = network.aggregate(U, readout)
    if readout == "max":
        first = np.argmax(U, axis=1)
        dmj = np.take_along_axis(dU, first[:, None, :], axis=1)[:, 0]
    else:
        dmj = network.aggregate(dU, readout)
    _, dm = network.cross_entropy(m, y)
    return float(np.sum(dm * dmj))


@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_snn_heaviside_gradient_matches_surrogate_jvp(readout):
    x, y, w1, w2 = _small_problem(7, T=20)
    args = (1e-3, 6e-3, 9e-3, readout, 5.0)
    _, g1, g2, ex = network.snn_loss_and_grad(x, y, w1, w2, *args)
    assert 0.05 < ex["hidden_spikes"].mean() < 0.6 and np.abs(g1).max() > 1e-6
    g = np.random.default_rng(8)
    for _ in range(3):
        d1, d2 = g.normal(size=w1.shape), g.normal(size=w2.shape)
        jvp = _snn_jvp(x, y, w1, w2, d1, d2, *args)
        assert np.sum(g1 * d1) + np.sum(g2 * d2) == pytest.approx(jvp, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_membrane_only_gradient(readout):
    g = np.random.default_rng(4)
    x = (g.random((4, 12, 7)) < 0.3).astype(np.uint8)
    y = g.integers(0, 3, 4)
    w = g.normal(0, 1, (7, 3))
    loss, gw, ex = network.membrane_only_loss_and_grad(x, y, w, 1e-3, 5e-3, readout)
    fd = _loss_fd(lambda v: network.membrane_only_loss_and_grad(x, y, v, 1e-3, 5e-3,
                                                                readout)[0], w)
    assert _rel_err(gw, fd) < 1e-5
    U = ex["output_membrane"]
    a = np.exp(-1e-3 / 5e-3)
    J = x @ w
    np.testing.assert_allclose(U[:, 1], J[:, 0])
    np.testing.assert_allclose(U[:, 2], a * J[:, 0] + J[:, 1])


def test_membrane_only_training_reduces_loss():
    # End-to-end smoke test: tutorial stimulus, init, Adam on one fixed batch.
    params = stim.StimulusParams(anf_per_ear=20)
    ipd = stim.draw_ipd(32, 1)
    x, _, _ = stim.stimulus(ipd, stim.draw_phase_per_sample(32, 1), params, seed=1)
    y = stim.labels(ipd)
    w = network.init_weights(params.n_in, 12, np.random.default_rng(0))
    m, v = np.zeros_like(w), np.zeros_like(w)
    losses = []
    for t in range(1, 31):
        loss, gw, _ = network.membrane_only_loss_and_grad(x, y, w, 1e-3, 20e-3)
        losses.append(loss)
        w, m, v = optim.adam_step(w, gw, m, v, 0.01, 0.9, 0.999, 1e-8, t)
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]


def test_init_weights_bounds():
    w = network.init_weights(64, 10, np.random.default_rng(0))
    assert w.shape == (64, 10) and np.abs(w).max() <= 1 / 8
    assert np.abs(w).max() > 0.9 / 8


def test_cross_entropy_gradient():
    g = np.random.default_rng(5)
    m = g.normal(0, 2, (4, 5))
    y = np.array([0, 4, 2, 2])
    loss, dm = network.cross_entropy(m, y)
    fd = _loss_fd(lambda v: network.cross_entropy(v, y)[0], m)
    assert _rel_err(dm, fd) < 1e-6
    assert loss == pytest.approx(-np.mean(network.log_softmax(m)[np.arange(4), y]))


def test_max_readout_first_index():
    u = np.zeros((1, 4, 1))
    u[0, :, 0] = [0.0, 2.0, 1.0, 2.0]
    du = network.aggregate_backward(u, np.array([[3.0]]), "max")
    np.testing.assert_array_equal(du[0, :, 0], [0, 3.0, 0, 0])


def test_bad_options_raise():
    x, y, w1, w2 = _small_problem(6)
    with pytest.raises(ValueError):
        network.snn_forward(x, w1, w2, 1e-3, 1e-2, 1e-2, readout="median")
    with pytest.raises(ValueError):
        network.snn_forward(x, w1, w2, 1e-3, 1e-2, 1e-2, spike_fn="relu")


# ---------------------------------------------------------------------------- optimisers

def test_adam_first_step():
    w = np.array([1.0, -2.0, 0.5, 0.0])
    g = np.array([0.3, -4.0, 1e-3, 0.0])
    lr = 0.01
    w1, m, v = optim.adam_step(w, g, np.zeros(4), np.zeros(4), lr, 0.9, 0.999, 1e-8, t=1)
    # hand computation: m = 0.1 g, v = 0.001 g^2, mhat = g, sqrt(vhat) = |g|
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g * g)
    expected = w - lr * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(w1, expected, rtol=1e-12)
    np.testing.assert_allclose((w - w1)[:3], lr * np.sign(g[:3]), rtol=1e-4)
    assert w1[3] == 0.0
    assert w[0] == 1.0   # inputs untouched


def test_adam_matches_closed_form_for_constant_gradient():
    # With a constant gradient, mhat = g and vhat = g^2 at every step: each step is lr sign(g).
    w0 = np.array([0.0, 1.0])
    grads = np.tile([0.5, -2.0], (10, 1))
    traj = optim.adam_trajectory(w0, grads, lr=0.01)
    steps = np.arange(1, 11)[:, None]
    np.testing.assert_allclose(traj, w0 - 0.01 * steps * np.sign(grads[0]), rtol=1e-6)


def test_adam_second_step_by_hand():
    b1, b2, lr, eps = 0.9, 0.999, 0.1, 1e-8
    g1, g2 = 1.0, -0.5
    w, m, v = optim.adam_step(np.array([0.0]), np.array([g1]), np.zeros(1), np.zeros(1),
                              lr, b1, b2, eps, 1)
    w, m, v = optim.adam_step(w, np.array([g2]), m, v, lr, b1, b2, eps, 2)
    m_ = (1 - b1) * (b1 * g1 + g2)
    v_ = (1 - b2) * (b2 * g1**2 + g2**2)
    step2 = (lr / (1 - b1**2)) * m_ / (math.sqrt(v_) / math.sqrt(1 - b2**2) + eps)
    assert w[0] == pytest.approx(-lr * g1 / (abs(g1) + eps) - step2, rel=1e-12)
    with pytest.raises(ValueError):
        optim.adam_step(w, w, m, v, t=0)


def test_sgd_step():
    np.testing.assert_allclose(optim.sgd_step([1.0, 2.0], [0.5, -1.0], 0.1), [0.95, 2.1])


# ---------------------------------------------------------------------------- fixtures

def test_fixtures_generate_deterministically(tmp_path):
    names = fixtures.generate(str(tmp_path / "a"))
    fixtures.generate(str(tmp_path / "b"))
    assert set(names) == {"rng", "stimulus_tutorial", "stimulus_250hz", "snn_mean", "snn_sum",
                          "snn_max", "mo_sum", "mo_mean", "adam", "sgd", "stimulus_noise",
                          "eprop_ce", "eprop_mse", *variant_fixtures.CASES,
                          *network_fixtures.CASES}
    total = 0
    allowed = {np.dtype("<f8"), np.dtype("<f4"), np.dtype("<i8"), np.dtype("u1")}
    for name in names:
        da, db = tmp_path / "a" / name, tmp_path / "b" / name
        params = json.loads((da / "params.json").read_text())
        assert all(isinstance(v, (int, float, str, bool)) or (  # layer sizes and flags
            isinstance(v, list) and all(isinstance(e, (int, bool)) for e in v))
            for v in params.values())
        for f in sorted(os.listdir(da)):
            assert (da / f).read_bytes() == (db / f).read_bytes()
            total += (da / f).stat().st_size
            if f.endswith(".npy"):
                arr = np.load(da / f, allow_pickle=False)
                assert arr.dtype in allowed and arr.flags.c_contiguous
    assert (tmp_path / "a" / "README.md").exists()
    assert total < 2_000_000


def test_snn_fixture_properties(tmp_path):
    fixtures.generate(str(tmp_path))
    for readout in ("mean", "sum", "max"):
        d = tmp_path / f"snn_{readout}"
        p = json.loads((d / "params.json").read_text())
        w1 = np.load(d / "w1.npy")
        w2 = np.load(d / "w2.npy")
        assert w1.dtype == np.float32 and np.all(w1 * 64 == np.round(w1 * 64))
        assert np.all(w2 * 64 == np.round(w2 * 64))
        v = np.load(d / "hidden_v.npy")
        assert np.min(np.abs(v - 1.0)) > 1e-3
        s = np.load(d / "hidden_spikes.npy")
        assert 0.05 <= s.mean() <= 0.40
        x = np.load(d / "x.npy")
        loss, g1, g2, ex = ref.snn_loss_and_grad(
            x, np.load(d / "labels.npy"), w1, w2, p["dt"], p["tau_hidden"], p["tau_output"],
            p["readout"], p["beta"])
        assert loss == p["loss"]
        np.testing.assert_array_equal(g1, np.load(d / "grad_w1.npy"))
        np.testing.assert_array_equal(ex["logits"], np.load(d / "logits.npy"))


def test_stimulus_fixture_consistent(tmp_path):
    fixtures.generate(str(tmp_path))
    for name in ("stimulus_tutorial", "stimulus_250hz"):
        d = tmp_path / name
        p = json.loads((d / "params.json").read_text())
        params = stim.StimulusParams(p["dt"], p["steps"], p["freq"], p["anf_per_ear"],
                                     p["rate_max"], p["envelope_power"], p["null_phase_delays"])
        spikes, U, prob = stim.stimulus(np.load(d / "ipd.npy"), np.load(d / "phase.npy"),
                                        params, p["seed"], p["first_index"])
        np.testing.assert_array_equal(spikes, np.load(d / "spikes.npy"))
        assert np.min(np.abs(U - prob)) >= 1e-6
