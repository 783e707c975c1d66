"""Figures for stimuli, training runs, evaluations and trained weights (needs matplotlib).

Every function builds its figure with matplotlib's object-oriented API, never calls
``plt.show()`` and returns the :class:`matplotlib.figure.Figure` (close it with
``plt.close(fig)`` when done). Single-panel functions accept an ``ax`` to draw into; multi-panel
ones accept a ``fig`` (drawn into with ``fig.subplots`` / gridspecs). Inputs are plain NumPy
arrays or duck-typed objects (a training history with ``.train_loss``/``.val_loss``, an
evaluation with ``.ipd``/``.estimate``/``.confusion``, a model with ``.w1``/``.w2``; a model
under Dale's law is shown with its effective signed weights ``w1_eff``/``w2_eff``), so the
functions do not depend on ``spikeloc.training`` or ``spikeloc.evaluation``.

Units: IPDs are given in radians (as everywhere in spikeloc) and shown in degrees; times are
shown in ms when the time step is known (from a :class:`~spikeloc.Stimulus`, a model's ``dt``
or a ``dt`` argument in seconds), otherwise in steps. Inputs ``0 .. N_a - 1`` are the right ear
(ear 0), ``N_a .. 2 N_a - 1`` the left ear (ear 1, the one that receives the IPD), as seed
002's figures name them.

Functions
---------
stimulus_examples(ipd, spikes, stimulus=None, n=8)
    Input spike rasters of a few examples, one panel each, titled with the IPD.
loss_curves(train_loss, val_loss=None, log=False)
    Training (and validation) loss against the epoch (1-based).
ipd_histograms(ipd, estimate, confusion=None)
    Histograms of the true and estimated IPDs, with the confusion matrix beside them.
confusion_matrix(confusion, normalise=True)
    The confusion matrix alone (true IPD on x, estimated IPD on y).
weight_matrices(w1, w2, sort_by_phase=False)
    W1, W2 and W1 W2 with a diverging colour map centred at 0; ``fig.sort_order`` holds the
    order of the hidden units.
hidden_unit_order(w1, weak_threshold=None)
    The tutorial's ordering of hidden units by preferred phase (used by the two above/below).
w1_profiles(w1, units=None, n=8)
    W1 weights of a few hidden units against the fibres' phase delay, right and left ear.
delays(model, stimulus=None, units=None, n=8)
    Learned delays against the fibres' phase delay, per ear (per input, or per synapse for a
    few units), with the delays that would undo the phase delays (the Jeffress picture).
single_example(model, spikes_one, stimulus=None, label=None)
    One example through a network: input raster, hidden raster, output membrane traces
    coloured by class IPD.
tuning_curves(curves, sort=True)
    Hidden firing rate against IPD (from spikeloc.tuning_curves), with a heat map.
errorbar(table, metrics, param)
    A sweep's metrics (mean +/- std over repeats) against a parameter (spikeloc.sweep).
eprop_dynamics(recording, spikes, sample=0)
    An e-prop network's inputs, voltages, spikes, learning signals and readout over time.
eprop_weights(before, after)
    Input, recurrent and output weights of an e-prop network before and after training.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["stimulus_examples", "loss_curves", "ipd_histograms", "confusion_matrix",
           "weight_matrices", "hidden_unit_order", "w1_profiles", "delays", "single_example",
           "tuning_curves", "errorbar", "eprop_dynamics", "eprop_weights"]

_DEG = 180.0 / math.pi
_WEIGHT_CMAP = "RdBu_r"      # diverging, centred at 0 with symmetric limits
_CLASS_CMAP = "turbo"        # class IPD from -90 (blue) to +90 deg (red), no white


def _pyplot():
    """matplotlib.pyplot, imported on first use with a helpful message if it is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spikeloc.plots needs matplotlib; install it with `pip install matplotlib` "
            "(or `pip install 'spikeloc[plot]'`)") from exc
    return plt


# ---------------------------------------------------------------------------- helpers


def _class_centres_deg(num_classes: int) -> np.ndarray:
    """Midpoints ``(c + 1/2) 180 / C - 90`` of the C IPD classes [deg]."""
    return (np.arange(num_classes) + 0.5) * 180.0 / num_classes - 90.0


def _class_edges_deg(num_classes: int) -> np.ndarray:
    """Boundaries of the C IPD classes over [-90, 90] [deg] (C + 1 values)."""
    return np.linspace(-90.0, 90.0, num_classes + 1)


def _time_axis(steps: int, dt):
    """(extent start/stop, axis label, scale per step) for a time axis of ``steps`` steps."""
    if dt is None:
        return 0.0, float(steps), "time (steps)", 1.0
    per_step = float(dt) * 1e3
    return 0.0, steps * per_step, "time (ms)", per_step


def _as_spike_matrix(spikes, name="spikes") -> np.ndarray:
    arr = np.asarray(spikes)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (T, N) or (1, T, N), got {arr.shape}")
    return arr


