"""The general network's Python side: delays, recurrence, depth (MODEL.md section 7).

:class:`~spikeloc.SNN` and :class:`~spikeloc.MembraneOnly` run here whenever they use an option
beyond the tutorial's network (the default network keeps its own fast kernel): a
:class:`GeneralNetwork` knows the shape and options of the network, lays its arrays out in the
flat vectors of the C header's ``spk_network`` (:class:`Layout`), and calls the kernels
(``spk_network_forward`` / ``spk_network_loss_grad``). The models own the arrays and the names;
this module owns the layout and the calls.

Names of the arrays: ``w1`` .. ``w{L+1}`` (the weight matrices, [presynaptic, postsynaptic];
``w1`` reads the inputs, the last one is the readout), ``w_rec`` (one hidden layer) or
``w_rec1``, ``w_rec2``, ... (recurrent layers of a deeper network), ``b`` (readout bias),
``delays`` (steps), ``tau_hidden`` or ``tau_hidden1``, ... and ``tau_output`` (time constants,
in seconds in the layout).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ._native_api import _native

__all__ = ["Layout", "GeneralNetwork", "hidden_names"]


def hidden_names(n_layers: int, stem: str) -> List[str]:
    """Names of a per-layer array: ``stem`` for one hidden layer, ``stem1``, ``stem2``, ...
    for a deeper network."""
    return [stem] if n_layers == 1 else [f"{stem}{l + 1}" for l in range(n_layers)]


class Layout:
    """The flat parameter vector of ``spk_network`` (spikeloc.h), block by block:
    for each hidden layer its input weights then (if recurrent) its recurrent weights, the
    readout weights, the bias, the delays, the time constants of each hidden layer and of the
    output. ``blocks`` lists (name, shape, offset); ``sign_blocks`` (matrix name, rows,
    offset) the sign vector of Dale's law, one sign per row of each weight matrix."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, recurrent: Sequence[bool],
                 *, bias: bool = False, delays: Optional[str] = None):
        L = len(hidden)
        dims = [n_in] + list(hidden) + [n_out]
        rec_names = hidden_names(L, "w_rec") if L else []
        self.blocks: List[Tuple[str, tuple, int]] = []
        self.sign_blocks: List[Tuple[str, int, int]] = []
        offset = signs = 0
        for l in range(L + 1):
            for name, shape in [(f"w{l + 1}", (dims[l], dims[l + 1]))] + (
                    [(rec_names[l], (dims[l + 1], dims[l + 1]))] if l < L and recurrent[l] else []):
                self.blocks.append((name, shape, offset))
                self.sign_blocks.append((name, shape[0], signs))
                offset += shape[0] * shape[1]
                signs += shape[0]
        extra = []
        if bias:
            extra.append(("b", (n_out,)))
        if delays is not None:
            extra.append(("delays", (n_in,) if delays == "input" else (n_in, dims[1])))
        extra += [(name, (n,)) for name, n in zip(hidden_names(L, "tau_hidden") if L else [],
                                                   hidden)]
        extra.append(("tau_output", (n_out,)))
        for name, shape in extra:
            self.blocks.append((name, shape, offset))
            offset += int(np.prod(shape))
        self.size, self.sign_size = offset, signs
        self.shapes = {name: shape for name, shape, _ in self.blocks}

    def pack(self, arrays: dict) -> np.ndarray:
        """The float32 parameter vector from ``arrays`` (name -> array; every block's name)."""
        flat = np.empty(self.size, dtype=np.float32)
        for name, shape, offset in self.blocks:
            flat[offset:offset + int(np.prod(shape))] = np.asarray(arrays[name],
                                                                   dtype=np.float32).ravel()
        return flat

    def unpack(self, flat: np.ndarray, names=None) -> dict:
        """name -> float32 array (copies) of the blocks of a parameter or gradient vector
        (only ``names``, if given)."""
        return {name: flat[offset:offset + int(np.prod(shape))].reshape(shape).copy()
                for name, shape, offset in self.blocks if names is None or name in names}

    def pack_signs(self, signs: dict) -> Optional[np.ndarray]:
        """The float32 sign vector from ``signs`` (matrix name -> per-row signs or None for a
        free matrix), or None if no matrix is constrained."""
        if all(signs.get(name) is None for name, _, _ in self.sign_blocks):
            return None
        flat = np.zeros(self.sign_size, dtype=np.float32)
        for name, rows, offset in self.sign_blocks:
            if signs.get(name) is not None:
                flat[offset:offset + rows] = signs[name]
        return flat


