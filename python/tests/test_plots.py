"""spikeloc.plots: figure structure, image data, labels with units, colour limits, sort order,
histogram counts, duck-typed inputs, and that every figure saves to a non-trivial PNG."""

import math
import sys
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import spikeloc as sl  # noqa: E402
from spikeloc import plots  # noqa: E402

DEG = 180 / math.pi


@pytest.fixture
def close_all():
    yield
    plt.close("all")


def _png_size(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    return path.stat().st_size


def _main_axes(fig):
    """Axes that are not colourbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _confusion(labels, pred, c):
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (labels, pred), 1)
    return conf


# ---------------------------------------------------------------------------- stimulus


def test_stimulus_examples_structure(small_data, tmp_path, close_all):
    stim, ipd, spikes, _, _ = small_data
    fig = plots.stimulus_examples(ipd, spikes, stim, n=5)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 5
    for i, ax in enumerate(fig.axes):
        im = ax.images[0]
        assert im.get_array().shape == (stim.n_in, stim.steps)
        np.testing.assert_array_equal(np.asarray(im.get_array()), spikes[i].T)
        assert ax.get_title() == f"IPD = {ipd[i] * DEG:.0f} deg"
        # The line between the ears sits between fibre N_a - 1 and N_a.
        ys = [line.get_ydata()[0] for line in ax.lines]
        assert stim.anf_per_ear - 0.5 in ys
        # Time axis in ms: the image spans the stimulus duration.
        assert im.get_extent()[:2] == pytest.approx([0.0, stim.duration * 1e3])
    assert "ms" in fig.axes[-1].get_xlabel()
    assert "fibre" in fig.axes[0].get_ylabel()
    assert _png_size(fig, tmp_path) > 5000


def test_stimulus_examples_without_stimulus_uses_steps(small_data, close_all):
    _, ipd, spikes, _, _ = small_data
    fig = plots.stimulus_examples(ipd, spikes, n=100)      # n capped at the batch size
    assert len(fig.axes) == len(ipd)
    assert "steps" in fig.axes[-1].get_xlabel()
    fig2 = plots.stimulus_examples(ipd, spikes, n=1, dt=2e-3)
    assert len(fig2.axes) == 1 and "ms" in fig2.axes[0].get_xlabel()
    assert fig2.axes[0].images[0].get_extent()[1] == pytest.approx(spikes.shape[1] * 2.0)
    with pytest.raises(ValueError):
        plots.stimulus_examples(ipd, spikes[0])


# ---------------------------------------------------------------------------- loss


def test_loss_curves_arrays_and_history(tmp_path, close_all):
    train = [2.5, 2.0, 1.6, 1.4]
    val = [2.4, 2.1, 1.8, 1.7]
    fig = plots.loss_curves(train, val)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), train)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), val)
    assert ax.get_xlabel() == "epoch" and "loss" in ax.get_ylabel()
    assert "(nats)" in ax.get_ylabel()
    assert ax.get_yscale() == "linear"
    assert ax.get_legend() is not None
    assert _png_size(fig, tmp_path) > 3000

    history = SimpleNamespace(train_loss=np.array(train), val_loss=np.array(val), best_epoch=1)
    fig2 = plots.loss_curves(history, log=True)
    ax2 = fig2.axes[0]
    assert len(ax2.lines) == 3 and ax2.get_yscale() == "log"
    np.testing.assert_array_equal(ax2.lines[2].get_xdata(), [2, 2])   # 0-based best epoch 1
    np.testing.assert_allclose(ax2.lines[1].get_ydata(), val)
    fig2.canvas.draw()
    labels = [t.get_text() for t in ax2.get_yticklabels(minor=True) if t.get_text()]
    labels += [t.get_text() for t in ax2.get_yticklabels() if t.get_text()]
    assert labels and not any("times" in s or "^" in s for s in labels)

    # No validation curve, drawing into a given axes.
    fig3, ax3 = plt.subplots()
    out = plots.loss_curves(SimpleNamespace(train_loss=train, val_loss=[]), ax=ax3)
    assert out is fig3 and len(ax3.lines) == 1


# ---------------------------------------------------------------------------- evaluation


def test_ipd_histograms_counts_bins_and_confusion(small_stim, tmp_path, close_all):
    rng = np.random.default_rng(0)
    c = small_stim.num_classes
    ipd = small_stim.draw_ipd(200, seed=4)
    true = small_stim.labels(ipd)
    pred = np.where(rng.random(200) < 0.7, true, rng.integers(0, c, 200))
    est = small_stim.midpoints(pred)
    conf = _confusion(true, pred, c)

    fig = plots.ipd_histograms(ipd, est, conf)
    axes = _main_axes(fig)
    assert len(axes) == 2 and len(fig.axes) == 3        # + the confusion colourbar
    ax_h, ax_c = axes
    assert len(ax_h.containers) == 2
    for bars in ax_h.containers:
        assert sum(p.get_height() for p in bars) == 200
        assert len(bars) == c                            # one bar per class
    # Bars fall between the class boundaries (every 180 / C degrees).
    edges = np.linspace(-90, 90, c + 1)
    for k, p in enumerate(ax_h.containers[0]):
        assert edges[k] <= p.get_x() < p.get_x() + p.get_width() <= edges[k + 1] + 1e-9
    heights_true = [p.get_height() for p in ax_h.containers[0]]
    heights_est = [p.get_height() for p in ax_h.containers[1]]
    np.testing.assert_array_equal(heights_true, np.bincount(true, minlength=c))
    np.testing.assert_array_equal(heights_est, np.bincount(pred, minlength=c))
    assert "deg" in ax_h.get_xlabel() and "deg" in ax_c.get_xlabel()
    assert "deg" in ax_c.get_ylabel()
    image = np.asarray(ax_c.images[0].get_array())
    assert image.shape == (c, c)
    np.testing.assert_allclose(image.sum(axis=0), 1.0)   # each true class (x) sums to 1
    assert _png_size(fig, tmp_path) > 5000

    # An evaluation-like object: its confusion is used.
    ev = SimpleNamespace(ipd=ipd, estimate=est, confusion=conf)
    fig2 = plots.ipd_histograms(ev)
    assert len(_main_axes(fig2)) == 2

    # Histograms only, with and without the number of classes.
    fig3 = plots.ipd_histograms(ipd, est, num_classes=c)
    assert len(fig3.axes) == 1 and len(fig3.axes[0].containers[0]) == c
    fig4 = plots.ipd_histograms(ipd, est)
    (ax4,) = fig4.axes
    for bars in ax4.containers:
        assert sum(p.get_height() for p in bars) == 200
    with pytest.raises(TypeError):
        plots.ipd_histograms(ipd)


def test_confusion_matrix_normalised_and_counts(tmp_path, close_all):
    conf = np.array([[5, 1, 0], [2, 2, 0], [0, 0, 0]])   # rows = true; class 2 never seen
    fig = plots.confusion_matrix(conf)
    ax = _main_axes(fig)[0]
    assert len(fig.axes) == 2                            # matrix + colourbar
    image = np.asarray(ax.images[0].get_array())
    assert image.shape == (3, 3)
    assert np.isfinite(image).all()
    # Image rows are estimates, columns true classes.
    np.testing.assert_allclose(image[:, 0], [5 / 6, 1 / 6, 0])
    np.testing.assert_allclose(image[:, 1], [0.5, 0.5, 0])
    np.testing.assert_allclose(image[:, 2], 0)
    assert ax.images[0].get_clim() == (0, 1)
    ticks = [float(t.get_text().replace("\u2212", "-")) for t in ax.get_xticklabels()]
    np.testing.assert_allclose(ticks, [-60, 0, 60])      # class centres in degrees
    assert "true" in ax.get_xlabel() and "(deg)" in ax.get_xlabel()
    assert "estimated" in ax.get_ylabel() and "(deg)" in ax.get_ylabel()
    cbar_ax = [a for a in fig.axes if a is not ax][0]
    assert "fraction" in cbar_ax.get_ylabel()
    assert _png_size(fig, tmp_path) > 3000

    fig2 = plots.confusion_matrix(SimpleNamespace(confusion=conf), normalise=False)
    image2 = np.asarray(_main_axes(fig2)[0].images[0].get_array())
    np.testing.assert_array_equal(image2, conf.T)
    with pytest.raises(ValueError):
        plots.confusion_matrix(np.zeros((2, 3)))


# ---------------------------------------------------------------------------- weights


def test_weight_matrices_shapes_and_symmetric_limits(small_snn, tmp_path, close_all):
    w1, w2 = small_snn.w1, small_snn.w2
    fig = plots.weight_matrices(w1, w2)
    axes = _main_axes(fig)
    assert len(axes) == 3 and len(fig.axes) == 6
    n_in, n_h = w1.shape
    c = w2.shape[1]
    expected = [w1, w2, w1.astype(np.float64) @ w2]
    for ax, w, shape in zip(axes, expected, [(n_in, n_h), (n_h, c), (n_in, c)]):
        im = ax.images[0]
        assert im.get_array().shape == shape
        np.testing.assert_allclose(np.asarray(im.get_array()), w, rtol=1e-6, atol=1e-7)
        lo, hi = im.get_clim()
        assert lo == -hi and hi == pytest.approx(np.abs(w).max())
        assert im.get_cmap().name == "RdBu_r"
    np.testing.assert_array_equal(fig.sort_order, np.arange(n_h))
    assert "input" in axes[0].get_ylabel() and "hidden" in axes[0].get_xlabel()
    assert all("weight" in a.get_ylabel() for a in fig.axes if a not in axes)
    assert _png_size(fig, tmp_path) > 5000

    # A model in place of (w1, w2).
    fig2 = plots.weight_matrices(small_snn)
    np.testing.assert_allclose(np.asarray(_main_axes(fig2)[1].images[0].get_array()), w2)
    with pytest.raises(ValueError):
        plots.weight_matrices(w1, w2.T)


def test_weight_matrices_sort_by_phase(close_all):
    rng = np.random.default_rng(1)
    n_in, n_h, c = 40, 7, 4
    centre = rng.permutation(n_h) * 5 + 4                # preferred input of each unit
    i = np.arange(n_in)[:, None]
    w1 = np.exp(-0.5 * ((i - centre[None, :]) / 2.0) ** 2)  # one positive bump per unit
    w2 = rng.normal(size=(n_h, c))
    fig = plots.weight_matrices(w1, w2, sort_by_phase=True)
    order = fig.sort_order
    assert sorted(order.tolist()) == list(range(n_h))    # a permutation
    np.testing.assert_array_equal(order, np.argsort(centre))
    # The documented key, mean_i(i w1[i, j]), increases along the shown order.
    key = np.mean(i * w1, axis=0)
    assert np.all(np.diff(key[order]) >= 0)
    np.testing.assert_allclose(plots.hidden_unit_order(w1)[1], key)
    axes = _main_axes(fig)
    np.testing.assert_allclose(np.asarray(axes[0].images[0].get_array()), w1[:, order])
    np.testing.assert_allclose(np.asarray(axes[1].images[0].get_array()), w2[order])
    np.testing.assert_allclose(np.asarray(axes[2].images[0].get_array()), w1 @ w2)
    assert "sorted" in axes[0].get_xlabel()

    # Weak units (max |w| below the threshold) go last, in their original order.
    w1_weak = w1.copy()
    weak = [order[0], order[3]]
    w1_weak[:, weak] *= 0.1
    order2, key2 = plots.hidden_unit_order(w1_weak, weak_threshold=0.5)
    assert sorted(order2.tolist()) == list(range(n_h))
    np.testing.assert_array_equal(order2[-2:], sorted(weak))
    assert np.isinf(key2[weak]).all()


def test_w1_profiles(small_snn, small_stim, tmp_path, close_all):
    w1 = small_snn.w1
    n_a = small_stim.anf_per_ear
    fig = plots.w1_profiles(w1, n=3, stimulus=small_stim)
    assert len(fig.axes) == 3
    strength = np.abs(w1).max(axis=0)
    assert set(fig.units_shown.tolist()) == set(np.argsort(-strength)[:3].tolist())
    for ax, j in zip(fig.axes, fig.units_shown):
        left, right = ax.lines[0], ax.lines[1]
        np.testing.assert_allclose(left.get_xdata(), np.linspace(0, 90, n_a))
        np.testing.assert_allclose(left.get_ydata(), w1[:n_a, j])
        np.testing.assert_allclose(right.get_ydata(), w1[n_a:, j])
        assert ax.get_title() == f"hidden unit {j}"
    assert "phase delay (deg)" == fig.axes[-1].get_xlabel()
    assert "weight" in fig.axes[0].get_ylabel()
    legend = fig.axes[0].get_legend()
    # seed 002 names ear 0 (the first half of the inputs) the right ear
    assert [t.get_text() for t in legend.get_texts()] == ["right ear", "left ear"]
    assert _png_size(fig, tmp_path) > 3000

    fig2 = plots.w1_profiles(small_snn, units=[4, 0])
    np.testing.assert_array_equal(fig2.units_shown, [4, 0])
    assert len(fig2.axes) == 2
    null = small_stim.replace(null_phase_delays=True)
    fig3 = plots.w1_profiles(w1, units=[1], stimulus=null)
    assert "fibre index" in fig3.axes[0].get_xlabel()
    with pytest.raises(ValueError):
        plots.w1_profiles(w1, units=[w1.shape[1]])


def test_weight_plots_of_a_dale_model_show_the_signed_weights(small_stim, close_all):
    # Under Dale's law w1/w2 are the raw parameters; the network uses |w| * sign. A model
    # passed to the weight plots must show what the network uses.
    net = sl.SNN.for_stimulus(small_stim, n_hidden=6, tau_hidden=5 * sl.ms, seed=3,
                              dale=sl.Dale(0.5, inhibitory="first"))
    w1_eff, w2_eff = net.w1_eff, net.w2_eff
    assert not np.allclose(w1_eff, net.w1) and not np.allclose(w2_eff, net.w2)
    fig = plots.weight_matrices(net)
    axes = _main_axes(fig)
    np.testing.assert_allclose(np.asarray(axes[0].images[0].get_array()), w1_eff)
    np.testing.assert_allclose(np.asarray(axes[1].images[0].get_array()), w2_eff)
    np.testing.assert_allclose(np.asarray(axes[2].images[0].get_array()),
                               w1_eff.astype(np.float64) @ w2_eff, rtol=1e-6, atol=1e-7)
    n_a = small_stim.anf_per_ear
    fig2 = plots.w1_profiles(net, units=[2])
    np.testing.assert_allclose(fig2.axes[0].lines[0].get_ydata(), w1_eff[:n_a, 2])
    np.testing.assert_allclose(fig2.axes[0].lines[1].get_ydata(), w1_eff[n_a:, 2])


# ---------------------------------------------------------------------------- single example


def test_single_example(small_data, small_snn, tmp_path, close_all):
    stim, _, spikes, _, labels = small_data
    fig = plots.single_example(small_snn, spikes[2], stim, label=labels[2])
    assert len(fig.axes) == 4                            # 3 rows + colourbar
    ax_in, ax_h, ax_m, cax = fig.axes
    out = small_snn.forward(spikes[2:3])
    assert ax_in.images[0].get_array().shape == (stim.n_in, stim.steps)
    np.testing.assert_array_equal(np.asarray(ax_in.images[0].get_array()), spikes[2].T)
    assert ax_h.images[0].get_array().shape == (small_snn.n_hidden, stim.steps)
    np.testing.assert_array_equal(np.asarray(ax_h.images[0].get_array()),
                                  out.hidden_spikes[0].T)
    c = stim.num_classes
    assert len(ax_m.lines) == c + 2                      # C traces + outline/highlight
    for k in range(c):
        np.testing.assert_allclose(ax_m.lines[k].get_ydata(), out.output_membrane[0, :, k])
    # Traces coloured by class IPD: colours differ between classes.
    colours = {tuple(np.round(matplotlib.colors.to_rgba(ax_m.lines[k].get_color()), 3))
               for k in range(c)}
    assert len(colours) == c
    assert ax_m.lines[-1].get_linewidth() > ax_m.lines[0].get_linewidth()
    np.testing.assert_allclose(ax_m.lines[-1].get_ydata(), out.output_membrane[0, :, labels[2]])
    assert "ms" in ax_m.get_xlabel() and "membrane" in ax_m.get_ylabel()
    assert "deg" in cax.get_ylabel()
    assert fig.predicted == int(np.argmax(out.logits[0]))
    assert f"{stim.midpoints(np.array([labels[2]]))[0] * DEG:g} deg" in ax_m.get_title()
    assert _png_size(fig, tmp_path) > 5000

    # (1, T, N_in) input, no label, a membrane-only model: two rows.
    mo = sl.MembraneOnly.for_stimulus(stim, tau=5e-3)
    fig2 = plots.single_example(mo, spikes[:1])
    assert len(fig2.axes) == 3
    assert len(fig2.axes[1].lines) == c
    with pytest.raises(ValueError):
        plots.single_example(small_snn, spikes[0], label=c)


# ---------------------------------------------------------------------------- no matplotlib


def test_missing_matplotlib_gives_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="matplotlib"):
        plots.loss_curves([1.0, 0.5])


def test_delays_per_input_and_per_synapse(small_stim, tmp_path, close_all):
    n_a = small_stim.anf_per_ear
    net = sl.SNN.for_stimulus(small_stim, n_hidden=6, seed=2, delays=sl.Delays(max_steps=4))
    fig = plots.delays(net, small_stim)
    ax = fig.axes[0]
    left, right, cancel = ax.lines
    np.testing.assert_allclose(left.get_xdata(), np.linspace(0, 90, n_a))
    np.testing.assert_allclose(left.get_ydata(), net.delays[:n_a] * net.dt * 1e3, rtol=1e-6)
    np.testing.assert_allclose(right.get_ydata(), net.delays[n_a:] * net.dt * 1e3, rtol=1e-6)
    # psi / (2 pi f): 0 .. 1/(4 f) seconds over the fibres, centred on the mean delay
    slope = np.diff(cancel.get_ydata())
    np.testing.assert_allclose(slope.sum(), 0.25 / small_stim.freq * 1e3, rtol=1e-9)
    assert ax.get_ylabel() == "delay (ms)" and fig.units_shown is None
    assert _png_size(fig, tmp_path) > 3000
    syn = sl.SNN.for_stimulus(small_stim, n_hidden=6, seed=2,
                              delays=sl.Delays(max_steps=4, per="synapse"))
    fig2 = plots.delays(syn, small_stim, n=3)
    assert len(fig2.axes) == 3
    strongest = np.argsort(-np.abs(syn.w1).max(axis=0))[:3]
    assert set(fig2.units_shown.tolist()) == set(strongest.tolist())
    j = fig2.units_shown[0]
    np.testing.assert_allclose(fig2.axes[0].collections[0].get_offsets()[:, 1],
                               syn.delays[:n_a, j] * syn.dt * 1e3, rtol=1e-6)
    mo = sl.MembraneOnly.for_stimulus(small_stim, delays=sl.Delays(per="synapse"))
    assert len(plots.delays(mo, units=[0, 1]).axes) == 2
    with pytest.raises(ValueError, match="no delays"):
        plots.delays(sl.SNN.for_stimulus(small_stim, n_hidden=3))
    with pytest.raises(ValueError, match="units"):
        plots.delays(syn, units=[6])