def _raster(ax, spikes_tn, dt, *, cmap="gray_r", ylabel="input fibre", ear_split=None):
    """imshow of a (T, N) spike matrix as N rows against time; returns the image."""
    steps, n = spikes_tn.shape
    t0, t1, tlabel, _ = _time_axis(steps, dt)
    im = ax.imshow(np.asarray(spikes_tn, dtype=np.float32).T, aspect="auto",
                   interpolation="nearest", cmap=cmap, vmin=0, vmax=1, origin="lower",
                   extent=(t0, t1, -0.5, n - 0.5))
    ax.set_xlabel(tlabel)
    ax.set_ylabel(ylabel)
    if ear_split is not None:
        ax.axhline(ear_split - 0.5, color="tab:red", lw=1.0)
    return im


def _symmetric_limit(w) -> float:
    v = float(np.max(np.abs(w))) if np.size(w) else 0.0
    return v if v > 0 and np.isfinite(v) else 1.0


# ---------------------------------------------------------------------------- stimulus


def stimulus_examples(ipd, spikes, stimulus=None, n=8, *, dt=None, fig=None):
    """Spike rasters of the first ``n`` examples, one panel each (4 per row).

    Parameters
    ----------
    ipd : array (B,) [rad]
        The examples' IPDs (panel titles "IPD = x deg").
    spikes : array (B, T, N_in) of 0/1
        Input spikes; each panel shows ``spikes[i].T`` (fibre on y, time on x).
    stimulus : Stimulus, optional
        Gives the time step (time axis in ms) and the fibres per ear (a red line separates
        the right ear, fibres ``0 .. N_a - 1``, from the left ear). Without it the ears are
        taken as the two halves of the inputs.
    n : int
        Number of examples shown (at most B).
    dt : float, optional
        Time step [s] when no stimulus is given (otherwise the axis is in steps).
    fig : Figure, optional
        Figure to draw into.

    Returns the Figure (``n`` axes).
    """
    plt = _pyplot()
    ipd = np.asarray(ipd, dtype=np.float64).reshape(-1)
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must have shape (B, T, N_in), got {spikes.shape}")
    n = int(min(n, spikes.shape[0], ipd.shape[0]))
    if n < 1:
        raise ValueError("need at least one example")
    if stimulus is not None:
        dt = stimulus.dt
        split = stimulus.anf_per_ear
    else:
        split = spikes.shape[2] // 2 if spikes.shape[2] % 2 == 0 else None
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    if fig is None:
        fig = plt.figure(figsize=(3.0 * ncols, 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
                         ).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.remove()
            continue
        _raster(ax, spikes[i], dt, ear_split=split)
        ax.set_title(f"IPD = {ipd[i] * _DEG:.0f} deg")
        if i % ncols:
            ax.set_ylabel("")
        if i < n - ncols:
            ax.set_xlabel("")
    if split is not None:
        fig.suptitle(f"Input spikes (fibres 0-{split - 1}: right ear, "
                     f"{split}-{2 * split - 1}: left ear)")
    return fig


# ---------------------------------------------------------------------------- training


def _plain_log_labels(axis):
    """Log-axis tick labels as plain numbers (1.5, 2, 0.3) instead of 2x10^0; matplotlib's
    LogFormatter still chooses which ticks get a label."""
    import matplotlib.ticker as mt

    class Plain(mt.LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    axis.set_major_formatter(Plain(labelOnlyBase=False))
    axis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def loss_curves(train_loss, val_loss=None, *, log=False, ax=None):
    """Loss per epoch (epochs numbered from 1).

    ``train_loss`` is a sequence of per-epoch losses or an object with ``.train_loss`` (and,
    optionally, ``.val_loss``, used when ``val_loss`` is not given, and ``.best_epoch``, a
    0-based epoch index marked with a dotted vertical line, as in
    :class:`spikeloc.training.History`). ``log=True`` uses a log scale on the loss axis.
    Returns the Figure.
    """
    plt = _pyplot()
    best = None
    if hasattr(train_loss, "train_loss"):
        history = train_loss
        best = getattr(history, "best_epoch", None)
        train_loss = history.train_loss
        if val_loss is None:
            val_loss = getattr(history, "val_loss", None)
    train = np.asarray(train_loss, dtype=np.float64).reshape(-1)
    val = None if val_loss is None else np.asarray(val_loss, dtype=np.float64).reshape(-1)
    if val is not None and val.size == 0:
        val = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    else:
        fig = ax.figure
    ax.plot(np.arange(1, train.size + 1), train, "o-", ms=3, label="training")
    if val is not None:
        ax.plot(np.arange(1, val.size + 1), val, "s-", ms=3, label="validation")
    if best is not None:
        ax.axvline(int(best) + 1, color="0.4", ls=":", lw=1.2,
                   label=f"best (epoch {int(best) + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss (nats)")
    if log:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
    n_ep = max(train.size, 0 if val is None else val.size)
    if n_ep <= 20:
        ax.set_xticks(np.arange(1, n_ep + 1))
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


# ---------------------------------------------------------------------------- evaluation


def _normalise_confusion(confusion) -> np.ndarray:
    """Rows (true classes) divided by their sums; empty rows stay 0."""
    conf = np.asarray(confusion, dtype=np.float64)
    sums = conf.sum(axis=1, keepdims=True)
    return np.divide(conf, sums, out=np.zeros_like(conf), where=sums > 0)


def _draw_confusion(ax, confusion, normalise, colorbar=True):
    """Confusion matrix (rows = true classes) drawn with true IPD on x, estimate on y."""
    conf = np.asarray(confusion, dtype=np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {conf.shape}")
    c = conf.shape[0]
    shown = _normalise_confusion(conf) if normalise else conf
    im = ax.imshow(shown.T, origin="lower", interpolation="nearest", aspect="equal",
                   cmap="viridis", vmin=0, vmax=1 if normalise else None,
                   extent=(-90, 90, -90, 90))
    centres = _class_centres_deg(c)
    step = max(1, math.ceil(c / 12))
    ticks = centres[::step]
    labels = [f"{t:g}" for t in ticks]
    ax.set_xticks(ticks, labels, rotation=90 if c > 6 else 0)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("true IPD (deg)")
    ax.set_ylabel("estimated IPD (deg)")
    ax.set_title("Confusion matrix")
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label("fraction of true class" if normalise else "count")
    return im


def confusion_matrix(confusion, normalise=True, *, ax=None):
    """The confusion matrix as an image, true IPD on x and estimated IPD on y (degrees).

    ``confusion`` is a (C, C) count matrix with rows = true classes (or an object with a
    ``.confusion`` attribute). With ``normalise`` each true class (column of the image) sums
    to 1. Ticks are the class centres in degrees; a colourbar is added. Returns the Figure.
    """
    plt = _pyplot()
    if hasattr(confusion, "confusion"):
        confusion = confusion.confusion
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    else:
        fig = ax.figure
    _draw_confusion(ax, confusion, normalise)
    return fig


def ipd_histograms(ipd, estimate=None, confusion=None, *, num_classes=None, title=None,
                   fig=None):
    """Histograms of the true and the estimated IPDs in degrees, and the confusion matrix.

    Parameters
    ----------
    ipd, estimate : arrays (n,) [rad]
        True IPDs and estimates (e.g. the midpoint of the predicted class). Alternatively
        pass one object with ``.ipd`` and ``.estimate`` (an evaluation) as ``ipd``; its
        ``.confusion`` is then used when ``confusion`` is not given.
    confusion : array (C, C), optional
        Counts with rows = true classes; drawn normalised per true class beside the
        histograms (see :func:`confusion_matrix`).
    num_classes : int, optional
        Number of classes; the bins are the class boundaries ``linspace(-90, 90, C + 1)``.
        Taken from ``confusion`` when given; otherwise the bins are automatic over
        [-90, 90] degrees.
    title : str, optional
        Title of the histogram panel.
    fig : Figure, optional

    Returns the Figure: one histogram axes (two bar groups, each summing to n), plus the
    confusion axes and its colourbar when a confusion matrix is drawn.
    """
    plt = _pyplot()
    if estimate is None and hasattr(ipd, "estimate"):
        obj = ipd
        ipd, estimate = obj.ipd, obj.estimate
        if confusion is None:
            confusion = getattr(obj, "confusion", None)
    if estimate is None:
        raise TypeError("estimate is required (or pass an object with .ipd and .estimate)")
    true_deg = np.asarray(ipd, dtype=np.float64).reshape(-1) * _DEG
    est_deg = np.asarray(estimate, dtype=np.float64).reshape(-1) * _DEG
    if confusion is not None:
        confusion = np.asarray(confusion)
        num_classes = confusion.shape[0]
    if num_classes is not None:
        bins = _class_edges_deg(int(num_classes))
    else:
        bins = np.histogram_bin_edges(np.concatenate([true_deg, est_deg]), bins="auto",
                                      range=(-90.0, 90.0))
    if fig is None:
        fig = plt.figure(figsize=(10 if confusion is not None else 5.5, 4.2),
                         layout="constrained")
    if confusion is not None:
        ax_h, ax_c = fig.subplots(1, 2, width_ratios=[1.15, 1])
    else:
        ax_h, ax_c = fig.subplots(1, 1), None
    ax_h.hist([true_deg, est_deg], bins=bins, label=["true", "estimated"],
              color=["tab:blue", "tab:orange"], rwidth=0.9)
    ax_h.set_xlabel("IPD (deg)")
    ax_h.set_ylabel("number of samples")
    ax_h.set_xlim(-90, 90)
    ax_h.set_xticks(np.arange(-90, 91, 30))
    top = max([p.get_height() for p in ax_h.patches] + [1])
    ax_h.set_ylim(0, 1.22 * top)             # room for the legend above the bars
    ax_h.legend(loc="upper center", ncols=2)
    ax_h.set_title(title or f"IPD distribution (n = {true_deg.size})")
    if ax_c is not None:
        _draw_confusion(ax_c, confusion, normalise=True)
    return fig


# ---------------------------------------------------------------------------- weights


def hidden_unit_order(w1, weak_threshold=None):
    """The seed tutorial's ordering of hidden units by preferred phase.

    Rule (the tutorial's weight-matrix analysis): the key of hidden unit ``j`` is the
    weighted mean input index ``mean_i(i * w1[i, j])`` over the inputs ``i = 0 .. N_in - 1``
    (right-ear fibres first, then left-ear fibres, each by increasing phase delay); units are
    sorted by increasing key (stable sort). Units whose largest absolute weight
    ``max_i |w1[i, j]|`` is below ``weak_threshold`` get key +inf, i.e. go last in their
    original order (the tutorial used 0.5 for its trained 100-unit network; the default
    ``None`` keeps every unit).

    Returns ``(order, key)``: the permutation (int64 (N_h,)) and the keys (float64 (N_h,)).
    """
    w1 = np.asarray(w1, dtype=np.float64)
    if w1.ndim != 2:
        raise ValueError(f"w1 must have shape (N_in, N_h), got {w1.shape}")
    key = np.mean(np.arange(w1.shape[0])[:, None] * w1, axis=0)
    if weak_threshold is not None:
        key[np.max(np.abs(w1), axis=0) < weak_threshold] = np.inf
    return np.argsort(key, kind="stable").astype(np.int64), key


def _model_weights(model):
    """The weights a model uses, (w1, w2): the effective signed ones under Dale's law
    (``w1_eff``/``w2_eff``), else ``w1``/``w2``."""
    if hasattr(model, "w1_eff"):
        return model.w1_eff, model.w2_eff
    return model.w1, model.w2


def _weights_pair(w1, w2):
    if w2 is None and hasattr(w1, "w1") and hasattr(w1, "w2"):
        w1, w2 = _model_weights(w1)
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    if w1.ndim != 2 or w2.ndim != 2 or w1.shape[1] != w2.shape[0]:
        raise ValueError(f"need w1 (N_in, N_h) and w2 (N_h, C), got {w1.shape} and {w2.shape}")
    return w1, w2


def weight_matrices(w1, w2=None, sort_by_phase=False, *, weak_threshold=None, fig=None):
    """W1 (N_in x N_h), W2 (N_h x C) and their product W1 W2 (N_in x C) as images.

    Each panel uses a diverging colour map centred at 0 with symmetric limits
    ``(-max|W|, max|W|)`` and its own colourbar. ``w1`` may also be a model with ``.w1`` and
    ``.w2`` (then leave ``w2`` out). With ``sort_by_phase`` the hidden units (columns of W1,
    rows of W2) are reordered by :func:`hidden_unit_order` (the tutorial's weighted mean
    input index; ``weak_threshold`` as there); W1 W2 does not depend on the order.

    Returns the Figure (6 axes: 3 panels + 3 colourbars) with the attribute
    ``fig.sort_order``: the hidden-unit permutation shown (``arange(N_h)`` when unsorted),
    so that ``w1[:, fig.sort_order]`` is the first image.
    """
    plt = _pyplot()
    w1, w2 = _weights_pair(w1, w2)
    n_in, n_h = w1.shape
    if sort_by_phase:
        order, _ = hidden_unit_order(w1, weak_threshold)
    else:
        order = np.arange(n_h, dtype=np.int64)
    w1s, w2s = w1[:, order], w2[order, :]
    hidden_label = "hidden unit (sorted by phase)" if sort_by_phase else "hidden unit"
    panels = [
        (w1s, "$W_1$ (input to hidden)", hidden_label, "input fibre"),
        (w2s, "$W_2$ (hidden to output)", "output class", hidden_label),
        (w1 @ w2, "$W_1 W_2$ (input to output)", "output class", "input fibre"),
    ]
    if fig is None:
        fig = plt.figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[max(n_h, 8), 10, 10])
    for ax, (w, title, xlabel, ylabel) in zip(axes, panels):
        v = _symmetric_limit(w)
        im = ax.imshow(w, aspect="auto", interpolation="nearest", origin="lower",
                       cmap=_WEIGHT_CMAP, vmin=-v, vmax=v)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label("weight (a.u.)")
        if ylabel == "input fibre" and n_in % 2 == 0:
            ax.axhline(n_in / 2 - 0.5, color="k", lw=0.8, ls="--")
    fig.sort_order = order
    return fig


def w1_profiles(w1, units=None, n=8, *, stimulus=None, fig=None):
    """W1 weights of some hidden units against the fibres' phase delay, per ear.

    For each hidden unit ``j`` two lines: ``w1[:N_a, j]`` (right ear, the first half of the
    rows) and ``w1[N_a:, j]`` (left ear, the second half) against the phase delay of the
    fibres, ``linspace(0, 90, N_a)`` degrees as in :class:`~spikeloc.Stimulus` (with
    ``stimulus.null_phase_delays`` all delays are 0 and the x axis is the fibre index
    instead). The seed tutorial labelled this axis ``linspace(-90, 90, N_a)``, which does
    not match the fibres' delays; the curves are the same.

    ``w1`` may be a model with ``.w1``. ``units``: the hidden units to show; by default the
    ``n`` units with the largest ``max |w1[:, j]|`` (the tutorial picked units above 0.5),
    shown in the order of :func:`hidden_unit_order`. Returns the Figure (one axes per unit,
    4 per row, shared y axis; the figure attribute ``units_shown`` lists the units shown).
    """
    plt = _pyplot()
    if hasattr(w1, "w1"):
        w1 = _model_weights(w1)[0]
    w1 = np.asarray(w1, dtype=np.float64)
    if w1.ndim != 2 or w1.shape[0] % 2:
        raise ValueError(f"w1 must have shape (2 N_a, N_h), got {w1.shape}")
    n_a = w1.shape[0] // 2
    if units is None:
        strength = np.max(np.abs(w1), axis=0)
        strongest = np.argsort(-strength, kind="stable")[:max(1, int(n))]
        order, _ = hidden_unit_order(w1)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        units = strongest[np.argsort(rank[strongest], kind="stable")]
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size == 0:
        raise ValueError("no hidden units to show")
    if units.min() < 0 or units.max() >= w1.shape[1]:
        raise ValueError(f"units must be in [0, {w1.shape[1]})")
    if stimulus is not None and getattr(stimulus, "null_phase_delays", False):
        x, xlabel = np.arange(n_a), "fibre index (no phase delays)"
    else:
        x, xlabel = np.linspace(0.0, 90.0, n_a), "phase delay (deg)"
    def draw(ax, j):
        ax.plot(x, w1[:n_a, j], color="tab:blue", label="right ear")
        ax.plot(x, w1[n_a:, j], color="tab:orange", label="left ear")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(f"hidden unit {j}")

    return _unit_grid(plt, fig, units, draw, xlabel, "weight (a.u.)",
                      "Individual $W_1$ weights")


def _unit_grid(plt, fig, units, draw, xlabel, ylabel, title):
    """A grid of up to 4 columns with one panel per unit, ``draw(ax, unit)`` filling each;
    shared axes, labels on the outer panels, the legend on the first."""
    k = units.size
    ncols = min(4, k)
    nrows = math.ceil(k / ncols)
    if fig is None:
        fig = plt.figure(figsize=(3.0 * ncols, 2.4 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= k:
            ax.remove()
            continue
        draw(ax, units[i])
        if i % ncols == 0:
            ax.set_ylabel(ylabel)
        if i >= k - ncols:
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    fig.units_shown = units
    return fig


# ---------------------------------------------------------------------------- delays


def delays(model, stimulus=None, *, units=None, n=8, fig=None):
    """The delays of a model with :class:`~spikeloc.Delays` against the fibres' phase delays,
    per ear (MODEL.md section 7).

    One delay per input: one axes, the delay of each fibre (ms; steps without a time step)
    against its phase delay (deg; the fibre index with ``stimulus.null_phase_delays``), the
    right ear (inputs ``0 .. N_a - 1``) and the left ear (``N_a .. 2 N_a - 1``). With the
    stimulus known, a dashed line shows the delays that would undo the phase delays in time,
    ``psi / (2 pi f)`` shifted to the mean learned delay: the Jeffress picture, in which delay
    lines bring the fibres' spikes into coincidence.

    One delay per synapse: one axes per shown unit (hidden units, or classes for a
    membrane-only network), the delay of the synapse from each fibre, per ear, the marker
    area showing the size of its weight. ``units``: the units to show; by default the ``n``
    with the largest input weights.

    Returns the Figure (``fig.units_shown``: the units shown, None for per-input delays).
    """
    plt = _pyplot()
    d = np.asarray(getattr(model, "delays", None) if getattr(model, "delay_options", None)
                   else np.empty(0), dtype=np.float64)
    if d.size == 0:
        raise ValueError("the model has no delays (SNN(..., delays=spikeloc.Delays()))")
    n_in = d.shape[0]
    if n_in % 2:
        raise ValueError(f"delays must have an even number of inputs (two ears), got {n_in}")
    n_a = n_in // 2
    dt = getattr(model, "dt", None)
    scale, unit = (1e3 * dt, "ms") if dt else (1.0, "steps")
    null = stimulus is not None and getattr(stimulus, "null_phase_delays", False)
    if null:
        x, xlabel = np.arange(n_a), "fibre index (no phase delays)"
    else:
        x, xlabel = np.linspace(0.0, 90.0, n_a), "phase delay (deg)"
    if d.ndim == 1:
        if fig is None:
            fig = plt.figure(figsize=(5.0, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.plot(x, d[:n_a] * scale, "o-", color="tab:blue", ms=3, label="right ear")
        ax.plot(x, d[n_a:] * scale, "o-", color="tab:orange", ms=3, label="left ear")
        if stimulus is not None and not null:
            # psi / (2 pi f) [s]: the delay that aligns a fibre with a phase delay psi
            cancel = np.linspace(0.0, 0.25, n_a) / stimulus.freq * 1e3
            ax.plot(x, cancel - cancel.mean() + d.mean() * scale, "k--", lw=0.8,
                    label="undoes the phase delay")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"delay ({unit})")
        ax.legend(fontsize="small")
        fig.suptitle("Learned delay of each input")
        fig.units_shown = None
        return fig
    w = _model_weights(model)[0] if hasattr(model, "w1") else np.asarray(model.w)
    w = np.asarray(w, dtype=np.float64)
    if units is None:
        units = np.argsort(-np.max(np.abs(w), axis=0), kind="stable")[:max(1, int(n))]
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size == 0 or units.min() < 0 or units.max() >= d.shape[1]:
        raise ValueError(f"units must be a non-empty list of units in [0, {d.shape[1]})")
    size = 40.0 * np.abs(w) / max(float(np.max(np.abs(w))), 1e-12)

    def draw(ax, j):
        ax.scatter(x, d[:n_a, j] * scale, s=size[:n_a, j], color="tab:blue", label="right ear")
        ax.scatter(x, d[n_a:, j] * scale, s=size[n_a:, j], color="tab:orange", label="left ear")
        ax.set_title(f"unit {j}")

    return _unit_grid(plt, fig, units, draw, xlabel, f"delay ({unit})",
                      "Learned delay of each synapse (marker area: |weight|)")


# ---------------------------------------------------------------------------- one example


def single_example(model, spikes_one, stimulus=None, label=None, *, fig=None):
    """One example through a network: input raster, hidden raster, output membranes.

    Parameters
    ----------
    model : SNN (or any model whose ``forward`` returns ``output_membrane`` and ``logits``,
        and ``hidden_spikes`` for the hidden raster; a MembraneOnly model gives two rows)
    spikes_one : array (T, N_in) or (1, T, N_in) of 0/1
    stimulus : Stimulus, optional
        For the ear boundary and the class IPDs (``stimulus.midpoints``); otherwise the ears
        are the two halves of the inputs and class ``c`` has IPD ``(c + 1/2) 180 / C - 90``.
    label : int, optional
        True class: its membrane trace is drawn thick and black-edged, and named in the title.

    The time axis is in ms (``model.dt``, else ``stimulus.dt``, else steps). Output membrane
    traces are coloured by their class IPD with a colourbar (as the tutorial's
    ``plot_lines_with_colorbar``). Returns the Figure: 3 rows (2 without hidden spikes) plus
    one colourbar axes; the title gives the predicted class (argmax of the logits).
    """
    plt = _pyplot()
    import matplotlib as mpl

    x = _as_spike_matrix(spikes_one, "spikes_one")
    out = model.forward(np.ascontiguousarray(x[None], dtype=np.uint8))
    membrane = np.asarray(out.output_membrane)[0]
    logits = np.asarray(out.logits)[0]
    hidden = getattr(out, "hidden_spikes", None)
    hidden = None if hidden is None else np.asarray(hidden)[0]
    steps, n_in = x.shape
    c = membrane.shape[1]
    dt = getattr(model, "dt", None)
    if dt is None and stimulus is not None:
        dt = stimulus.dt
    split = stimulus.anf_per_ear if stimulus is not None else (n_in // 2 if n_in % 2 == 0
                                                               else None)
    if stimulus is not None:
        centres = stimulus.midpoints(np.arange(c)) * _DEG
    else:
        centres = _class_centres_deg(c)
    t0, t1, tlabel, per_step = _time_axis(steps, dt)
    predicted = int(np.argmax(logits))

    rows = 3 if hidden is not None else 2
    if fig is None:
        fig = plt.figure(figsize=(8, 2.6 * rows + 0.4), layout="constrained")
    gs = fig.add_gridspec(rows, 2, width_ratios=[1, 0.03],
                          height_ratios=[1.2] + [1] * (rows - 1))
    ax_in = fig.add_subplot(gs[0, 0])
    _raster(ax_in, x, dt, ear_split=split)
    ax_in.set_title("Input spikes (right ear below the red line, left ear above)")
    axes = [ax_in]
    if hidden is not None:
        ax_h = fig.add_subplot(gs[1, 0], sharex=ax_in)
        _raster(ax_h, hidden, dt, cmap="Greys", ylabel="hidden unit")
        ax_h.set_title(f"Hidden spikes ({int(hidden.sum())} spikes)")
        axes.append(ax_h)
    ax_m = fig.add_subplot(gs[rows - 1, 0], sharex=ax_in)
    cmap = mpl.colormaps[_CLASS_CMAP]
    edges = _class_edges_deg(c) if stimulus is None else np.concatenate(
        [[centres[0] - (centres[1] - centres[0]) / 2 if c > 1 else -90.0],
         (centres[:-1] + centres[1:]) / 2 if c > 1 else [],
         [centres[-1] + (centres[-1] - centres[-2]) / 2 if c > 1 else 90.0]])
    norm = mpl.colors.BoundaryNorm(edges, cmap.N)
    t = (np.arange(steps) + 0.5) * per_step
    for k in range(c):
        ax_m.plot(t, membrane[:, k], color=cmap(norm(centres[k])), lw=1.2, zorder=2)
    if label is not None:
        label = int(label)
        if not 0 <= label < c:
            raise ValueError(f"label must be in [0, {c}), got {label}")
        ax_m.plot(t, membrane[:, label], color="k", lw=3.2, zorder=3)
        ax_m.plot(t, membrane[:, label], color=cmap(norm(centres[label])), lw=1.8, zorder=4,
                  label=f"true class ({centres[label]:g} deg)")
        ax_m.legend(loc="upper left", fontsize="small")
    ax_m.set_xlabel(tlabel)
    ax_m.set_ylabel("output membrane (a.u.)")
    ax_m.set_xlim(t0, t1)
    title = f"Output membranes: predicted {centres[predicted]:g} deg"
    if label is not None:
        title += f", true {centres[label]:g} deg"
    ax_m.set_title(title)
    axes.append(ax_m)
    for ax in axes[:-1]:
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
    cax = fig.add_subplot(gs[rows - 1, 1])
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, cax=cax)
    step = max(1, math.ceil(c / 12))
    cb.set_ticks(centres[::step], labels=[f"{v:g}" for v in centres[::step]])
    cb.set_label("class IPD (deg)")
    fig.predicted = predicted
    return fig


# ---------------------------------------------------------------------------- tuning curves
# (issue 4 item 9; appended as one block)


def tuning_curves(curves, *, sort=True, units=None, heatmap=True, fig=None):
    """Hidden firing rate [Hz] against IPD [deg], one curve per hidden unit.

    ``curves``: a :class:`spikeloc.analysis.TuningCurves` (from
    :func:`spikeloc.tuning_curves`) or any object with ``rates`` (N_h, bins) [Hz],
    ``bin_centres`` [rad], ``bin_edges`` [rad] and ``preferred_ipd`` [rad]. ``sort``: order the
    units by preferred IPD (silent units last); ``units``: the units to draw (default all);
    ``heatmap``: add a second panel with the rates as an image (units x IPD). The figure's
    attribute ``order`` holds the drawn units in drawing order.
    """
    plt = _pyplot()
    rates = np.asarray(curves.rates, dtype=np.float64)
    if rates.ndim != 2:
        raise ValueError(f"curves.rates must have shape (N_h, bins), got {rates.shape}")
    centres = np.asarray(curves.bin_centres, dtype=np.float64) * _DEG
    edges = np.asarray(curves.bin_edges, dtype=np.float64) * _DEG
    if centres.shape != (rates.shape[1],) or edges.shape != (rates.shape[1] + 1,):
        raise ValueError("curves.bin_centres / bin_edges do not match curves.rates")
    if units is None:
        order = np.arange(rates.shape[0])
    else:
        order = np.asarray(units, dtype=np.int64).reshape(-1)
        if order.size and (order.min() < 0 or order.max() >= rates.shape[0]):
            raise ValueError(f"units must be in [0, {rates.shape[0]})")
    if sort:
        pref = np.asarray(curves.preferred_ipd, dtype=np.float64)[order]
        order = order[np.argsort(np.where(np.isnan(pref), np.inf, pref), kind="stable")]
    if fig is None:
        fig = plt.figure(figsize=(11, 4) if heatmap else (6, 4), layout="constrained")
    axes = fig.subplots(1, 2 if heatmap else 1, squeeze=False)[0]
    ax = axes[0]
    cmap = plt.get_cmap("viridis")
    for rank, unit in enumerate(order):
        colour = cmap(rank / max(1, len(order) - 1))
        ax.plot(centres, rates[unit], "-", color=colour, lw=1.2, marker=".", ms=4)
    ax.set_xlabel("IPD (deg)")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_title(f"Tuning curves ({len(order)} hidden units"
                 + (", colour: preferred IPD)" if sort else ")"))
    if heatmap:
        axh = axes[1]
        shown = rates[order] if len(order) else np.zeros((0, rates.shape[1]))
        finite = shown[np.isfinite(shown)]
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        im = axh.imshow(np.ma.masked_invalid(shown), aspect="auto", origin="lower",
                        extent=(edges[0], edges[-1], -0.5, len(order) - 0.5),
                        cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
        axh.set_xlabel("IPD (deg)")
        axh.set_ylabel("hidden unit (sorted by preferred IPD)" if sort else "hidden unit")
        fig.colorbar(im, ax=axh, label="firing rate (Hz)")
        axh.set_title("Firing rate")
    fig.order = order
    return fig


# ---------------------------------------------------------------------------- sweeps


def errorbar(table, metrics, param, *, ax=None, labels=None, ddof=0, scale=1.0, ylabel=None,
             **where):
    """The seeds' sweep figure: mean +/- standard deviation over repeats of one or more
    metrics against a parameter (``plt.errorbar(..., fmt='o', capsize=5)``).

    Parameters
    ----------
    table : SweepResult
        The table of :func:`spikeloc.sweep`.
    metrics : str or list of str
        Metric names (e.g. ``["train_accuracy", "test_accuracy"]``), one series each.
    param : str
        The parameter on the x axis (e.g. ``"envelope_power"``).
    labels : list of str, optional
        Legend labels (default: the metric names).
    ddof : int
        Delta degrees of freedom of the standard deviation (0 as the seeds' ``np.std``).
    scale : float
        Factor applied to the values (e.g. 100 for accuracies in %).
    ylabel : str, optional
        y-axis label (default: "mean +/- std").
    **where
        Values of the other parameters, when more than one varies.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; ``ax.errorbar_data`` holds ``{metric: (x, mean, std, n)}``.
    """
    plt = _pyplot()
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics: give at least one metric name")
    if labels is None:
        labels = metrics
    elif len(labels) != len(metrics):
        raise ValueError(f"labels has {len(labels)} entries but there are {len(metrics)} "
                         f"metrics")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    else:
        fig = ax.figure
    data = {}
    for metric, label in zip(metrics, labels):
        x, mean, std, n = table.series(metric, param, ddof=ddof, **where)
        data[metric] = (x, mean, std, n)
        ax.errorbar(x, np.asarray(mean, dtype=float) * scale,
                    yerr=np.asarray(std, dtype=float) * scale, fmt="o", capsize=5,
                    label=label)
    ax.set_xlabel(param)
    ax.set_ylabel(ylabel or "mean +/- std")
    if len(metrics) > 1 or labels is not metrics:
        ax.legend(loc="best")
    ax.errorbar_data = data
    return fig


# ---------------------------------------------------------------------------- e-prop
# (spikeloc.EPropNetwork, MODEL.md section 5; the figures of seed 003)


def eprop_dynamics(recording, spikes, sample=0, *, label=None, loss="mse", dt=None, n_units=5,
                   title=None, fig=None):
    """The dynamic variables of one sample of an :class:`~spikeloc.EPropNetwork` recording
    (seed 003's "dynamic variables" figure): input spikes, recurrent spikes, voltages v,
    pseudo-derivatives psi and learning signals L of the first ``n_units`` units, readout y
    (the true class drawn thick) and, with ``label``, the error in the window: y - onehot
    (``loss="mse"``) or softmax(y) - onehot (``loss="cross_entropy"``).

    recording : :class:`~spikeloc.eprop.EPropOutput` (from ``net.record(spikes, labels)``)
    spikes : the input spikes of the recorded batch, (B, T, N_in) (dense)
    sample : which sample of the batch; dt : time step [s] for a time axis in ms
    Returns the Figure.
    """
    plt = _pyplot()
    x = np.asarray(spikes)[sample]
    z = np.asarray(recording.spikes)[sample]
    steps = z.shape[0]
    t0, t1, tlabel, per_step = _time_axis(steps, dt)
    t = (np.arange(steps) + 0.5) * per_step
    units = slice(0, min(n_units, z.shape[1]))
    rows = [("input $x_i$", None), ("recurrent $z_j$", None), ("$v_j$", "voltage"),
            (r"$\psi_j$", "psi"), ("$L_j$", "learning_signal"), ("readout $y_k$", "readout")]
    if label is not None:
        rows.append((r"$y_k - y^*_k$" if loss == "mse" else r"$\pi_k - \pi^*_k$", "error"))
    if fig is None:
        fig = plt.figure(figsize=(8, 1.6 * len(rows) + 0.6))
    axes = fig.subplots(len(rows), 1, sharex=True)
    _raster(axes[0], x, dt, ylabel="input $x_i$")
    _raster(axes[1], z, dt, ylabel="recurrent $z_j$")
    for ax, (name, key) in zip(axes[2:], rows[2:]):
        if key == "readout":
            y = np.asarray(recording.readout)[sample]
            ax.plot(t, y, lw=0.8)
            if label is not None:
                ax.plot(t, y[:, int(label)], color="k", lw=2.0, label="true class")
                ax.legend(loc="upper left", fontsize="small")
        elif key == "error":
            y = np.asarray(recording.readout)[sample]
            target = np.zeros(y.shape[1])
            target[int(label)] = 1.0
            signal = np.asarray(recording.learning_signal)[sample]
            window = np.any(signal != 0, axis=1)
            if loss == "cross_entropy":
                e = np.exp(y - y.max(axis=1, keepdims=True))
                y = e / e.sum(axis=1, keepdims=True)
            err = np.where(window[:, None], y - target, np.nan)
            ax.plot(t, err, lw=0.8)
        else:
            ax.plot(t, np.asarray(getattr(recording, key))[sample][:, units], lw=0.8)
        ax.set_ylabel(name)
    axes[-1].set_xlabel(tlabel)
    axes[-1].set_xlim(t0, t1)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    if title:
        fig.suptitle(title)
    fig.align_ylabels(axes)
    return fig


def eprop_weights(before, after, *, fig=None):
    """Weight matrices of an :class:`~spikeloc.EPropNetwork` before and after training (seed
    003's figure): rows w_in, w_rec, w_out; ``before``/``after`` are ``parameters()`` dicts
    (copies). Shared symmetric colour scale. Returns the Figure."""
    plt = _pyplot()
    names = [n for n in ("w_in", "w_rec", "w_out") if n in before]
    limit = max(_symmetric_limit(before[n]) for n in names)
    limit = max([limit] + [_symmetric_limit(after[n]) for n in names])
    if fig is None:
        fig = plt.figure(figsize=(8, 2.4 * len(names)))
    axes = np.atleast_2d(fig.subplots(len(names), 2, squeeze=False))
    im = None
    for r, name in enumerate(names):
        for c, (what, params) in enumerate((("before", before), ("after", after))):
            ax = axes[r, c]
            im = ax.imshow(np.asarray(params[name]).T, aspect="auto", interpolation="nearest",
                           cmap=_WEIGHT_CMAP, vmin=-limit, vmax=limit)
            ax.set_title(f"{name} {what} training", fontsize="small")
            ax.set_xlabel("presynaptic")
            ax.set_ylabel("postsynaptic")
    fig.colorbar(im, ax=axes, label="weight")
    return fig
