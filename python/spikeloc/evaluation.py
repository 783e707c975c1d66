"""Evaluation of a trained classifier (MODEL.md section 1): accuracy, absolute error in
degrees, confusion matrix; plus the class rule and a stable cross-entropy.

Units: IPDs in radians (errors reported in degrees), accuracies as fractions in [0, 1]
(printed as percentages).

Example::

    ev = evaluate(net, ipd_test, spikes_test, stim)
    print(ev)                 # Chance accuracy level: 8.3% / Classifier accuracy: ... / ...
    ev.accuracy, ev.mean_abs_error_deg, ev.confusion_normalised

Differences from the seed notebooks' ``analyse`` / ``test_accuracy`` (seeds 000 and 002):
the seeds go through their shuffling ``data_generator``, which drops the last incomplete
batch, and average per-batch accuracies; :func:`evaluate` uses every sample once and gives
the plain per-sample mean (identical when the set is a whole number of batches). The seeds'
confusion matrix is indexed ``[predicted, true]`` and normalised per column (per true class);
here it is ``[true, predicted]`` and normalised per row, i.e. the transpose of theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._native_api import real_array
from .silencing import silenced

__all__ = ["Evaluation", "evaluate", "cross_entropy", "labels_from_ipd", "class_midpoints"]


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(
            num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def _check_label_array(labels, num_classes: int, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must be in [0, {num_classes}), got values in "
            f"[{int(arr.min())}, {int(arr.max())}]")
    return arr.astype(np.int64)


def labels_from_ipd(ipd, num_classes: int) -> np.ndarray:
    """Class of each IPD [rad]: ``clip(floor((ipd + pi/2) C / pi), 0, C-1)``, int64.

    The same rule as :meth:`spikeloc.Stimulus.labels` (MODEL.md section 1), for when only the
    number of classes ``C`` is known.
    """
    num_classes = _check_num_classes(num_classes)
    arr = real_array(ipd, "ipd").astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("ipd contains NaN or infinite values")
    c = np.floor((arr + np.pi / 2) * num_classes / np.pi)
    return np.clip(c, 0, num_classes - 1).astype(np.int64)


def class_midpoints(labels, num_classes: int) -> np.ndarray:
    """IPD estimate of each class, its midpoint ``(c + 1/2) pi / C - pi/2`` [rad], float64."""
    num_classes = _check_num_classes(num_classes)
    arr = _check_label_array(labels, num_classes)
    return (arr.astype(np.float64) + 0.5) * np.pi / num_classes - np.pi / 2


def cross_entropy(logits, labels) -> float:
    """Mean cross-entropy ``mean_b(-log softmax(logits_b)[labels_b])`` (natural log, nats).

    ``logits``: real (B, C); ``labels``: int (B,) in [0, C). Computed in float64 with the
    max-shifted log-sum-exp, so huge logits do not overflow. An empty batch gives NaN.
    """
    z = real_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (B, C), got {z.shape}")
    batch, num_classes = z.shape
    if num_classes < 1:
        raise ValueError("logits must have at least one class (C >= 1)")
    y = _check_label_array(labels, num_classes)
    if y.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},) like logits' rows, got {y.shape}")
    if batch == 0:
        return math.nan
    z = z.astype(np.float64)
    zmax = z.max(axis=1, keepdims=True)
    shifted = z - zmax
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    nll = log_norm - shifted[np.arange(batch), y]
    return float(nll.mean())


@dataclass
class Evaluation:
    """Classification metrics of a model on a labelled IPD set.

    Attributes
    ----------
    accuracy : float
        Fraction of samples whose predicted class is the true class, in [0, 1].
    mean_abs_error_deg : float
        Mean of ``|ipd - midpoint(predicted)|`` [degrees] (the seeds' "absolute error").
    mean_abs_error_midpoint_deg : float
        Mean of ``|midpoint(true) - midpoint(predicted)|`` [degrees] (0 when all correct).
    chance : float
        Chance accuracy ``1 / C``.
    confusion : int64 (C, C)
        Counts, ``confusion[true, predicted]`` (rows: true class).
    confusion_normalised : float64 (C, C)
        ``confusion`` with each row divided by its sum (rows of classes without samples: 0).
    predicted, true_labels : int64 (n,)
        Predicted and true classes.
    ipd : float64 (n,)
        True IPDs [rad].
    estimate : float64 (n,)
        Midpoint of the predicted class [rad] (the network's IPD estimate).
    n : int
        Number of samples.
    """

    accuracy: float
    mean_abs_error_deg: float
    mean_abs_error_midpoint_deg: float
    chance: float
    confusion: np.ndarray = field(repr=False)
    confusion_normalised: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    true_labels: np.ndarray = field(repr=False)
    ipd: np.ndarray = field(repr=False)
    estimate: np.ndarray = field(repr=False)
    n: int = 0

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.confusion.shape[0])

    @property
    def abs_error_deg(self) -> np.ndarray:
        """Per-sample ``|ipd - estimate|`` [degrees], float64 (n,)."""
        return np.abs(self.ipd - self.estimate) * 180.0 / math.pi

    def report(self, label: str = "") -> str:
        """The seeds' report lines; ``label`` (e.g. ``"Test"``) prefixes the last two, as in
        the seeds' ``analyse`` (``"Test classifier accuracy: 76.5%"``)."""
        acc = "Classifier accuracy" if not label else f"{label} classifier accuracy"
        err = "Absolute error" if not label else f"{label} absolute error"
        return (f"Chance accuracy level: {100 * self.chance:.1f}%\n"
                f"{acc}: {100 * self.accuracy:.1f}%\n"
                f"{err}: {self.mean_abs_error_deg:.1f} deg")

    def __str__(self) -> str:
        return self.report()

    def to_dict(self) -> dict:
        """Scalar metrics and the confusion matrices (as nested lists), JSON-serialisable."""
        return {"n": self.n, "num_classes": self.num_classes, "accuracy": self.accuracy,
                "chance": self.chance, "mean_abs_error_deg": self.mean_abs_error_deg,
                "mean_abs_error_midpoint_deg": self.mean_abs_error_midpoint_deg,
                "confusion": self.confusion.tolist(),
                "confusion_normalised": self.confusion_normalised.tolist()}


def _num_classes_of(model, stimulus) -> int:
    if stimulus is not None:
        return int(stimulus.num_classes)
    if getattr(model, "n_out", None) is not None:
        return int(model.n_out)
    params = model.parameters()
    return int(list(params.values())[-1].shape[-1])


def evaluate(model, ipd, spikes, stimulus=None, *, labels=None, silence=None) -> Evaluation:
    """Evaluate ``model`` on a labelled set.

    Parameters
    ----------
    model : SNN, MembraneOnly, or anything with ``predict(spikes) -> int (n,)``.
    ipd : float (n,)
        True IPDs [rad] (errors are reported in degrees).
    spikes : uint8/bool (n, T, N_in) or SpikeEvents
        The inputs (passed to ``model.predict`` as they are).
    stimulus : Stimulus, optional
        Gives the number of classes and the class rule; without it ``C = model.n_out`` and the
        rule of MODEL.md section 1 (:func:`labels_from_ipd`).
    labels : int (n,), optional
        True classes, if they should not be derived from ``ipd``.
    silence : sequence of int, optional
        Hidden units to silence (their spikes forced to 0) for this evaluation (ablation);
        done on a copy, exactly, by zeroing their rows of ``w2``
        (:func:`spikeloc.silencing.silenced` says why that is exact). The model is unchanged.

    Returns
    -------
    Evaluation
    """
    if silence is not None:  # ablation
        model = silenced(model, silence)
    num_classes = _num_classes_of(model, stimulus)
    ipd = real_array(ipd, "ipd").astype(np.float64)
    if ipd.ndim != 1:
        raise ValueError(f"ipd must be one-dimensional (n,), got shape {ipd.shape}")
    if not np.isfinite(ipd).all():
        raise ValueError("ipd contains NaN or infinite values")
    n = ipd.shape[0]
    if labels is None:
        true = (stimulus.labels(ipd) if stimulus is not None
                else labels_from_ipd(ipd, num_classes))
    else:
        true = _check_label_array(labels, num_classes)
        if true.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) like ipd, got {true.shape}")
    n_spikes = len(spikes)
    if n_spikes != n:
        raise ValueError(f"spikes have {n_spikes} samples but ipd has {n}")
    predicted = _check_label_array(model.predict(spikes), num_classes, "model.predict(...)")
    if predicted.shape != (n,):
        raise ValueError(f"model.predict returned shape {predicted.shape}, expected ({n},)")

    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    rows = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, rows, out=np.zeros(confusion.shape, dtype=np.float64),
                           where=rows > 0)

    estimate = class_midpoints(predicted, num_classes)
    true_mid = class_midpoints(true, num_classes)
    deg = 180.0 / math.pi
    if n:
        accuracy = float(np.mean(predicted == true))
        err = float(np.mean(np.abs(ipd - estimate)) * deg)
        err_mid = float(np.mean(np.abs(true_mid - estimate)) * deg)
    else:
        accuracy = err = err_mid = math.nan
    return Evaluation(accuracy=accuracy, mean_abs_error_deg=err,
                      mean_abs_error_midpoint_deg=err_mid, chance=1.0 / num_classes,
                      confusion=confusion, confusion_normalised=normalised,
                      predicted=predicted, true_labels=true, ipd=ipd, estimate=estimate, n=n)
