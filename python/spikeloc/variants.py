"""Options of the research variants of :class:`spikeloc.SNN` (MODEL.md sections 4 and 7).

:class:`Dale` (sign-constrained weights), :class:`RateRegularizer` (the hidden firing-rate
penalty) and :class:`Delays` (trainable synaptic delays) are small dataclasses handed to
``SNN(..., dale=..., rate_regularizer=..., delays=...)``; the other variants are plain keyword
arguments of :class:`~spikeloc.SNN`. This module only holds configuration and arrays: the
computation is in the Swift kernels (``spk_network_*``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np

from ._abi import RESETS, SURROGATES  # name -> SPK_RESET_* / SPK_SURROGATE_* code
from ._native_api import check_positive, check_real

__all__ = ["Dale", "RateRegularizer", "Delays", "RESETS", "SURROGATES", "LAYERS"]

#: weight layers Dale's law can constrain in the two-layer network ("w3", ... name the
#: matrices of deeper networks; "all" every matrix)
LAYERS = ("w1", "w2")


def _is_layer_name(name) -> bool:
    """"w1", "w2", ... (the k-th weight matrix) or "all"."""
    return isinstance(name, str) and (name == "all" or (name[:1] == "w" and name[1:].isdigit()
                                                        and int(name[1:]) >= 1
                                                        and name[1:] == str(int(name[1:]))))


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
    layers : tuple of "w1", "w2", ... or "all"
        The layers under Dale's law, named by the weight matrix whose rows they are: rows of
        w1 are the inputs, rows of w2 the (first) hidden units, w3 the second hidden layer's
        units in a deeper network; "all": every layer. A recurrent layer's w_rec rows are its
        units, with the signs of the matrix they feed (w2 for the first hidden layer).
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
            bad = [v for v in value if not _is_layer_name(v)]
            if bad:
                raise ValueError(f"Dale.{field} must name weight matrices ('w1', 'w2', ...) or "
                                 f"'all', got {bad}")
            object.__setattr__(self, field, value)

    def signs(self, layer: str, n: int, rng: np.random.Generator) -> Optional[np.ndarray]:
        """float32 (n,) signs of ``layer``'s presynaptic units, or None if it is unconstrained.
        ``rng`` is used for ``inhibitory="random"`` only."""
        if not ({layer, "all"} & set(self.layers)) and not ({layer, "all"} & set(self.excitatory_only)):
            return None
        signs = np.ones(n, dtype=np.float32)
        if {layer, "all"} & set(self.excitatory_only):
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


#: how delays are shared: one per input fibre, or one per input-unit synapse
DELAY_KINDS = ("input", "synapse")


@dataclass(frozen=True)
class Delays:
    """Trainable delays between the inputs and the first layer (MODEL.md section 7).

    A delay ``d`` is a real number of time steps in ``[0, max_steps]``: the input spike at
    step ``n`` reaches the synapse at ``n + d``, split between the two neighbouring steps by
    linear interpolation, so the loss is differentiable in ``d``.

    max_steps : int >= 0
        Largest delay [steps]; delays are clamped to ``[0, max_steps]`` after each optimiser
        step (``after_step``, called by ``train``).
    per : "input" or "synapse"
        One delay per input fibre (axonal delay lines: the Jeffress picture), or one per
        input-unit synapse.
    learn : bool
        Learn the delays with the weights (they join ``parameters()`` as "delays", in steps);
        else they stay at their initial values.
    init : "uniform", "zero" or a number of steps
        Initial delays: ``U(0, max_steps)`` drawn from the model seed (after the weights),
        all 0, or all equal to the number given. ``model.delays = ...`` sets any values.
    """

    max_steps: int = 10
    per: str = "input"
    learn: bool = True
    init: object = "uniform"

    def __post_init__(self):
        from ._native_api import check_int
        object.__setattr__(self, "max_steps", check_int(self.max_steps, "Delays.max_steps",
                                                        minimum=0, maximum=65535))
        if self.per not in DELAY_KINDS:
            raise ValueError(f"Delays.per must be one of {DELAY_KINDS}, got {self.per!r}")
        if not isinstance(self.learn, (bool, np.bool_)):
            raise TypeError(f"Delays.learn must be a bool, got {type(self.learn).__name__}")
        object.__setattr__(self, "learn", bool(self.learn))
        if isinstance(self.init, str):
            if self.init not in ("uniform", "zero"):
                raise ValueError(f"Delays.init must be 'uniform', 'zero' or a number of steps, "
                                 f"got {self.init!r}")
        else:
            value = check_real(self.init, "Delays.init")
            if not 0.0 <= value <= self.max_steps:
                raise ValueError(f"Delays.init must be in [0, max_steps = {self.max_steps}], "
                                 f"got {value}")
            object.__setattr__(self, "init", value)

    def initial(self, shape, rng: np.random.Generator) -> np.ndarray:
        """float32 initial delays of ``shape`` [steps]; ``rng`` is used for "uniform" only."""
        if self.init == "uniform":
            return np.ascontiguousarray(rng.uniform(0.0, self.max_steps, size=shape),
                                        dtype=np.float32)
        value = 0.0 if self.init == "zero" else float(self.init)
        return np.full(shape, value, dtype=np.float32)

    def to_dict(self) -> dict:
        """The fields as JSON-ready values."""
        return asdict(self)


def as_delays(value) -> Optional[Delays]:
    """None, a Delays or a dict of its fields."""
    if value is None or isinstance(value, Delays):
        return value
    if isinstance(value, dict):
        return Delays(**value)
    raise TypeError(f"delays must be None or a spikeloc.Delays, got {type(value).__name__}")
