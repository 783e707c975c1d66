"""Options of the research variants of :class:`spikeloc.SNN` (MODEL.md section 4).

:class:`Dale` (sign-constrained weights) and :class:`RateRegularizer` (the hidden firing-rate
penalty) are small dataclasses handed to ``SNN(..., dale=..., rate_regularizer=...)``; the
other variants are plain keyword arguments of :class:`~spikeloc.SNN`. This module only holds
configuration and arrays: the computation is in the Swift kernels (``spk_variant_*``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np

from ._abi import RESETS, SURROGATES  # name -> SPK_RESET_* / SPK_SURROGATE_* code
from ._native_api import check_positive, check_real

__all__ = ["Dale", "RateRegularizer", "RESETS", "SURROGATES", "LAYERS"]

#: weight layers Dale's law can constrain
LAYERS = ("w1", "w2")


@dataclass(frozen=True)
class Dale:
    """Dale's law: every presynaptic unit (a row of a weight matrix) is excitatory (+1) or
    inhibitory (-1); the network uses ``W_eff = |W| * sign``, and dW = dW_eff * sign * sgn(W)
    (a weight that reaches exactly 0 stays there, as in the seeds).

    ie_ratio : float in [0, 1]
        Fraction of inhibitory presynaptic units per layer.
    inhibitory : "first" or "random"
        "first": units 0 .. ceil(ie_ratio N) - 1 are inhibitory (the 250 Hz notebook);
        "random": floor(ie_ratio N) units drawn from the model seed (the Dale's law notebook).
    layers : tuple of "w1", "w2"
        The layers under Dale's law (rows of w1 are inputs, rows of w2 hidden units).
    excitatory_only : tuple of "w1", "w2"
        Layers whose units are all excitatory (all signs +1, i.e. ``W_eff = |W| >= 0``). The Dale's
        law notebook's "where is inhibition needed" runs are one line each:
        ``Dale(0.5, excitatory_only=("w1",))`` ("W1 positive") and
        ``Dale(0.5, excitatory_only=("w2",))`` ("W2 positive").
    """

    ie_ratio: float = 0.5
    inhibitory: str = "first"
    layers: Tuple[str, ...] = ("w1", "w2")
    excitatory_only: Tuple[str, ...] = ()

    def __post_init__(self):
        ratio = check_real(self.ie_ratio, "Dale.ie_ratio")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"Dale.ie_ratio must be in [0, 1], got {ratio}")
        object.__setattr__(self, "ie_ratio", ratio)
        if self.inhibitory not in ("first", "random"):
            raise ValueError(f"Dale.inhibitory must be 'first' or 'random', got {self.inhibitory!r}")
        for field in ("layers", "excitatory_only"):
            value = getattr(self, field)
            if isinstance(value, str):
                value = (value,)
            value = tuple(value)
            bad = [v for v in value if v not in LAYERS]
            if bad:
                raise ValueError(f"Dale.{field} must name layers among {LAYERS}, got {bad}")
            object.__setattr__(self, field, value)

    def signs(self, layer: str, n: int, rng: np.random.Generator) -> Optional[np.ndarray]:
        """float32 (n,) signs of ``layer``'s presynaptic units, or None if it is unconstrained.
        ``rng`` is used for ``inhibitory="random"`` only."""
        if layer not in self.layers and layer not in self.excitatory_only:
            return None
        signs = np.ones(n, dtype=np.float32)
        if layer in self.excitatory_only:
            return signs
        if self.inhibitory == "first":
            signs[: int(math.ceil(self.ie_ratio * n - 1e-12))] = -1
        else:
            signs[rng.choice(n, int(math.floor(self.ie_ratio * n + 1e-12)), replace=False)] = -1
        return signs

    def to_dict(self) -> dict:
        """The fields as JSON-ready values (lists for the layer tuples)."""
        d = asdict(self)
        d["layers"], d["excitatory_only"] = list(self.layers), list(self.excitatory_only)
        return d


@dataclass(frozen=True)
class RateRegularizer:
    """Firing-rate regulariser on the hidden units, per sample
    r_j = (hidden spikes of unit j) / (T dt) [Hz] and
    L_reg = c mean_j (max(0, r_j - r_max) / r_max)^2, averaged over the batch and added to
    the loss. ``c=None`` means ln(C) (C classes, the loss of a uniform guess)."""

    c: Optional[float] = None
    r_max: float = 100.0

    def __post_init__(self):
        if self.c is not None:
            c = check_real(self.c, "rate_regularizer.c")
            if c < 0:
                raise ValueError(f"rate_regularizer.c must be >= 0, got {c}")
            object.__setattr__(self, "c", c)
        object.__setattr__(self, "r_max", check_positive(self.r_max, "rate_regularizer.r_max"))

    def strength(self, n_classes: int) -> float:
        """The coefficient c for ``n_classes`` classes (ln C when ``c`` is None)."""
        return math.log(n_classes) if self.c is None else self.c


def as_rate_regularizer(value) -> Optional[RateRegularizer]:
    """None, a RateRegularizer, a dict of its fields or a pair (c, r_max)."""
    if value is None or isinstance(value, RateRegularizer):
        return value
    if isinstance(value, dict):
        return RateRegularizer(**value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return RateRegularizer(*value)
    raise TypeError("rate_regularizer must be None, a RateRegularizer or a pair (c, r_max), "
                    f"got {value!r}")


def as_dale(value) -> Optional[Dale]:
    """None, a Dale or a dict of its fields."""
    if value is None or isinstance(value, Dale):
        return value
    if isinstance(value, dict):
        return Dale(**value)
    raise TypeError(f"dale must be None or a spikeloc.Dale, got {type(value).__name__}")
