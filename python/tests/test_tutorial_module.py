"""spikeloc.tutorial: the seed notebook's functions on NumPy arrays, backed by the kernels."""

import math

import numpy as np
import pytest

import spikeloc as sl
import spikeloc.tutorial as tut
from spikeloc import reference as ref

THRESHOLD_MARGIN = 2e-5


@pytest.fixture(autouse=True)
def _restore_module_state(monkeypatch):
    """Every test leaves the module's parameters and seed counter as it found them."""
    for name in ("dt", "anf_per_ear", "envelope_power", "rate_max", "f", "duration",
                 "duration_steps", "input_size", "num_classes", "batch_size", "num_hidden",
                 "phase_offset", "nb_epochs", "lr", "beta", "_seed_base", "_seed_counter"):
        monkeypatch.setattr(tut, name, getattr(tut, name))


@pytest.fixture
def small(monkeypatch):
    """Small tutorial parameters: 20 steps, 2 x 8 fibres, 4 classes, 5 hidden, batches of 8."""
    for name, value in dict(anf_per_ear=8, input_size=16, duration=0.02, duration_steps=20,
                            num_classes=4, num_hidden=5, batch_size=8).items():
        monkeypatch.setattr(tut, name, value)
    tut.set_seed(2024)


def relative_error(native, reference):
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(np.max(np.abs(reference)), 1e-30)
    return float(np.max(np.abs(np.asarray(native, dtype=np.float64) - reference)) / scale)


# ---- parameters ---------------------------------------------------------------------------------
def test_module_parameters_are_the_seeds():
    assert (tut.second, tut.ms, tut.Hz) == (1, 1e-3, 1)
    assert tut.dt == 1e-3 and tut.anf_per_ear == 100 and tut.envelope_power == 2
    assert tut.rate_max == 600 and tut.f == 20 and tut.duration == pytest.approx(0.1)
    assert tut.duration_steps == 100 and tut.input_size == 200 and tut.num_classes == 12
    assert (tut.batch_size, tut.n_training_batches, tut.n_testing_batches) == (64, 64, 32)
    assert tut.num_samples == 4096 and tut.num_hidden == 100 and tut.beta == 5
    assert tut.nb_epochs == 10 and tut.lr == 0.01
    assert tut.phase_offset == 0.0                  # seed 002 comments its random offset out
    assert tut.current_stimulus() == sl.Stimulus.tutorial(phase_offset=0.0)
    assert tut.current_stimulus(envelope_power=5).envelope_power == 5.0
    assert "Mapping, seed function" in tut.__doc__
    for name in ("input_signal", "random_ipd_input_signal", "discretise", "continuise",
                 "init_weight_matrix", "init_weight_matrices", "membrane_only", "snn",
                 "data_generator", "test_accuracy", "analyse"):
        assert name in tut.__all__ and f"``{name}(" in tut.__doc__


