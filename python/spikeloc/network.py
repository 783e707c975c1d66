"""Networks (MODEL.md section 2): the two-layer spiking network and the membrane-only network.

Shapes: spikes ``(B, T, N_in)`` (dense uint8/bool or :class:`~spikeloc.SpikeEvents`),
``w1 (N_in, N_h)``, ``w2 (N_h, C)``, ``w (N_in, C)``, labels ``(B,)`` int64. Times in seconds.
Weights are float32 C-contiguous arrays owned by the model; ``parameters()`` hands out the live
arrays, which the optimisers update in place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._native_api import (READOUTS, _native, as_float32_matrix, check_finite_array, check_index,
                          check_int, check_labels, check_positive, resolve_threads)
from .events import as_events

__all__ = ["SNN", "MembraneOnly", "SNNOutput", "MembraneOutput"]


class SNNOutput(NamedTuple):
    """Result of :meth:`SNN.forward`.

    hidden_spikes : uint8 (B, T, N_h), hidden spike trains s_0 .. s_{T-1}
    output_membrane : float32 (B, T, C), readout membranes u_0 .. u_{T-1}
    logits : float32 (B, C), aggregated membranes (the network's class scores)
    """

    hidden_spikes: np.ndarray
    output_membrane: np.ndarray
    logits: np.ndarray


class MembraneOutput(NamedTuple):
    """Result of :meth:`MembraneOnly.forward`.

    output_membrane : float32 (B, T, C)
    logits : float32 (B, C)
    """

    output_membrane: np.ndarray
    logits: np.ndarray


def _check_readout(readout) -> int:
    if not isinstance(readout, str) or readout not in READOUTS:
        raise ValueError(f"readout must be one of {sorted(READOUTS)}, got {readout!r}")
    return READOUTS[readout]


def _init_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) as float32."""
    bound = 1.0 / math.sqrt(n_in)
    return np.ascontiguousarray(rng.uniform(-bound, bound, size=(n_in, n_out)), dtype=np.float32)


class _Model:
    """Shared plumbing: batch preparation, parameter access, thread count."""

    n_in: int
    n_out: int
    _param_names: tuple = ()

    def _batch(self, spikes, index):
        """(events, index array or None, batch size), validated against the model."""
        ev = as_events(spikes, threads=self.threads)
        if ev.n_in != self.n_in:
            raise ValueError(
                f"spikes have {ev.n_in} inputs (last axis) but the model has n_in={self.n_in}")
        idx, batch = check_index(index, ev.n_samples)
        return ev, idx, batch

    def _check_params(self):
        for name in self._param_names:
            check_finite_array(getattr(self, "_" + name), name)

    def _set_param(self, name, value, shape):
        new = as_float32_matrix(value, name, shape)
        # Copy into the existing array: optimisers holding it stay attached.
        np.copyto(getattr(self, "_" + name), new)

    def parameters(self) -> dict:
        """The live weight arrays, name -> float32 array (updated in place by optimisers)."""
        return {name: getattr(self, "_" + name) for name in self._param_names}

    @property
    def threads(self) -> int:
        """Worker threads of the kernels (0: all cores)."""
        return self._threads

    @threads.setter
    def threads(self, value):
        self._threads = resolve_threads(value)

    def predict(self, spikes, index=None) -> np.ndarray:
        """Predicted classes ``argmax(logits)``, int64 (B,)."""
        return np.argmax(self._logits(spikes, index), axis=1).astype(np.int64)

    def save(self, path, stimulus=None, *, extra=None) -> str:
        """Write this model to the checkpoint file ``path`` (atomically), optionally with the
        :class:`~spikeloc.Stimulus` it was trained on and a JSON-serialisable ``extra``.
        See :func:`spikeloc.checkpoint.save`; returns the path written."""
        from .checkpoint import save
        return save(self, path, stimulus=stimulus, extra=extra)

    @classmethod
    def load(cls, path, *, threads=None):
        """Read a model of this class from a checkpoint file (see
        :func:`spikeloc.checkpoint.load`); raises ``CheckpointError`` if the file holds
        another model class."""
        from .checkpoint import CheckpointError, load
        model = load(path, threads=threads)
        if not isinstance(model, cls):
            raise CheckpointError(
                f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model


class SNN(_Model):
    """Two-layer spiking network: LIF hidden layer (delayed reset) and a leaky readout.

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs N_in, hidden units N_h, classes C.
    dt : float
        Time step [s] (must match the stimulus).
    tau_hidden, tau_output : float
        Membrane time constants [s] of the hidden and the readout layer.
    readout : "mean", "sum" or "max"
        Aggregation of the readout membrane over time (the tutorial: "mean").
    beta : float
        Steepness of the sigmoid surrogate gradient.
    seed : int
        Seed of ``numpy.random.default_rng`` for the initial weights
        ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (w1 drawn first, then w2).
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).

    Attributes ``w1`` (N_in, N_h) and ``w2`` (N_h, C) are float32 C-contiguous; assigning to
    them validates the shape and copies the values into the model's arrays.
    """

    _param_names = ("w1", "w2")

    def __init__(self, n_in, n_hidden, n_out, *, dt, tau_hidden, tau_output,
                 readout="mean", beta=5.0, seed=0, threads=None):
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_hidden = check_int(n_hidden, "n_hidden", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self.tau_hidden = check_positive(tau_hidden, "tau_hidden")
        self.tau_output = check_positive(tau_output, "tau_output")
        self._readout_code = _check_readout(readout)
        self.readout = readout
        self.beta = check_positive(beta, "beta")
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        rng = np.random.default_rng(self.seed)
        self._w1 = _init_uniform(rng, self.n_in, self.n_hidden)
        self._w2 = _init_uniform(rng, self.n_hidden, self.n_out)

    @classmethod
    def for_stimulus(cls, stimulus, n_hidden=100, tau_hidden=20e-3, tau_output=None,
                     **kw) -> "SNN":
        """A network sized for a :class:`~spikeloc.Stimulus` (n_in, dt, num_classes);
        ``tau_output`` defaults to ``tau_hidden``."""
        if tau_output is None:
            tau_output = tau_hidden
        return cls(stimulus.n_in, n_hidden, stimulus.num_classes, dt=stimulus.dt,
                   tau_hidden=tau_hidden, tau_output=tau_output, **kw)

    @property
    def w1(self) -> np.ndarray:
        """Input-to-hidden weights, float32 (N_in, N_h)."""
        return self._w1

    @w1.setter
    def w1(self, value):
        self._set_param("w1", value, (self.n_in, self.n_hidden))

    @property
    def w2(self) -> np.ndarray:
        """Hidden-to-output weights, float32 (N_h, C)."""
        return self._w2

    @w2.setter
    def w2(self, value):
        self._set_param("w2", value, (self.n_hidden, self.n_out))

    @property
    def config(self) -> dict:
        """Constructor arguments (for checkpoints)."""
        return {"model": "SNN", "n_in": self.n_in, "n_hidden": self.n_hidden,
                "n_out": self.n_out, "dt": self.dt, "tau_hidden": self.tau_hidden,
                "tau_output": self.tau_output, "readout": self.readout, "beta": self.beta,
                "seed": self.seed}

    def _abi_config(self, steps: int) -> tuple:
        return (self.n_in, self.n_hidden, self.n_out, steps, self.dt, self.tau_hidden,
                self.tau_output, self._readout_code, self.beta)

    def forward(self, spikes, index=None) -> SNNOutput:
        """Forward pass with recordings.

        spikes : uint8/bool (B, T, N_in) or SpikeEvents; index : optional int64 (B,) sample
        indices into ``spikes`` (the batch). Returns :class:`SNNOutput`.
        """
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        T = ev.steps
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        hidden = np.empty((batch, T, self.n_hidden), dtype=np.uint8)
        membrane = np.empty((batch, T, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(T), ev._abi(), idx, batch, self._w1, self._w2,
                            logits, hidden, membrane, self._threads)
        return SNNOutput(hidden, membrane, logits)

    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w1,
                            self._w2, logits, None, None, self._threads)
        return logits

    def logits(self, spikes, index=None) -> np.ndarray:
        """Class scores, float32 (B, C) (forward pass without recordings)."""
        return self._logits(spikes, index)

    def loss_and_grad(self, spikes, labels, index=None, *, return_logits=False):
        """Mean cross-entropy loss and its surrogate gradient.

        Returns ``(loss, {"w1": grad (N_in, N_h), "w2": grad (N_h, C)})`` (float32 gradients),
        plus the float32 logits (B, C) as a third item if ``return_logits``.
        """
        ev, idx, batch = self._batch(spikes, index)
        labels = check_labels(labels, batch, self.n_out)
        self._check_params()
        g1 = np.empty_like(self._w1)
        g2 = np.empty_like(self._w2)
        logits = np.empty((batch, self.n_out), dtype=np.float32) if return_logits else None
        loss = _native.snn_loss_grad(self._abi_config(ev.steps), ev._abi(), idx, batch, labels,
                                     self._w1, self._w2, g1, g2, logits, self._threads)
        grads = {"w1": g1, "w2": g2}
        return (loss, grads, logits) if return_logits else (loss, grads)

    def __repr__(self) -> str:
        return (f"SNN(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"dt={self.dt}, tau_hidden={self.tau_hidden}, tau_output={self.tau_output}, "
                f"readout={self.readout!r})")


class MembraneOnly(_Model):
    """The tutorial's membrane-only network: a leaky readout driven directly by the inputs.

    Parameters
    ----------
    n_in, n_out : int
        Inputs N_in and classes C.
    dt, tau : float
        Time step and membrane time constant [s].
    readout : "sum" (0.01 x sum over time, the tutorial), "mean" or "max".
    seed : int
        Seed of the initial weights ``w ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``.
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).
    """

    _param_names = ("w",)

    def __init__(self, n_in, n_out, *, dt, tau, readout="sum", seed=0, threads=None):
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self.tau = check_positive(tau, "tau")
        self._readout_code = _check_readout(readout)
        self.readout = readout
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        self._w = _init_uniform(np.random.default_rng(self.seed), self.n_in, self.n_out)

    @classmethod
    def for_stimulus(cls, stimulus, tau=20e-3, **kw) -> "MembraneOnly":
        """A network sized for a :class:`~spikeloc.Stimulus`."""
        return cls(stimulus.n_in, stimulus.num_classes, dt=stimulus.dt, tau=tau, **kw)

    @property
    def w(self) -> np.ndarray:
        """Input-to-output weights, float32 (N_in, C)."""
        return self._w

    @w.setter
    def w(self, value):
        self._set_param("w", value, (self.n_in, self.n_out))

    @property
    def config(self) -> dict:
        """Constructor arguments (for checkpoints)."""
        return {"model": "MembraneOnly", "n_in": self.n_in, "n_out": self.n_out,
                "dt": self.dt, "tau": self.tau, "readout": self.readout, "seed": self.seed}

    def _abi_config(self, steps: int) -> tuple:
        # n_hidden, tau_hidden and beta are ignored by the membrane-only kernels.
        return (self.n_in, 0, self.n_out, steps, self.dt, self.tau, self.tau,
                self._readout_code, 5.0)

    def forward(self, spikes, index=None) -> MembraneOutput:
        """Forward pass with the membrane recording; returns :class:`MembraneOutput`."""
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        membrane = np.empty((batch, ev.steps, self.n_out), dtype=np.float32)
        _native.mo_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w, logits,
                           membrane, self._threads)
        return MembraneOutput(membrane, logits)

    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        _native.mo_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w, logits,
                           None, self._threads)
        return logits

    def logits(self, spikes, index=None) -> np.ndarray:
        """Class scores, float32 (B, C)."""
        return self._logits(spikes, index)

    def loss_and_grad(self, spikes, labels, index=None, *, return_logits=False):
        """Mean cross-entropy loss and its exact gradient: ``(loss, {"w": grad (N_in, C)})``,
        plus the logits if ``return_logits``."""
        ev, idx, batch = self._batch(spikes, index)
        labels = check_labels(labels, batch, self.n_out)
        self._check_params()
        g = np.empty_like(self._w)
        logits = np.empty((batch, self.n_out), dtype=np.float32) if return_logits else None
        loss = _native.mo_loss_grad(self._abi_config(ev.steps), ev._abi(), idx, batch, labels,
                                    self._w, g, logits, self._threads)
        return (loss, {"w": g}, logits) if return_logits else (loss, {"w": g})

    def __repr__(self) -> str:
        return (f"MembraneOnly(n_in={self.n_in}, n_out={self.n_out}, dt={self.dt}, "
                f"tau={self.tau}, readout={self.readout!r})")