class GeneralNetwork:
    """The shape and options of one general network, and its kernel calls.

    n_in, hidden (sizes of the hidden layers, may be empty), n_out, recurrent (one flag per
    layer), dt [s], beta (surrogate scale), reset, surrogate (names), detach_reset,
    adapt_tau [s] or None, adapt_strength, head ("mean", "sum", "max", "spike_count" or
    "window"), window and window_loss
    ("cross_entropy" or "mse") of the window head, timing ("seeds" or "eprop"), bias,
    delays (None, "input" or "synapse") with max_delay [steps], rate (None or (kind, c, ref)),
    dropout."""

    def __init__(self, n_in, hidden, n_out, recurrent, *, dt, beta=5.0, reset="delayed",
                 surrogate="sigmoid", detach_reset=False, adapt_tau=None, adapt_strength=0.0,
                 head="mean", window=0, window_loss="cross_entropy", timing="seeds",
                 bias=False, delays=None, max_delay=0, rate=None, dropout=0.0):
        from ._abi import DELAYS, EPROP_LOSSES, RATES, READOUTS, RESETS, SURROGATES, TIMINGS
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.hidden = [int(n) for n in hidden]
        self.recurrent = [bool(r) for r in recurrent]
        self.dt, self.beta = float(dt), float(beta)
        self._codes = (RESETS[reset], SURROGATES[surrogate], READOUTS[head],
                       EPROP_LOSSES[window_loss], TIMINGS[timing], DELAYS[delays or "none"],
                       RATES["none" if rate is None else rate[0]])
        self.detach_reset = bool(detach_reset)
        self.adapt_tau, self.adapt_strength = adapt_tau, float(adapt_strength)
        self.window, self.bias, self.max_delay = int(window), bool(bias), int(max_delay)
        self.rate = rate
        self.dropout = float(dropout)
        self.layout = Layout(self.n_in, self.hidden, self.n_out, self.recurrent, bias=self.bias,
                             delays=delays)
        self._sizes = np.array(self.hidden, dtype=np.int64)
        self._flags = np.array(self.recurrent, dtype=np.uint8)

    def abi(self, steps: int, dropout_seed: int = 0):
        """The ``spk_network`` struct of a call on data of ``steps`` steps."""
        from ._abi import Network
        reset, surrogate, head, window_loss, timing, delays, rate = self._codes
        L = len(self.hidden)
        c, ref = (0.0, 100.0) if self.rate is None else (float(self.rate[1]), float(self.rate[2]))
        return Network(
            n_in=self.n_in, n_out=self.n_out, steps=int(steps), n_layers=L,
            hidden=self._sizes if L else None, recurrent=self._flags if L else None,
            dt=self.dt, beta=self.beta, reset=reset, surrogate=surrogate,
            detach_reset=int(self.detach_reset),
            adapt_tau=0.0 if self.adapt_tau is None else float(self.adapt_tau),
            adapt_strength=self.adapt_strength if self.adapt_tau is not None else 0.0,
            readout=head, window=self.window, window_loss=window_loss, timing=timing,
            bias=int(self.bias), delays=delays, max_delay=self.max_delay, rate=rate, rate_c=c,
            rate_ref=ref, dropout=self.dropout, dropout_seed=int(dropout_seed))

    def forward(self, events, index, batch, params, signs, threads, *, record=True):
        """Logits (B, C) and, if ``record``, hidden spikes (B, T, sum of the layer sizes) and
        the output membrane (B, T, C) (None otherwise)."""
        T = events.steps
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        hidden = (np.empty((batch, T, sum(self.hidden)), dtype=np.uint8)
                  if record and self.hidden else None)
        membrane = np.empty((batch, T, self.n_out), dtype=np.float32) if record else None
        _native.network_forward(self.abi(T), events._abi(), index, batch, params, signs, logits,
                                hidden, membrane, threads)
        return logits, hidden, membrane

    def loss_grad(self, events, index, batch, labels, params, signs, threads, *,
                  dropout_seed=0, logits=None):
        """(loss, gradient vector in the layout of ``params``); ``logits`` (B, C) float32 is
        filled if given."""
        grads = np.empty_like(params)
        loss = _native.network_loss_grad(self.abi(events.steps, dropout_seed), events._abi(),
                                         index, batch, labels, params, signs, grads, logits,
                                         threads)
        return loss, grads