# ---- stimulus ------------------------------------------------------------------------------------
def test_input_signal_shapes_and_kernel_backing(small):
    ipd = np.array([-1.5, -0.3, 0.0, 0.7, 1.5])
    tut.set_seed(11)
    spikes, theta = tut.input_signal(ipd)
    assert spikes.dtype == np.bool_ and spikes.shape == (5, 20, 16)
    assert theta.shape == (5, 20, 16) and len(theta) == 5 and theta.dtype == np.float64
    # The spikes are those of spikeloc.Stimulus with the counter's first seed ...
    tut.set_seed(11)
    seed = tut._next_seed()
    stim = tut.current_stimulus()
    np.testing.assert_array_equal(spikes.view(np.uint8), stim.spikes_for(ipd, seed=seed))
    # ... and of the NumPy reference, draw for draw.
    params = ref.stim.StimulusParams(dt=1e-3, steps=20, freq=20.0, anf_per_ear=8,
                                     rate_max=600.0, envelope_power=2.0)
    ref_spikes, _, p = ref.stim.stimulus(ipd, 0.0, params, seed)
    np.testing.assert_array_equal(spikes.view(np.uint8), ref_spikes)
    # theta gives the reference spike probability: rate_max dt ((1 + sin theta) / 2)^k.
    th = np.asarray(theta)
    assert th.shape == (5, 20, 16) and th.dtype == np.float64
    np.testing.assert_allclose(600 * 1e-3 * (0.5 * (1 + np.sin(th))) ** 2, p, atol=1e-12)
    # Seed formula: ear 0 = 2 pi f t + psi_j, ear 1 adds the IPD.
    t = np.arange(20) * 1e-3
    psi = np.linspace(0, np.pi / 2, 8)
    np.testing.assert_allclose(
        th[:, :, :8], np.broadcast_to((2 * np.pi * 20 * t)[None, :, None] + psi, (5, 20, 8)),
        atol=1e-12)
    np.testing.assert_allclose(th[:, :, 8:] - th[:, :, :8], np.broadcast_to(
        ipd[:, None, None], (5, 20, 8)), atol=1e-12)


def test_theta_lazy_indexing_matches_full_array(small):
    _, _, theta = tut.random_ipd_input_signal(6)
    full = np.asarray(theta)
    keys = [1, -1, (2, slice(None), 0), (3, 4), (-2, Ellipsis, 9), slice(1, 4),
            (slice(None, None, 2), 5), (slice(0, 3), slice(None), [0, 15]), Ellipsis,
            (Ellipsis, 0), [0, 2], np.array([True, False, True, False, False, True]),
            np.int64(4)]
    for key in keys:
        np.testing.assert_array_equal(theta[key], full[key], err_msg=repr(key))
    with pytest.raises(IndexError):
        theta[6]
    assert "Theta(shape=(6, 20, 16)" in repr(theta)
    assert np.asarray(theta, dtype=np.float32).dtype == np.float32
    np.testing.assert_allclose(np.sin(theta), np.sin(full))


def test_random_ipd_input_signal(small):
    ipd, spikes, theta = tut.random_ipd_input_signal(50)
    assert ipd.shape == (50,) and ipd.dtype == np.float64
    assert np.all(ipd >= -np.pi / 2) and np.all(ipd < np.pi / 2)
    assert spikes.shape == (50, 20, 16) and spikes.dtype == np.bool_
    assert 0.05 < spikes.mean() < 0.5
    assert theta.shape == (50, 20, 16)
    np.testing.assert_allclose(theta[:, 0, 8] - theta[:, 0, 0], ipd, atol=1e-12)
    ipd_t, spikes_t, _ = tut.random_ipd_input_signal(7, tensor=True)
    assert ipd_t.dtype == np.float32 and spikes_t.dtype == np.float32
    assert spikes_t.shape == (7, 20, 16) and set(np.unique(spikes_t)) <= {0.0, 1.0}
    assert tut.random_ipd_input_signal(0)[1].shape == (0, 20, 16)


def test_envelope_power_is_passed_on(small):
    tut.set_seed(3)
    ipd0, flat, _ = tut.random_ipd_input_signal(40, envelope_power=0)
    tut.set_seed(3)
    ipd10, sharp, _ = tut.random_ipd_input_signal(40, envelope_power=10)
    np.testing.assert_array_equal(ipd0, ipd10)     # same draw, other envelope
    assert abs(flat.mean() - 0.6) < 0.03           # k = 0: p = rate_max dt = 0.6 throughout
    assert sharp.mean() < flat.mean() / 2
    tut.envelope_power = 0                          # the module value is read at call time
    tut.set_seed(3)
    np.testing.assert_array_equal(tut.random_ipd_input_signal(40)[1], flat)


