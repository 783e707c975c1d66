"""Ablation (silenced hidden units) and tuning curves (issue 4 item 9).

The ablation check runs an independent forward pass in NumPy that forces the silenced units'
spikes to 0 *inside* the dynamics (so their voltages, no longer reset, differ), and compares
the native model with zeroed rows of w2 against it. Inputs follow test_parity.py: weights on
a 1/64 grid, configurations redrawn until no hidden voltage lies within 2e-5 of threshold.
"""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import analysis
from spikeloc import reference as ref

TOLERANCE = 1e-4
THRESHOLD_MARGIN = 2e-5


def relative_error(native, reference):
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(np.max(np.abs(reference)), 1e-30)
    return float(np.max(np.abs(np.asarray(native, dtype=np.float64) - reference)) / scale)


def forward_with_silenced_spikes(x, w1, w2, dt, tau_h, tau_o, readout, silence):
    """MODEL.md section 2 with s_j forced to 0 at every step for the silenced units j."""
    x = x.astype(np.float64)
    B, T, _ = x.shape
    n_h = w1.shape[1]
    keep = np.ones(n_h)
    keep[list(silence)] = 0.0
    a_h, a_o = np.exp(-dt / tau_h), np.exp(-dt / tau_o)
    current = x @ w1.astype(np.float64)
    v = np.zeros((B, n_h))
    s = np.zeros((B, n_h))
    S = np.zeros((B, T, n_h))
    V = np.zeros((B, T, n_h))
    for n in range(T - 1):
        v_next = (a_h * v + current[:, n]) * (1.0 - s)
        s = (v - 1.0 > 0).astype(np.float64) * keep          # forced to 0 when silenced
        v = v_next
        S[:, n + 1], V[:, n + 1] = s, v
    u = ref.leaky_readout(S @ w2.astype(np.float64), a_o)
    return S, V, ref.aggregate(u, readout)


def draw_problem(seed):
    rng = np.random.default_rng(seed)
    B, T, n_in, n_h, C = 12, 30, 20, 10, 5
    dt, tau_h, tau_o = 1e-3, float(rng.uniform(5e-3, 30e-3)), float(rng.uniform(5e-3, 30e-3))
    readout = ["mean", "sum", "max"][seed % 3]
    silence = rng.choice(n_h, size=3, replace=False)
    for _ in range(200):
        x = (rng.random((B, T, n_in)) < 0.25).astype(np.uint8)
        w1 = (rng.integers(-20, 44, (n_in, n_h)) / 64).astype(np.float32)
        w2 = (rng.integers(-32, 33, (n_h, C)) / 64).astype(np.float32)
        out = ref.snn_forward(x, w1, w2, dt, tau_h, tau_o, readout=readout)
        _, V, logits = forward_with_silenced_spikes(x, w1, w2, dt, tau_h, tau_o, readout,
                                                    silence)
        d = np.abs(np.concatenate([out["hidden_v"], V]) - 1.0)
        if np.any((d > 0) & (d <= THRESHOLD_MARGIN)):
            continue
        top = np.sort(logits, axis=1)
        if np.any(top[:, -1] - top[:, -2] < 1e-3):       # unambiguous predictions
            continue
        net = sl.SNN(n_in, n_h, C, dt=dt, tau_hidden=tau_h, tau_output=tau_o, readout=readout)
        net.w1, net.w2 = w1, w2
        return net, x, silence, logits
    raise AssertionError("no unambiguous problem")


@pytest.mark.parametrize("seed", range(6))
def test_silenced_matches_forward_with_spikes_forced_to_zero(seed):
    net, x, silence, ref_logits = draw_problem(seed)
    w1_before, w2_before = net.w1.copy(), net.w2.copy()
    quiet = analysis.silenced(net, silence)
    out = quiet.forward(x)
    assert relative_error(out.logits, ref_logits) < TOLERANCE
    assert np.array_equal(quiet.predict(x), np.argmax(ref_logits, axis=1))
    # the silenced units did spike in the intact network: the test is not vacuous
    intact = net.forward(x)
    assert intact.hidden_spikes[:, :, silence].sum() > 0
    assert relative_error(intact.logits, ref_logits) > 1e-3
    # the other units' spikes are those of the intact network (units do not interact)
    others = np.setdiff1d(np.arange(net.n_hidden), silence)
    assert np.array_equal(out.hidden_spikes[:, :, others], intact.hidden_spikes[:, :, others])
    # the user's model is untouched, the copy is independent
    assert np.array_equal(net.w1, w1_before) and np.array_equal(net.w2, w2_before)
    assert quiet.w2 is not net.w2
    assert np.all(quiet.w2[silence] == 0)


def test_evaluate_with_silence():
    stim = sl.Stimulus(duration=0.03, anf_per_ear=10, phase_offset="per_sample")
    ipd, spikes = stim.generate(96, seed=3)
    net = sl.SNN.for_stimulus(stim, n_hidden=12, seed=1)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=32, progress=False)
    w2 = net.w2.copy()
    full = sl.evaluate(net, ipd, spikes, stim)
    same = sl.evaluate(net, ipd, spikes, stim, silence=[])
    assert np.array_equal(full.predicted, same.predicted)
    part = sl.evaluate(net, ipd, spikes, stim, silence=[0, 5, 5])
    expected = analysis.silenced(net, [0, 5]).predict(spikes)
    assert np.array_equal(part.predicted, expected)
    # everything silenced: the readout membrane stays 0, every logit is 0, argmax -> class 0
    none = sl.evaluate(net, ipd, spikes, stim, silence=range(12))
    assert np.all(none.predicted == 0)
    assert np.array_equal(net.w2, w2)
    with pytest.raises(ValueError, match="silence"):
        sl.evaluate(net, ipd, spikes, stim, silence=[12])
    with pytest.raises(TypeError, match="silence"):
        sl.evaluate(net, ipd, spikes, stim, silence=[0.5])
    mo = sl.MembraneOnly.for_stimulus(stim)
    with pytest.raises(TypeError, match="w2"):
        sl.evaluate(mo, ipd, spikes, stim, silence=[0])


