"""Silencing hidden units: a copy of a model whose chosen hidden units never reach the
output (used by :func:`spikeloc.evaluate` ``(silence=...)`` and :func:`spikeloc.ablation`).
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["silenced"]


def hidden_size(model) -> int:
    params = model.parameters() if callable(getattr(model, "parameters", None)) else {}
    w2 = params.get("w2")
    if w2 is None or np.ndim(w2) != 2:
        raise TypeError(
            f"silencing hidden units needs a feed-forward spiking network with a hidden-to-"
            f"output weight matrix 'w2' (N_h, C), such as spikeloc.SNN; got "
            f"{type(model).__name__}")
    return int(np.shape(w2)[0])


def check_units(units, n_hidden: int, name: str = "silence") -> np.ndarray:
    """Sorted unique hidden-unit indices from a sequence of ints in [0, n_hidden)."""
    arr = np.asarray([] if units is None else units)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be a sequence of hidden-unit indices (ints), got "
                        f"dtype {arr.dtype}")
    arr = arr.reshape(-1).astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_hidden:
        raise ValueError(f"{name} must hold hidden-unit indices in [0, {n_hidden}), got "
                         f"values in [{int(arr.min())}, {int(arr.max())}]")
    return np.unique(arr)


def silenced(model, units):
    """A copy of ``model`` whose hidden units ``units`` never reach the output.

    Forcing a hidden unit's spikes to 0 is, for the feed-forward network of MODEL.md section 2
    (and its variants: Dale's law, time constants, resets, adaptive threshold, spiking
    readout), *exactly* the same as zeroing its row of ``w2``: hidden units do not interact
    (there are no hidden-to-hidden weights and each unit's voltage, reset and threshold depend
    only on its own input ``x W1`` and its own spikes), so the other units' spikes are
    unchanged, and the readout sees the hidden layer only through ``J = S W2``, where a zero
    row of ``W2`` contributes exactly what a zero column of ``S`` would: nothing. With Dale's
    law the effective weight ``|W| sign`` of a zeroed raw weight is 0 as well. The silenced
    units' own spike recordings (``forward().hidden_spikes``) still show their spikes; only
    their effect is removed.

    ``model`` is not modified (the copy is a ``copy.deepcopy``); ``units`` is a sequence of
    indices in [0, N_h) (duplicates allowed, empty: an unchanged copy).
    """
    n_hidden = hidden_size(model)
    units = check_units(units, n_hidden)
    clone = copy.deepcopy(model)
    w2 = clone.parameters()["w2"]
    if units.size:
        w2[units, :] = 0
    return clone