def test_phase_offset_modes(small):
    tut.set_seed(5)
    _, _, theta0 = tut.random_ipd_input_signal(3)
    assert np.all(np.asarray(theta0)[:, 0, 0] == 0.0)      # no offset: theta starts at psi_0
    tut.phase_offset = "per_sample"
    _, _, theta1 = tut.random_ipd_input_signal(3)
    starts = np.asarray(theta1)[:, 0, 0]
    assert len(set(starts)) == 3 and np.all((starts >= 0) & (starts < 2 * np.pi))


def test_repeated_calls_fresh_and_set_seed_reproducible(small):
    def draw():
        ipd, spikes, _ = tut.random_ipd_input_signal(16)
        s2, _ = tut.input_signal(ipd)
        W = tut.init_weight_matrix()
        W1, W2 = tut.init_weight_matrices()
        batches = [b for _, b in tut.data_generator(ipd, spikes)]
        return [ipd, spikes, s2, W, W1, W2, *batches]

    tut.set_seed(7)
    first = draw()
    second = draw()                                 # the stream goes on: fresh values
    for a, b in zip(first, second):
        assert not np.array_equal(a, b)
    tut.set_seed(7)
    again = draw()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    tut.set_seed(8)
    assert not np.array_equal(draw()[0], first[0])
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            tut.set_seed(bad)


# ---- classes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("C", [12, 4, 7])
def test_discretise_continuise_follow_model_md(monkeypatch, C):
    monkeypatch.setattr(tut, "num_classes", C)
    rng = np.random.default_rng(C)
    alpha = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, 500),
                            [-np.pi / 2, 0.0, np.pi / 2 - 1e-12, np.pi / 2, -np.pi / 2 - 1e-9,
                             np.pi]])
    c = tut.discretise(alpha)
    assert c.dtype == np.int64 and c.shape == alpha.shape
    expected = np.clip(np.floor((alpha + np.pi / 2) * C / np.pi), 0, C - 1)
    np.testing.assert_array_equal(c, expected)
    assert c[-6] == 0 and c[-3] == C - 1 and c[-2] == 0 and c[-1] == C - 1
    np.testing.assert_array_equal(c, sl.Stimulus(num_classes=C).labels(alpha))
    mid = tut.continuise(c)
    assert mid.dtype == np.float64 and mid.shape == alpha.shape
    np.testing.assert_allclose(mid, (c + 0.5) * np.pi / C - np.pi / 2, rtol=0, atol=1e-15)
    inside = slice(0, 503)
    assert np.all(np.abs(mid[inside] - alpha[inside]) <= np.pi / (2 * C) + 1e-12)
    np.testing.assert_allclose(tut.continuise(np.arange(C)),
                               sl.Stimulus(num_classes=C).midpoints(np.arange(C)))
    # Shapes are kept, also for 2-d input; non-finite IPDs are rejected.
    assert tut.discretise(alpha[:500].reshape(20, 25)).shape == (20, 25)
    with pytest.raises(ValueError, match="NaN"):
        tut.discretise([0.0, np.nan])


# ---- weights ----------------------------------------------------------------------------------------
def test_init_weights_follow_the_seeds_nn_init():
    tut.set_seed(1)
    W = tut.init_weight_matrix()
    assert W.shape == (200, 12) and W.dtype == np.float32 and W.flags.c_contiguous
    W1, W2 = tut.init_weight_matrices()
    assert W1.shape == (200, 100) and W2.shape == (100, 12)
    assert W1.dtype == W2.dtype == np.float32
    # PyTorch's fan_in of a 2-d (rows, cols) tensor is cols.
    for w, bound in ((W, 1 / math.sqrt(12)), (W1, 0.1), (W2, 1 / math.sqrt(12))):
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.95 * bound
        assert abs(float(w.mean())) < 0.1 * bound


# ---- networks ----------------------------------------------------------------------------------------
def _grid_weights(rng, shape, lo, hi):
    return (rng.integers(lo, hi, shape) / 64).astype(np.float32)