def test_ablation_each_unit():
    stim = sl.Stimulus(duration=0.03, anf_per_ear=10, phase_offset="per_sample")
    ipd, spikes = stim.generate(96, seed=4)
    net = sl.SNN.for_stimulus(stim, n_hidden=8, seed=2)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=32, progress=False)
    abl = sl.ablation(net, ipd, spikes, stim)
    assert np.array_equal(abl.units, np.arange(8))
    assert abl.baseline == sl.evaluate(net, ipd, spikes, stim).accuracy
    for i, unit in enumerate(abl.units):
        ev = sl.evaluate(net, ipd, spikes, stim, silence=[unit])
        assert abl.accuracy[i] == ev.accuracy
        assert abl.mean_abs_error_deg[i] == ev.mean_abs_error_deg
    np.testing.assert_array_equal(abl.drop, abl.baseline - abl.accuracy)
    assert np.any(abl.drop != 0)
    top = abl.most_important(3)
    assert abl.drop[top[0]] == abl.drop.max()
    some = sl.ablation(net, ipd, spikes, stim, units=[6, 2])
    assert np.array_equal(some.units, [2, 6])
    np.testing.assert_array_equal(some.accuracy, abl.accuracy[[2, 6]])


def test_tuning_curves_against_manual_binning(monkeypatch):
    stim = sl.Stimulus(duration=0.04, anf_per_ear=10, phase_offset="per_sample")
    ipd, spikes = stim.generate(150, seed=6)
    net = sl.SNN.for_stimulus(stim, n_hidden=9, seed=3)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=50, progress=False)
    hidden = net.forward(spikes).hidden_spikes
    duration = stim.steps * stim.dt
    per_sample = hidden.sum(axis=1) / duration                     # Hz
    tc = sl.tuning_curves(net, ipd, spikes)
    assert tc.rates.shape == (9, 12) and tc.duration == pytest.approx(duration)
    classes = stim.labels(ipd)                                      # default bins: classes
    for c in range(12):
        members = classes == c
        assert tc.counts[c] == members.sum()
        if members.any():
            np.testing.assert_allclose(tc.rates[:, c], per_sample[members].mean(axis=0),
                                       rtol=1e-12)
        else:
            assert np.all(np.isnan(tc.rates[:, c]))
    np.testing.assert_allclose(tc.sample_rates, per_sample)
    for unit in range(9):
        if np.nanmax(tc.rates[unit]) > 0:
            assert tc.preferred_ipd[unit] == tc.bin_centres[np.nanargmax(tc.rates[unit])]
        else:
            assert np.isnan(tc.preferred_ipd[unit])
    order = tc.order()
    pref = tc.preferred_ipd[order]
    finite = pref[~np.isnan(pref)]
    assert np.all(np.diff(finite) >= 0)
    # chunked forward passes give the same result
    monkeypatch.setattr(analysis, "CHUNK", 7)
    tc7 = sl.tuning_curves(net, ipd, spikes)
    np.testing.assert_array_equal(tc7.sample_rates, tc.sample_rates)
    # explicit edges: samples outside are left out; the right edge is included
    edges = np.array([-0.5, 0.0, 0.5])
    tc2 = sl.tuning_curves(net, ipd, spikes, bins=edges)
    inside = (ipd >= -0.5) & (ipd <= 0.5)
    assert tc2.counts.sum() == inside.sum()
    tc3 = sl.tuning_curves(net, ipd, spikes, bins=4)
    np.testing.assert_allclose(tc3.bin_edges, np.linspace(-np.pi / 2, np.pi / 2, 5))


def test_tuning_curves_errors():
    stim = sl.Stimulus(duration=0.02, anf_per_ear=4)
    ipd, spikes = stim.generate(10, seed=0)
    net = sl.SNN.for_stimulus(stim, n_hidden=3)
    with pytest.raises(ValueError, match="bins"):
        sl.tuning_curves(net, ipd, spikes, bins=[0.3, 0.1])
    with pytest.raises(ValueError, match="bins"):
        sl.tuning_curves(net, ipd, spikes, bins=0)
    with pytest.raises(ValueError, match="samples"):
        sl.tuning_curves(net, ipd[:5], spikes)
    with pytest.raises(ValueError, match="ipd"):
        sl.tuning_curves(net, ipd.reshape(2, 5), spikes)


def test_tuning_curve_plot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stim = sl.Stimulus(duration=0.03, anf_per_ear=8, phase_offset="per_sample")
    ipd, spikes = stim.generate(60, seed=1)
    net = sl.SNN.for_stimulus(stim, n_hidden=6, seed=0)
    tc = sl.tuning_curves(net, ipd, spikes)
    fig = sl.plots.tuning_curves(tc, sort=True)
    assert np.array_equal(fig.order, tc.order())
    assert len(fig.axes[0].lines) == 6
    plt.close(fig)
    fig = sl.plots.tuning_curves(tc, sort=False, units=[4, 1], heatmap=False)
    assert list(fig.order) == [4, 1] and len(fig.axes) == 1
    plt.close(fig)
