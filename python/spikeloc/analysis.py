"""Analysis of trained networks (MODEL.md section 4): ablation of hidden
units and tuning curves (hidden firing rate against IPD).

Units: IPDs in radians (bin edges and preferred IPDs), firing rates in Hz (spikes per
second of stimulus), accuracies as fractions in [0, 1].

Example::

    ev = sl.evaluate(net, ipd_test, spikes_test, stim, silence=[3, 17])   # two units off
    abl = sl.ablation(net, ipd_test, spikes_test, stim)                  # each unit in turn
    abl.drop                     # accuracy lost when each hidden unit is silenced
    tc = sl.tuning_curves(net, ipd_test, spikes_test)                    # 12 IPD bins
    tc.rates                     # (N_h, bins) mean firing rate [Hz]
    sl.plots.tuning_curves(tc, sort=True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._native_api import check_int, real_array
from .evaluation import evaluate
from .events import as_events
from .silencing import check_units, hidden_size, silenced

__all__ = ["silenced", "ablation", "Ablation", "tuning_curves", "TuningCurves"]

#: Samples per forward call in :func:`tuning_curves` (bounds the hidden-spike recording).
CHUNK = 1024


@dataclass
class Ablation:
    """Accuracy with each hidden unit silenced in turn (:func:`ablation`).

    Attributes
    ----------
    units : int64 (k,)
        The hidden units ablated, in order.
    baseline : float
        Accuracy of the intact model, in [0, 1].
    accuracy : float64 (k,)
        Accuracy with ``units[i]`` silenced.
    drop : float64 (k,)
        ``baseline - accuracy`` (positive: the unit helps).
    mean_abs_error_deg : float64 (k,)
        Mean absolute IPD error [degrees] with ``units[i]`` silenced.
    baseline_error_deg : float
        That of the intact model.
    """

    units: np.ndarray
    baseline: float
    accuracy: np.ndarray
    drop: np.ndarray = field(repr=False)
    mean_abs_error_deg: np.ndarray = field(repr=False)
    baseline_error_deg: float = math.nan

    def most_important(self, n: int = 5) -> np.ndarray:
        """The ``n`` units with the largest accuracy drop (ties: lower index first)."""
        order = np.argsort(-self.drop, kind="stable")
        return self.units[order[:n]]


def ablation(model, ipd, spikes, stimulus=None, *, labels=None, units=None) -> Ablation:
    """Evaluate ``model`` with each hidden unit in ``units`` silenced in turn.

    Parameters
    ----------
    model : SNN (any model with a ``w2`` parameter (N_h, C); see :func:`silenced`)
    ipd, spikes, stimulus, labels
        As for :func:`spikeloc.evaluate` (IPDs in radians).
    units : sequence of int, optional
        Hidden units to ablate (default: all, 0 .. N_h - 1).

    Returns
    -------
    Ablation (the model is not modified).
    """
    # convert dense spikes to event lists once, not in each of the N_h + 1 evaluations
    spikes = as_events(spikes, threads=getattr(model, "threads", None))
    n_hidden = hidden_size(model)
    units = (np.arange(n_hidden, dtype=np.int64) if units is None
             else check_units(units, n_hidden, "units"))
    base = evaluate(model, ipd, spikes, stimulus, labels=labels)
    acc = np.empty(units.size)
    err = np.empty(units.size)
    for i, unit in enumerate(units):
        ev = evaluate(silenced(model, [unit]), ipd, spikes, stimulus, labels=labels)
        acc[i], err[i] = ev.accuracy, ev.mean_abs_error_deg
    return Ablation(units=units, baseline=base.accuracy, accuracy=acc, drop=base.accuracy - acc,
                    mean_abs_error_deg=err, baseline_error_deg=base.mean_abs_error_deg)


@dataclass
class TuningCurves:
    """Hidden firing rate against IPD (:func:`tuning_curves`).

    Attributes
    ----------
    rates : float64 (N_h, n_bins)
        Mean firing rate [Hz] of each hidden unit over the samples of each IPD bin (NaN for
        a bin without samples).
    bin_edges : float64 (n_bins + 1,)
        IPD bin boundaries [rad], increasing.
    bin_centres : float64 (n_bins,)
        Bin midpoints [rad].
    counts : int64 (n_bins,)
        Samples in each bin.
    preferred_ipd : float64 (N_h,)
        Centre [rad] of each unit's bin of highest rate (the first on ties); NaN for a unit
        that never fires.
    sample_rates : float64 (n, N_h)
        Firing rate [Hz] of each unit in each sample (spike count / duration).
    duration : float
        Duration of a sample [s] (``T dt``).
    """

    rates: np.ndarray
    bin_edges: np.ndarray
    bin_centres: np.ndarray
    counts: np.ndarray
    preferred_ipd: np.ndarray
    sample_rates: np.ndarray = field(repr=False)
    duration: float = math.nan

    @property
    def n_hidden(self) -> int:
        """Number of hidden units N_h."""
        return int(self.rates.shape[0])

    def order(self) -> np.ndarray:
        """Hidden units sorted by preferred IPD (silent units last), int64 (N_h,)."""
        key = np.where(np.isnan(self.preferred_ipd), np.inf, self.preferred_ipd)
        return np.argsort(key, kind="stable")


def _bin_edges(bins, num_classes) -> np.ndarray:
    if bins is None:
        bins = num_classes
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, (bool, np.bool_)):
        bins = check_int(bins, "bins", minimum=1)
        return np.linspace(-np.pi / 2, np.pi / 2, bins + 1)
    edges = real_array(bins, "bins").astype(np.float64).reshape(-1)
    if edges.size < 2 or not np.isfinite(edges).all() or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be a number of bins or at least two finite, strictly "
                         "increasing bin edges [rad]")
    return edges


def tuning_curves(model, ipd, spikes, *, bins=None, dt=None) -> TuningCurves:
    """Mean hidden firing rate [Hz] of ``model`` in IPD bins.

    Parameters
    ----------
    model : SNN (anything whose ``forward(spikes, index=)`` returns ``hidden_spikes`` (B, T,
        N_h) and that has a time step ``dt`` [s])
    ipd : float (n,)
        IPD of each sample [rad].
    spikes : uint8/bool (n, T, N_in) or SpikeEvents
        The inputs.
    bins : int or float array, optional
        Number of equal bins over [-pi/2, pi/2] (default: the model's number of classes,
        so the bins are the IPD classes), or the bin edges [rad]. The last bin includes
        its right edge; samples outside the edges are left out.
    dt : float, optional
        Time step [s] (default: ``model.dt``).

    Returns
    -------
    TuningCurves (rates in Hz: a unit's spike count in a sample divided by ``T dt``).
    """

    ipd = real_array(ipd, "ipd").astype(np.float64)
    if ipd.ndim != 1:
        raise ValueError(f"ipd must be one-dimensional (n,), got shape {ipd.shape}")
    if not np.isfinite(ipd).all():
        raise ValueError("ipd contains NaN or infinite values")
    if not callable(getattr(model, "forward", None)):
        raise TypeError(f"tuning_curves needs a model with forward(spikes, index=) returning "
                        f"hidden_spikes, such as spikeloc.SNN; got {type(model).__name__}")
    dt = getattr(model, "dt", None) if dt is None else dt
    if dt is None:
        raise ValueError("the model has no time step dt: give dt= [s]")
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be > 0 [s], got {dt}")
    edges = _bin_edges(bins, getattr(model, "n_out", None) or 12)
    ev = as_events(spikes, threads=getattr(model, "threads", None))
    n = len(ev)
    if n != ipd.shape[0]:
        raise ValueError(f"spikes have {n} samples but ipd has {ipd.shape[0]}")
    duration = ev.steps * dt
    counts_per_sample = []
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(start + CHUNK, n), dtype=np.int64)
        out = model.forward(ev, index=idx)
        hidden = getattr(out, "hidden_spikes", None)
        if hidden is None:
            raise TypeError(
                f"tuning_curves needs a model whose forward() returns hidden_spikes (B, T, "
                f"N_h), such as spikeloc.SNN; {type(model).__name__}.forward returns "
                f"{type(out).__name__}")
        counts_per_sample.append(hidden.sum(axis=1, dtype=np.int64))
    n_hidden = counts_per_sample[0].shape[1] if counts_per_sample else hidden_size(model)
    sample_rates = (np.concatenate(counts_per_sample, axis=0).astype(np.float64) / duration
                    if n else np.zeros((0, n_hidden)))
    n_bins = edges.size - 1
    which = np.searchsorted(edges, ipd, side="right") - 1
    which[ipd == edges[-1]] = n_bins - 1          # the last bin is closed on the right
    inside = (which >= 0) & (which < n_bins)
    counts = np.bincount(which[inside], minlength=n_bins).astype(np.int64)
    sums = np.zeros((n_bins, n_hidden))
    np.add.at(sums, which[inside], sample_rates[inside])
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (sums / counts[:, None]).T
    rates[:, counts == 0] = np.nan
    centres = (edges[:-1] + edges[1:]) / 2
    preferred = np.full(n_hidden, np.nan)
    filled = np.where(np.isnan(rates), -np.inf, rates)
    active = np.nanmax(np.where(np.isnan(rates), 0.0, rates), axis=1) > 0 if n_bins else \
        np.zeros(n_hidden, bool)
    preferred[active] = centres[np.argmax(filled[active], axis=1)]
    return TuningCurves(rates=rates, bin_edges=edges, bin_centres=centres, counts=counts,
                        preferred_ipd=preferred, sample_rates=sample_rates, duration=duration)