def test_membrane_only_matches_model_and_reference(small):
    ipd, spikes, _ = tut.random_ipd_input_signal(5)     # 5 samples: not the module batch size
    rng = np.random.default_rng(0)
    W = _grid_weights(rng, (16, 4), -32, 33)
    v = tut.membrane_only(spikes, W)
    assert v.shape == (5, 20, 4) and v.dtype == np.float32
    net = sl.MembraneOnly(16, 4, dt=1e-3, tau=20e-3)
    net.w = W
    np.testing.assert_array_equal(v, net.forward(spikes).output_membrane)
    expected = ref.membrane_only_forward(spikes.astype(np.uint8), W, 1e-3, 20e-3)
    assert relative_error(v, expected["output_membrane"]) < 1e-5
    assert np.all(v[:, 0] == 0)
    # Other tau; float 0/1 spikes (tensor=True style) give the same result.
    v5 = tut.membrane_only(spikes.astype(np.float32), W, tau=5 * tut.ms)
    expected5 = ref.membrane_only_forward(spikes.astype(np.uint8), W, 1e-3, 5e-3)
    assert relative_error(v5, expected5["output_membrane"]) < 1e-5
    with pytest.raises(ValueError, match="0 and 1"):
        tut.membrane_only(spikes * 2.0, W)
    with pytest.raises(ValueError):
        tut.membrane_only(spikes, W[:10])


def test_snn_matches_model_and_reference(small):
    _, spikes, _ = tut.random_ipd_input_signal(6)
    x = spikes.astype(np.uint8)
    rng = np.random.default_rng(1)
    for _ in range(200):
        W1 = _grid_weights(rng, (16, 5), -20, 44)
        W2 = _grid_weights(rng, (5, 4), -32, 33)
        out = ref.snn_forward(x, W1, W2, 1e-3, 20e-3, 20e-3)
        distance = np.abs(out["hidden_v"] - 1.0)
        if not np.any((distance > 0) & (distance <= THRESHOLD_MARGIN)):
            break
    else:
        raise AssertionError("no unambiguous weights found")
    assert 0.02 < out["hidden_spikes"].mean() < 0.6   # the hidden layer does spike
    v = tut.snn(spikes, W1, W2)
    assert v.shape == (6, 20, 4) and v.dtype == np.float32
    net = sl.SNN(16, 5, 4, dt=1e-3, tau_hidden=20e-3, tau_output=20e-3, beta=5)
    net.w1, net.w2 = W1, W2
    np.testing.assert_array_equal(v, net.forward(spikes).output_membrane)
    assert relative_error(v, out["output_membrane"]) < 1e-5
    with pytest.raises(ValueError, match="do not chain"):
        tut.snn(spikes, W1, W2[:3])


def test_functions_accept_torch_like_tensors(small):
    class FakeTensor:                                  # what .detach().cpu().numpy() gives
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    ipd, spikes, _ = tut.random_ipd_input_signal(4, tensor=True)
    W = tut.init_weight_matrix()
    np.testing.assert_array_equal(tut.membrane_only(FakeTensor(spikes), FakeTensor(W)),
                                  tut.membrane_only(spikes, W))
    np.testing.assert_array_equal(tut.discretise(FakeTensor(ipd)), tut.discretise(ipd))


# ---- batches ----------------------------------------------------------------------------------------
def test_data_generator_shuffles_and_drops_last(small):
    ipds, spikes, _ = tut.random_ipd_input_signal(29)
    batches = list(tut.data_generator(ipds, spikes))
    assert len(batches) == 29 // 8 == 3
    seen = []
    for spike_batch, ipd_batch in batches:             # the seed's order: spikes first
        assert spike_batch.shape == (8, 20, 16) and spike_batch.dtype == np.bool_
        assert ipd_batch.shape == (8,) and ipd_batch.dtype == np.float64
        for s, a in zip(spike_batch, ipd_batch):
            j = int(np.flatnonzero(ipds == a)[0])
            np.testing.assert_array_equal(s, spikes[j])  # pairs stay together
            seen.append(j)
    assert len(seen) == len(set(seen)) == 24           # 5 samples dropped, none repeated
    assert seen != sorted(seen)                        # shuffled
    assert len(list(tut.data_generator(ipds, spikes, batch_size=10))) == 2
    assert len(list(tut.data_generator(ipds, spikes, batch_size=29))) == 1
    assert list(tut.data_generator(ipds, spikes, batch_size=30)) == []
    tut.batch_size = 4                                 # module value read at call time
    assert len(list(tut.data_generator(ipds, spikes))) == 7
    with pytest.raises(ValueError, match="samples"):
        list(tut.data_generator(ipds[:5], spikes))


