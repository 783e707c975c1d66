"""The training loop (MODEL.md section 3): shuffled mini-batches, Adam or SGD, validation,
best weights, early stopping, progress bar, clean Ctrl-C.

Example::

    import spikeloc as sl
    from spikeloc.training import train

    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, spikes = stim.generate(4096, seed=0, events=True)
    ipd_val, spikes_val = stim.generate(1024, seed=1, events=True)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, tau_hidden=20 * sl.ms)
    history = train(net, ipd, spikes, stimulus=stim, epochs=10, lr=0.01,
                    validation=(ipd_val, spikes_val), patience=3)
    print(history.summary())

Conventions: epochs are numbered from 0 in :class:`History`, in ``callback(epoch, history)``
and in the CSV/JSON files (``history.train_loss[epoch]``); the progress bar and
:meth:`History.summary` print them from 1 ("epoch 3/10"). Losses are mean cross-entropies in
nats; times are wall-clock seconds.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from ._native_api import real_array
from .evaluation import cross_entropy, labels_from_ipd
from .events import as_events
from .optim import SGD, Adam, NonFiniteStepError, Snapshot

__all__ = ["train", "History", "NonFiniteLossError"]

#: Samples per forward call when computing the validation loss (bounds memory).
VALIDATION_CHUNK = 1024

_warned_no_tqdm = False


class NonFiniteLossError(FloatingPointError):
    """A training batch gave a NaN or infinite loss or gradient, or its optimiser step would
    have made a weight NaN or infinite.

    The step is not taken (or undone), so the model's weights, and the optimiser's state, are
    those after the last good step. Attributes: ``epoch``, ``batch`` (both from 0), ``loss``
    and ``history`` (the :class:`History` up to the last completed epoch).
    """

    def __init__(self, message, *, epoch, batch, loss, history):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.loss = loss
        self.history = history


class _HardInterrupt(KeyboardInterrupt):
    """A second Ctrl-C during training: abort at once."""


@dataclass(repr=False)
class History:
    """What :func:`train` recorded, one entry per completed epoch (numbered from 0).

    Attributes
    ----------
    train_loss : list of float
        Mean training loss of each epoch (mean over its batches, each loss computed before
        that batch's step, as the seeds do).
    val_loss, val_accuracy : list of float
        Validation loss (mean cross-entropy over all validation samples, after the epoch) and
        accuracy (fraction); empty without a validation set.
    epoch_time : list of float
        Wall-clock seconds of each epoch (training and validation).
    best_epoch : int or None
        Epoch with the smallest validation loss (the first one on ties); None without
        validation.
    best_val_loss : float or None
        Its validation loss.
    stopped_early : bool
        Training stopped before ``epochs`` because of ``early_stopping``, ``patience`` or the
        callback.
    interrupted : bool
        Training was stopped by Ctrl-C (KeyboardInterrupt).
    stop_reason : str
        ``"completed"``, ``"early_stopping"``, ``"patience"``, ``"callback"``,
        ``"interrupted (epoch e, batch b)"``, ``"non-finite loss (epoch e, batch b)"`` or
        ``"non-finite step (epoch e, batch b)"``.
    steps : int
        Optimiser steps taken.
    restored_best : bool
        The best weights were copied back into the model at the end.
    best_weights : dict or None
        Copy of the weights at ``best_epoch`` (name -> float32 array); see
        :meth:`restore_best`. Not part of :meth:`to_dict`.
    """

    train_loss: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_accuracy: List[float] = field(default_factory=list)
    epoch_time: List[float] = field(default_factory=list)
    best_epoch: Optional[int] = None
    best_val_loss: Optional[float] = None
    stopped_early: bool = False
    interrupted: bool = False
    stop_reason: str = ""
    steps: int = 0
    restored_best: bool = False
    best_weights: Optional[dict] = field(default=None, compare=False)

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self.train_loss)

    def restore_best(self, model) -> None:
        """Copy the best weights (by validation loss) into ``model``'s live arrays."""
        if self.best_weights is None:
            raise ValueError("no best weights recorded (training had no validation set, or "
                             "no epoch completed)")
        params = model.parameters()
        for name, value in self.best_weights.items():
            np.copyto(params[name], value)

    def to_dict(self) -> dict:
        """Plain lists and scalars (no weights), JSON-serialisable."""
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "val_accuracy": list(self.val_accuracy), "epoch_time": list(self.epoch_time),
                "best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "stopped_early": self.stopped_early, "interrupted": self.interrupted,
                "stop_reason": self.stop_reason, "steps": self.steps,
                "restored_best": self.restored_best}

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON (NaN and infinities as null)."""
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v
        with open(path, "w") as f:
            json.dump({k: clean(v) for k, v in self.to_dict().items()}, f, indent=2)
            f.write("\n")

    def to_csv(self, path) -> None:
        """Write one row per epoch: ``epoch,train_loss,val_loss,val_accuracy,epoch_time``
        (epochs from 0; validation columns empty without validation)."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["epoch", "train_loss", "val_loss", "val_accuracy", "epoch_time"])
            for e in range(self.epochs):
                val = self.val_loss[e] if e < len(self.val_loss) else ""
                acc = self.val_accuracy[e] if e < len(self.val_accuracy) else ""
                w.writerow([e, repr(self.train_loss[e]), repr(val) if val != "" else "",
                            repr(acc) if acc != "" else "", repr(self.epoch_time[e])])

    def summary(self) -> str:
        """A readable table of the epochs (numbered from 1) and how training ended."""
        lines = []
        has_val = bool(self.val_loss)
        header = f"{'epoch':>5}  {'train loss':>10}"
        if has_val:
            header += f"  {'val loss':>10}  {'val acc':>7}"
        lines.append(header + f"  {'time (s)':>8}")
        for e in range(self.epochs):
            row = f"{e + 1:>5}  {self.train_loss[e]:>10.5f}"
            if has_val:
                mark = " *" if e == self.best_epoch else ""
                row += f"  {self.val_loss[e]:>10.5f}  {100 * self.val_accuracy[e]:>6.1f}%"
                row += f"  {self.epoch_time[e]:>8.2f}{mark}"
            else:
                row += f"  {self.epoch_time[e]:>8.2f}"
            lines.append(row)
        end = f"stopped: {self.stop_reason or 'not started'} after {self.epochs} epoch(s), " \
              f"{self.steps} steps"
        lines.append(end)
        if self.best_epoch is not None:
            lines.append(f"best validation loss {self.best_val_loss:.5f} at epoch "
                         f"{self.best_epoch + 1} (*)"
                         + ("; weights restored" if self.restored_best else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        def last(xs):
            return "[]" if not xs else f"[..., {xs[-1]:.5g}]" if len(xs) > 1 else f"[{xs[0]:.5g}]"
        return (f"History(epochs={self.epochs}, train_loss={last(self.train_loss)}, "
                f"val_loss={last(self.val_loss)}, best_epoch={self.best_epoch}, "
                f"best_val_loss={self.best_val_loss}, steps={self.steps}, "
                f"stop_reason={self.stop_reason!r})")


class _InterruptGuard:
    """Turns the first Ctrl-C into a request to stop at the next batch boundary.

    Installed only in the main thread and only while SIGINT has Python's default handler (a
    user's own handler is left alone). A second Ctrl-C raises at once (``_HardInterrupt``),
    which :func:`train` lets propagate.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise _HardInterrupt()
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _num_classes(model) -> int:
    n_out = getattr(model, "n_out", None)
    if n_out is not None:
        return int(n_out)
    params = model.parameters()
    return int(list(params.values())[-1].shape[-1])


def _resolve_labels(ipd, labels, n, num_classes, stimulus, what):
    if labels is not None:
        arr = np.asarray(labels)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{what} labels must be an integer array, got dtype {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{what} labels must have shape ({n},) (one per sample), "
                             f"got {arr.shape}")
        if n and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{what} labels must be in [0, {num_classes})")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if ipd is None:
        raise ValueError(f"{what}: give the IPDs (ipd) or the labels")
    ipd = real_array(ipd, f"{what} ipd").astype(np.float64)
    if ipd.shape != (n,):
        raise ValueError(f"{what} ipd must have shape ({n},) (one per sample), got {ipd.shape}")
    if stimulus is not None:
        if stimulus.num_classes != num_classes:
            raise ValueError(f"stimulus has {stimulus.num_classes} classes but the model has "
                             f"{num_classes} outputs")
        return stimulus.labels(ipd)
    return labels_from_ipd(ipd, num_classes)


def _make_optimizer(optimizer, model, lr):
    if isinstance(optimizer, str):
        if optimizer == "adam":
            return Adam(model, lr=lr)
        if optimizer == "sgd":
            return SGD(model, lr=lr)
        raise ValueError(f"optimizer must be 'adam', 'sgd' or an optimizer instance, "
                         f"got {optimizer!r}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must be 'adam', 'sgd' or an object with a step(grads) "
                        f"method, got {type(optimizer).__name__}")
    held = getattr(optimizer, "params", None)
    if isinstance(held, dict):
        live = model.parameters()
        if set(held) != set(live) or any(held[k] is not live[k] for k in live):
            raise ValueError("optimizer does not hold the model's parameter arrays (build it "
                             "with Adam(model, ...) on this model)")
    return optimizer


def _train_step(model, opt, undo, events, labels, index, epoch, batch, history) -> float:
    """One optimiser step on the batch ``index``; returns its loss (before the step).

    Holds the model's lock from the gradient to the step (another thread assigning weights
    waits for the step to finish). Raises NonFiniteLossError, the weights untouched, for a
    non-finite loss or gradient or a step that would make a weight non-finite."""
    where = f"epoch {epoch}, batch {batch}"

    def stop(kind, why, loss, cause=None):
        history.stop_reason = f"non-finite {kind} ({where})"
        raise NonFiniteLossError(
            f"{why} in {where} (both from 0) after {history.steps} steps; the weights are "
            f"those after the last good step (try a smaller lr)", epoch=epoch, batch=batch,
            loss=loss, history=history) from cause

    with getattr(model, "lock", None) or contextlib.nullcontext():
        loss, grads = model.loss_and_grad(events, labels[index], index=index)
        loss = float(loss)
        if not math.isfinite(loss):
            stop("loss", f"non-finite loss (loss = {loss})", loss)
        for name, g in grads.items():
            if not np.isfinite(g).all():
                stop("loss", f"non-finite gradient of {name} (loss = {loss})", loss)
        try:
            _checked_step(opt, grads, undo)
        except NonFiniteStepError as exc:
            stop("step", str(exc), loss, exc)
        after_step = getattr(model, "after_step", None)
        if callable(after_step):
            after_step()  # e.g. clamping learned time constants
    return loss


def _checked_step(opt, grads, undo) -> None:
    """``opt.step(grads)``; with a snapshot ``undo`` of the parameters (an optimiser of the
    user's, which may not check), the parameters are restored and NonFiniteStepError raised
    if the step left one of them non-finite."""
    if undo is None:
        opt.step(grads)
        return
    undo.take()
    opt.step(grads)
    bad = undo.first_non_finite()
    if bad is not None:
        undo.restore()
        raise NonFiniteStepError(f"the optimiser step made {bad!r} NaN or infinite; the "
                                 f"weights were restored", name=bad)


def _positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_options(*, epochs, batch_size=64, seed=0, early_stopping=None, patience=None,
                  validation=False) -> tuple:
    """The checks :func:`train` makes of its scalar options, callable before any data exists
    (``validation``: whether a validation set will be given). Raises ``TypeError`` or
    ``ValueError`` naming the option; returns ``(epochs, batch_size, early_stopping,
    patience)`` as plain ints (or None)."""
    epochs = _positive_int(epochs, "epochs", minimum=0)
    batch_size = _positive_int(batch_size, "batch_size")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if early_stopping is not None:
        early_stopping = _positive_int(early_stopping, "early_stopping", minimum=2)
    if patience is not None:
        patience = _positive_int(patience, "patience")
    if (early_stopping is not None or patience is not None) and not validation:
        raise ValueError("early_stopping and patience need a validation set (validation=...)")
    return epochs, batch_size, early_stopping, patience


def _validation_metrics(model, events, labels):
    """(mean cross-entropy, accuracy) of ``model`` on the whole validation set."""
    get_logits = getattr(model, "logits", None)
    chunks = []
    for start in range(0, len(events), VALIDATION_CHUNK):
        idx = np.arange(start, min(start + VALIDATION_CHUNK, len(events)), dtype=np.int64)
        if callable(get_logits):
            chunks.append(np.asarray(get_logits(events, index=idx)))
        else:
            chunks.append(np.asarray(model.forward(events, index=idx).logits))
    logits = np.concatenate(chunks, axis=0)
    return cross_entropy(logits, labels), float(np.mean(np.argmax(logits, axis=1) == labels))


def _progress_bar(total, enabled):
    global _warned_no_tqdm
    if not enabled:
        return None, False
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if not _warned_no_tqdm:
            warnings.warn("tqdm is not installed: no progress bar (pip install tqdm, or "
                          "spikeloc[progress]); printing one line per epoch instead",
                          RuntimeWarning, stacklevel=3)
            _warned_no_tqdm = True
        return None, True
    return tqdm(total=total, unit="batch", desc="train", leave=True), False


def _regenerated(regenerate, epoch, events, threads):
    """The training inputs of ``epoch`` from ``regenerate``, checked against the old ones."""
    new = as_events(regenerate(epoch), threads=threads)
    if (len(new), new.steps, new.n_in) != (len(events), events.steps, events.n_in):
        raise ValueError(
            f"regenerate({epoch}) returned {len(new)} samples of shape ({new.steps}, "
            f"{new.n_in}), expected {len(events)} samples of shape ({events.steps}, "
            f"{events.n_in}) like the training spikes")
    return new


def train(model, ipd, spikes, *, labels=None, stimulus=None, epochs, lr=0.01, batch_size=64,
          optimizer="adam", validation=None, early_stopping=None, patience=None,
          restore_best=True, seed=0, progress=True,
          callback: Optional[Callable] = None,
          regenerate: Optional[Callable] = None) -> History:
    """Train ``model`` in place on shuffled mini-batches; return the :class:`History`.

    Parameters
    ----------
    model : SNN or MembraneOnly
        Or any object with ``parameters()``, ``loss_and_grad(spikes, labels, index=)`` and
        ``logits(spikes, index=)`` or ``forward(...).logits``.
    ipd : float (n,) or None
        IPDs [rad] of the training samples; classes from ``stimulus.labels(ipd)``, or without
        a stimulus ``labels_from_ipd(ipd, C)`` with ``C = model.n_out`` (MODEL.md section 1).
        May be None when ``labels`` is given.
    spikes : uint8/bool (n, T, N_in) or SpikeEvents
        Training inputs (a dense array is converted to event lists once).
    labels : int (n,), optional
        Classes in [0, C), used instead of deriving them from ``ipd``.
    stimulus : Stimulus, optional
        Gives the class rule.
    epochs : int >= 0
        Maximum number of passes over the training set.
    lr : float
        Learning rate of the optimiser built from a name (ignored for an instance).
    batch_size : int >= 1
        Samples per step; each epoch uses ``n // batch_size`` batches of a fresh permutation,
        and the last incomplete batch is dropped (as the seeds do).
    optimizer : "adam" (:class:`~spikeloc.Adam`), "sgd" (:class:`~spikeloc.SGD`), or an
        optimiser instance holding the model's parameter arrays.
    validation : (ipd_val, spikes_val) or (ipd_val, spikes_val, labels_val), optional
        Validation set, evaluated after each epoch (``ipd_val`` may be None if labels are
        given). Its loss is the mean cross-entropy over all its samples.
    early_stopping : int >= 2, optional
        The rule of seed 000 (its commented-out line ``if
        torch.tensor(val_loss_hist[-10:]).argmin() == 0 and e > 10``) with N in place of 10:
        after epoch ``e`` (from 0) with ``e > N``, stop if the first of the last N
        validation losses is their minimum (ties count as no improvement), i.e. none of the
        N-1 epochs since has improved on it. (The line active in seed 000, ``mean of the last
        10 val losses >= 70``, compares a loss with an accuracy-like 70 and never fires.)
    patience : int >= 1, optional
        Stop when the best validation loss has not improved (strictly) for ``patience``
        epochs. ``early_stopping`` and ``patience`` both need ``validation``.
    restore_best : bool
        With a validation set, copy the weights of the best epoch (lowest validation loss)
        back into the model at the end, unless training was interrupted (see below). Seed
        000 meant to return its best weights but kept references to the live tensors, so it
        returned the last ones.
    seed : int
        Seed of the one ``numpy.random.default_rng`` that draws every epoch's permutation:
        equal seeds give bit-identical runs.
    progress : bool
        Show a tqdm progress bar over batches (running epoch loss and last validation loss
        in the postfix); without tqdm, one line per epoch after a one-time warning.
        ``False`` prints nothing.
    callback : callable, optional
        ``callback(epoch, history)`` after each epoch (once it is recorded); returning True
        stops training (``stop_reason="callback"``).
    regenerate : callable, optional
        ``regenerate(epoch) -> spikes`` (uint8/bool (n, T, N_in) or SpikeEvents, the same
        ``n`` samples in the same order, so the labels stay valid), called before each epoch
        ``epoch >= 1`` to replace the training inputs; epoch 0 uses ``spikes``. Made for
        ``Stimulus(phase_offset="per_epoch")``: ``regenerate=stim.regenerator(ipd, seed)``
        gives every epoch a new phase offset (deterministic from ``(seed, epoch)``) while each
        sample keeps its own random draws. The validation set is not regenerated.

    Interrupting (Ctrl-C)
        The first Ctrl-C stops training at the next batch boundary (the step in progress is
        completed); a KeyboardInterrupt raised from the model's or the optimiser's code is
        caught likewise. ``history.interrupted`` is then True, the interrupted epoch is not
        recorded (its steps are counted in ``history.steps``), and the weights are left as
        after the last completed step: the best weights are *not* restored, so that
        stopping a run by hand never loses its latest state; ``history.restore_best(model)``
        restores them on demand. A second Ctrl-C aborts at once (KeyboardInterrupt
        propagates; the step in progress may be incomplete).

    Raises
    ------
    NonFiniteLossError (a FloatingPointError)
        When a batch's loss or gradient is NaN or infinite, or its optimiser step would make
        a weight NaN or infinite (a huge lr, Adam with ``eps=0``), naming the epoch and
        batch; the offending step is not taken (or is undone), so the weights are those after
        the last good step.

    Returns
    -------
    History
    """
    epochs, batch_size, early_stopping, patience = check_options(
        epochs=epochs, batch_size=batch_size, seed=seed, early_stopping=early_stopping,
        patience=patience, validation=validation is not None)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable(epoch, history)")
    if regenerate is not None and not callable(regenerate):
        raise TypeError("regenerate must be callable(epoch) -> spikes")

    num_classes = _num_classes(model)
    threads = getattr(model, "threads", None)
    events = as_events(spikes, threads=threads)
    n = len(events)
    y = _resolve_labels(ipd, labels, n, num_classes, stimulus, "training")
    n_batches = n // batch_size
    if epochs and n_batches == 0:
        raise ValueError(f"the training set has {n} samples, fewer than batch_size="
                         f"{batch_size}: no complete batch")

    val = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
            raise TypeError("validation must be (ipd_val, spikes_val) or "
                            "(ipd_val, spikes_val, labels_val)")
        v_ipd, v_spikes = validation[0], validation[1]
        v_labels = validation[2] if len(validation) == 3 else None
        v_events = as_events(v_spikes, threads=threads)
        if len(v_events) == 0:
            raise ValueError("the validation set is empty")
        val = (v_events, _resolve_labels(v_ipd, v_labels, len(v_events), num_classes,
                                         stimulus, "validation"))

    opt = _make_optimizer(optimizer, model, lr)
    params = model.parameters()
    # spikeloc's optimisers undo a step that goes non-finite; for any other, train does
    undo = None if isinstance(opt, (SGD, Adam)) else Snapshot(params)
    rng = np.random.default_rng(seed)
    history = History()
    bar, print_epochs = _progress_bar(epochs * n_batches, progress and epochs > 0)

    epoch = b = 0
    try:
        with _InterruptGuard() as guard:
            try:
                for epoch in range(epochs):
                    t0 = time.perf_counter()
                    if regenerate is not None and epoch > 0:
                        events = _regenerated(regenerate, epoch, events, threads)
                    order = rng.permutation(n)
                    total = 0.0
                    for b in range(n_batches):
                        if guard.requested:
                            raise KeyboardInterrupt
                        index = order[b * batch_size:(b + 1) * batch_size]
                        loss = _train_step(model, opt, undo, events, y, index, epoch, b,
                                           history)
                        history.steps += 1
                        total += loss
                        if bar is not None:
                            post = {"epoch": f"{epoch + 1}/{epochs}",
                                    "loss": f"{total / (b + 1):.4f}"}
                            if history.val_loss:
                                post["val"] = f"{history.val_loss[-1]:.4f}"
                            bar.set_postfix(post, refresh=False)
                            bar.update(1)
                    mean_loss = total / n_batches
                    if val is not None:
                        v_loss, v_acc = _validation_metrics(model, *val)
                    history.train_loss.append(mean_loss)
                    if val is not None:
                        history.val_loss.append(v_loss)
                        history.val_accuracy.append(v_acc)
                        if math.isfinite(v_loss) and (history.best_epoch is None
                                                      or v_loss < history.best_val_loss):
                            history.best_epoch = epoch
                            history.best_val_loss = v_loss
                            history.best_weights = {k: v.copy() for k, v in params.items()}
                    history.epoch_time.append(time.perf_counter() - t0)
                    if print_epochs:
                        line = f"epoch {epoch + 1}/{epochs}: loss {mean_loss:.5f}"
                        if val is not None:
                            line += f", val loss {v_loss:.5f}, val acc {100 * v_acc:.1f}%"
                        print(line + f" ({history.epoch_time[-1]:.2f} s)", flush=True)

                    reason = None
                    if callback is not None and callback(epoch, history):
                        reason = "callback"
                    if (early_stopping is not None and epoch > early_stopping
                            and int(np.argmin(history.val_loss[-early_stopping:])) == 0):
                        reason = "early_stopping"
                    if patience is not None:
                        last_best = -1 if history.best_epoch is None else history.best_epoch
                        if epoch - last_best >= patience:
                            reason = reason if reason == "early_stopping" else "patience"
                    if reason is not None and epoch + 1 < epochs:
                        history.stop_reason = reason
                        history.stopped_early = True
                        break
                else:
                    history.stop_reason = "completed"
            except _HardInterrupt:
                raise
            except KeyboardInterrupt:
                history.interrupted = True
                history.stop_reason = f"interrupted (epoch {epoch}, batch {b})"
    finally:
        if bar is not None:
            bar.close()

    if (restore_best and val is not None and not history.interrupted
            and history.best_weights is not None):
        history.restore_best(model)
        history.restored_best = True
    return history