# ---- training and analysis --------------------------------------------------------------------------
def test_train_snn_is_the_seed_loop(small, capsys):
    tut.set_seed(21)
    ipds, spikes, _ = tut.random_ipd_input_signal(64)
    W1, W2 = tut.init_weight_matrices()
    W1_0, W2_0 = W1.copy(), W2.copy()
    state = (tut._seed_base, tut._seed_counter)
    r1, r2, loss_hist = tut.train_snn(ipds, spikes, W1, W2, nb_epochs=4, lr=0.02)
    assert r1 is W1 and r2 is W2                       # updated in place, like nn.Parameter
    assert not np.array_equal(W1, W1_0) and not np.array_equal(W2, W2_0)
    assert len(loss_hist) == 4 and all(np.isfinite(loss_hist))
    out = capsys.readouterr().out
    assert "Want loss for epoch 1 to be about 1.39" in out
    assert "Epoch 4: loss=%.5f" % loss_hist[-1] in out
    # The same loop by hand: SNN (mean readout) + Adam over the module's shuffled batches.
    tut._seed_base, tut._seed_counter = state
    net = sl.SNN(16, 5, 4, dt=1e-3, tau_hidden=20e-3, tau_output=20e-3, readout="mean")
    net.w1, net.w2 = W1_0, W2_0
    opt = sl.Adam(net, lr=0.02)
    labels = tut.discretise(ipds)
    manual = []
    for _ in range(4):
        losses = []
        for index in tut._batch_indices(64, 8):
            loss, grads = net.loss_and_grad(spikes, labels[index], index=index)
            opt.step(grads)
            losses.append(loss)
        manual.append(np.mean(losses))
    np.testing.assert_array_equal(W1, net.w1)
    np.testing.assert_array_equal(W2, net.w2)
    np.testing.assert_allclose(loss_hist, manual, rtol=1e-12)


def test_train_membrane_only_and_dispatch(small, capsys):
    tut.set_seed(4)
    ipds, spikes, _ = tut.random_ipd_input_signal(128)
    W, loss_hist = tut.train(ipds, spikes, model="membrane_only", nb_epochs=8, lr=0.05,
                             verbose=False)
    assert W.shape == (16, 4) and W.dtype == np.float32 and len(loss_hist) == 8
    assert loss_hist[-1] < loss_hist[0]
    assert capsys.readouterr().out == ""
    # The loss is the seed's: cross-entropy of 0.01 x the membrane summed over time.
    m = 0.01 * tut.membrane_only(spikes, W).sum(axis=1).astype(np.float64)
    labels = tut.discretise(ipds)
    logp = m - np.log(np.exp(m).sum(axis=1, keepdims=True))
    net = sl.MembraneOnly(16, 4, dt=1e-3, tau=20e-3, readout="sum")
    net.w = W
    loss, _ = net.loss_and_grad(spikes, labels)
    assert loss == pytest.approx(-logp[np.arange(128), labels].mean(), rel=1e-5)
    W1, W2, hist = tut.train(ipds, spikes, nb_epochs=1, verbose=False)
    assert W1.shape == (16, 5) and W2.shape == (5, 4) and len(hist) == 1
    with pytest.raises(ValueError, match="model"):
        tut.train(ipds, spikes, model="transformer")


def _oracle(ipds, spikes, wrong_every=0):
    """A ``run`` that knows each sample's class (looked up by its spikes): a one-hot membrane
    on the true class, or on the next class for every ``wrong_every``-th sample."""
    labels = dict(zip((s.tobytes() for s in spikes), tut.discretise(ipds)))
    counter = [0]

    def run(batch):
        out = np.zeros((len(batch), 20, tut.num_classes), np.float32)
        for b, s in enumerate(batch):
            c = labels[s.tobytes()]
            counter[0] += 1
            if wrong_every and counter[0] % wrong_every == 0:
                c = (c + 1) % tut.num_classes
            out[b, 3, c] = 1.0
        return out
    return run


def test_test_accuracy_and_analyse(small, capsys):
    ipds, spikes, _ = tut.random_ipd_input_signal(35)
    ipd_true, ipd_est, confusion, accs = tut.test_accuracy(ipds, spikes, _oracle(ipds, spikes))
    assert ipd_true.shape == ipd_est.shape == (32,) and len(accs) == 4
    assert confusion.shape == (4, 4) and confusion.sum() == 32
    assert np.all(accs == np.ones(4)) and np.trace(confusion) == 32
    np.testing.assert_allclose(ipd_est, tut.continuise(tut.discretise(ipd_true)))
    assert set(ipd_true) <= set(ipds)
    result = tut.analyse(ipds, spikes, "Train", _oracle(ipds, spikes), plot_analysis=0)
    acc_mean, acc_std, err_mean, err_std = result
    assert (acc_mean, acc_std) == (100.0, 0.0)
    assert 0 < err_mean <= 180 / 4 / 2 and err_std > 0
    out = capsys.readouterr().out
    assert "Train classifier accuracy: 100.0%" in out
    assert f"Train absolute error: {err_mean:.1f} deg" in out
    # Every 4th estimate one class off: accuracy 75%, confusion off the diagonal.
    ipd_true, ipd_est, confusion, accs = tut.test_accuracy(
        ipds, spikes, _oracle(ipds, spikes, wrong_every=4))
    assert np.mean(accs) == 0.75 and np.trace(confusion) == 24
    est_class, true_class = np.nonzero(confusion - np.diag(np.diag(confusion)))
    assert np.all(est_class == (true_class + 1) % 4)
    with pytest.raises(ValueError, match="no complete batch"):
        tut.test_accuracy(ipds[:5], spikes[:5], _oracle(ipds, spikes))


def test_analyse_with_a_trained_network_and_plots(small, capsys, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tut.set_seed(9)
    ipds, spikes, _ = tut.random_ipd_input_signal(64)
    W1, W2, _ = tut.train_snn(ipds, spikes, nb_epochs=2, verbose=False)
    run = lambda x: tut.snn(x, W1, W2)                 # noqa: E731  (the seed's run_func)
    before = len(plt.get_fignums())
    acc_mean, acc_std, err_mean, err_std = tut.analyse(ipds, spikes, "Test", run)
    assert len(plt.get_fignums()) == before + 1        # the seed's figure (plot_analysis=1)
    plt.close("all")
    assert 0 <= acc_mean <= 100 and acc_std >= 0 and 0 <= err_mean <= 180
    assert "Test classifier accuracy" in capsys.readouterr().out
    # Without matplotlib: numbers still come back, with a warning instead of plots.
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.pyplot", None)
    tut.set_seed(10)
    with pytest.warns(RuntimeWarning, match="matplotlib"):
        again = tut.analyse(ipds, spikes, "Test", run, plot_analysis=1)
    assert len(again) == 4 and 0 <= again[0] <= 100


def test_softmax_helpers():
    x = np.array([0.5, 1.5, 0.2])
    p = tut.softmax(x)
    assert p.sum() == pytest.approx(1.0) and np.argmax(p) == 1
    np.testing.assert_allclose(tut.log_softmax(x), np.log(p))
    np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum())
