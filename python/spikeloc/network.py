"""Networks (MODEL.md section 2): the two-layer spiking network and the membrane-only network.

Shapes: spikes ``(B, T, N_in)`` (dense uint8/bool or :class:`~spikeloc.SpikeEvents`),
``w1 (N_in, N_h)``, ``w2 (N_h, C)``, ``w (N_in, C)``, labels ``(B,)`` int64. Times in seconds.
Weights are float32 C-contiguous arrays owned by the model; ``parameters()`` hands out the live
arrays, which the optimisers update in place.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import NamedTuple

import numpy as np

from ._abi import READOUTS, RESETS, SURROGATES, NetConfig, VariantOptions
from ._native_api import (_native, as_float32_matrix, check_finite_array, check_index,
                          check_int, check_labels, check_positive, check_real, real_array,
                          resolve_threads)
from .checkpoint_io import read_model, write_model
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


#: Readouts of a leaky (non-spiking) readout layer; the SNN also has "spike_count".
MEMBRANE_READOUTS = ("mean", "sum", "max")


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of the strings ``choices``, else ValueError (TypeError for a
    value that is not a string) naming ``name`` and the choices."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {sorted(choices)} (a string), got "
                        f"{type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def _check_readout(readout, allowed) -> int:
    """The SPK_READOUT_* code of ``readout``, one of ``allowed``."""
    return READOUTS[check_choice(readout, "readout", allowed)]


def _learned_layers(learn_tau) -> dict:
    """{"hidden": bool, "output": bool}: the layers whose time constants ``learn_tau`` (False,
    True, "hidden" or "output") learns. Only a bool or one of the two names is accepted: 1,
    1.0 or an array would otherwise be read as True or fail in a comparison."""
    if isinstance(learn_tau, (bool, np.bool_)):
        return {"hidden": bool(learn_tau), "output": bool(learn_tau)}
    if not isinstance(learn_tau, str):
        raise TypeError(f"learn_tau must be False, True, 'hidden' or 'output', got "
                        f"{type(learn_tau).__name__}")
    if learn_tau not in ("hidden", "output"):
        raise ValueError(f"learn_tau must be False, True, 'hidden' or 'output', got "
                         f"{learn_tau!r}")
    return {"hidden": learn_tau == "hidden", "output": learn_tau == "output"}


#: Values drawn at a time by :func:`draw_in_blocks` (8 MB of float64).
DRAW_BLOCK = 1 << 20


def draw_in_blocks(draw, shape, dtype=np.float32) -> np.ndarray:
    """``draw(shape)`` (a random draw, float64 or bool) as a C-contiguous ``dtype`` array,
    drawn a block of rows at a time so that the float64 intermediate stays small (a model
    of N values then needs little more than its own float32 arrays, also when a checkpoint
    is loaded). The values are those of one draw of the whole shape: NumPy's generators fill
    an array in C order, one value after another, whatever its shape."""
    out = np.empty(shape, dtype=dtype)
    rows = out.reshape(shape[0], -1) if out.size else out.reshape(-1, 1)
    step = max(1, DRAW_BLOCK // max(1, rows.shape[1]))
    for start in range(0, out.shape[0] if out.size else 0, step):
        stop = min(start + step, out.shape[0])
        rows[start:stop] = draw((stop - start,) + tuple(shape[1:])).reshape(stop - start, -1)
    return out


#: Initial weight bounds (MODEL.md section 2): "seeds" draws an (n_in, n_out) matrix from
#: U(-1/sqrt(n_out), 1/sqrt(n_out)), as the seeds' ``nn.init`` calls compute it (PyTorch takes
#: the fan-in of a 2-d tensor from its second dimension); "fan_in" uses the textbook bound
#: 1/sqrt(n_in).
INITS = ("seeds", "fan_in")


def _init_uniform(rng: np.random.Generator, n_in: int, n_out: int, init: str) -> np.ndarray:
    """(n_in, n_out) ~ U(-bound, bound) as float32, bound 1/sqrt(n_out) ("seeds") or
    1/sqrt(n_in) ("fan_in")."""
    bound = 1.0 / math.sqrt(n_out if init == "seeds" else n_in)
    return draw_in_blocks(lambda size: rng.uniform(-bound, bound, size=size), (n_in, n_out))


#: Most worker threads a kernel call accepts (the kernels' limit, Support.swift).
MAX_THREADS = 4096


def _locked(method):
    """Run ``method`` holding the model's lock (:attr:`_Model.lock`)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return locked


class _Model:
    """Shared plumbing: batch preparation, parameter access, thread count, the lock."""

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

    @property
    def lock(self) -> threading.RLock:
        """The model's lock (reentrant). Every kernel call (``forward``, ``logits``,
        ``predict``, ``loss_and_grad``), every weight assignment (``net.w1 = ...``), ``save``
        and each optimiser step of a spikeloc optimiser built on the model hold it, so that
        threads sharing one model take turns: a kernel never reads weights half assigned,
        and ``train`` holds it from a batch's gradient to its optimiser step, so that an
        assignment from another thread lands between steps. Hold it yourself to read or
        write the arrays of ``parameters()`` in place while other threads use the model::

            with net.lock:
                w1 = net.w1.copy()
        """
        lock = self.__dict__.get("_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_lock", threading.RLock())
        return lock

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_lock", None)  # a lock cannot be copied or pickled; a copy gets its own
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @_locked
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
        threads = resolve_threads(value)
        if threads > MAX_THREADS:  # refused now, not at the model's first kernel call
            raise ValueError(f"threads must be in [0, {MAX_THREADS}] (0: one per core), got "
                             f"{threads}")
        self._threads = threads

    def predict(self, spikes, index=None) -> np.ndarray:
        """Predicted classes ``argmax(logits)``, int64 (B,)."""
        return np.argmax(self._logits(spikes, index), axis=1).astype(np.int64)

    @_locked
    def save(self, path, stimulus=None, *, extra=None) -> str:
        """Write this model to the checkpoint file ``path`` (atomically), optionally with the
        :class:`~spikeloc.Stimulus` it was trained on and a JSON-serialisable ``extra``.
        See :func:`spikeloc.checkpoint.save`; returns the path written."""
        return write_model(self, path, stimulus=stimulus, extra=extra)

    @classmethod
    def load(cls, path, *, threads=None):
        """Read a model of this class from a checkpoint file (see
        :func:`spikeloc.checkpoint.load`); raises ``CheckpointError`` if the file holds
        another model class."""
        return read_model(path, {cls.__name__: cls}, threads=threads)[0]

    # What a checkpoint holds (spikeloc.checkpoint_io): the arrays by name, their layout
    # computed from the configuration alone (so that a file's sizes are checked before
    # anything is allocated), and the model rebuilt from both.

    def _checkpoint_arrays(self) -> dict:
        """The arrays a checkpoint of this model holds (by default its parameters)."""
        return self.parameters()

    @classmethod
    def _checkpoint_layout(cls, config: dict) -> dict:
        """name -> (shape, dtype) of the arrays of a checkpoint with this configuration."""
        raise NotImplementedError

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, threads):
        """The model of a checkpoint: ``cls(**config)`` with the saved parameters."""
        model = cls(**config, threads=threads)
        for name, target in model.parameters().items():
            np.copyto(target, arrays[name])
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
        Aggregation of the readout membrane u over time: "mean" (the tutorial's spiking
        network), "sum" (``0.01 * sum_t u_t``, the factor of the tutorial's membrane-only
        network) or "max".
    beta : float
        Steepness of the sigmoid surrogate gradient.
    seed : int
        Seed of ``numpy.random.default_rng`` for the initial weights (w1 drawn first, then w2).
    init : "seeds" or "fan_in"
        Initial weight bounds: the seeds' (default) ``w1 ~ U(+-1/sqrt(N_h))``,
        ``w2 ~ U(+-1/sqrt(C))``, or the textbook fan-in ``w1 ~ U(+-1/sqrt(N_in))``,
        ``w2 ~ U(+-1/sqrt(N_h))`` (MODEL.md section 2).
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).

    Attributes ``w1`` (N_in, N_h) and ``w2`` (N_h, C) are float32 C-contiguous; assigning to
    them validates the shape and copies the values into the model's arrays.

    Research variants (MODEL.md section 4; keyword-only, all off by default, combinable):

    tau_hidden, tau_output : float or array (N_h,) / (C,)
        A scalar per layer, or a fixed time constant per neuron [s].
    learn_tau : False, True, "hidden" or "output"
        Learn the per-neuron time constants of both layers / one layer: they join
        ``parameters()`` as "tau_hidden" / "tau_output" *in units of the time step dt* (so
        that an optimiser's lr means time steps per update, as in the PLIF study, instead
        of seconds), are drawn at construction from N(tau, tau_sigma) [s] (model seed,
        after the weights) and clamped to >= ``tau_min`` [s, default dt] after each step
        (:meth:`after_step`, called by ``train``). ``tau_var_penalty`` lambda adds
        lambda Var(tau / dt) per learned layer (population variance of the time constants
        in time steps) to the loss and gradient. ``model.tau_hidden`` / ``tau_output``
        give the values in seconds.
    reset : "delayed" (the seeds), "same_step" or "subtractive"
    surrogate : "sigmoid", "fast_sigmoid", "arctan" or "piecewise_linear"; ``beta`` is its scale.
    adapt_tau, adapt_strength : adaptive threshold theta = 1 + adapt_strength b with
        b_{n+1} = rho b_n + (1 - rho) s_n, rho = exp(-dt / adapt_tau) [s]; None: off.
    readout : also "spike_count": spiking output units (same reset and surrogate), whose
        spike counts are the logits.
    dale : None or :class:`spikeloc.Dale` (e.g. ``Dale(0.5)``; "W1 positive":
        ``Dale(0.5, excitatory_only=("w1",))``; "W2 positive":
        ``Dale(0.5, excitatory_only=("w2",))``). ``w1``/``w2`` stay the raw trained arrays;
        ``w1_eff``/``w2_eff`` are the signed weights the network uses (what to analyse).
    rate_regularizer : None, :class:`spikeloc.RateRegularizer` or (c, r_max [Hz]).
    dropout : probability of dropping a hidden spike on its way to the readout during
        ``loss_and_grad`` (kept spikes scaled by 1 / (1 - p)); never in ``forward``/``logits``.
    """

    _param_names = ("w1", "w2")

    def __init__(self, n_in, n_hidden, n_out, *, dt, tau_hidden, tau_output,
                 readout="mean", beta=5.0, seed=0, threads=None, reset="delayed",
                 surrogate="sigmoid", learn_tau=False, tau_min=None, tau_sigma=0.0,
                 tau_var_penalty=0.0, adapt_tau=None, adapt_strength=1.0, dale=None,
                 rate_regularizer=None, dropout=0.0, init="seeds"):
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_hidden = check_int(n_hidden, "n_hidden", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self._readout_code = _check_readout(readout, READOUTS)
        self.readout = readout
        self.beta = check_positive(beta, "beta")
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        self.init = check_choice(init, "init", INITS)
        rng = np.random.default_rng(self.seed)
        self._w1 = _init_uniform(rng, self.n_in, self.n_hidden, self.init)
        self._w2 = _init_uniform(rng, self.n_hidden, self.n_out, self.init)
        self._init_variants(rng, tau_hidden, tau_output, reset=reset, surrogate=surrogate,
                            learn_tau=learn_tau, tau_min=tau_min, tau_sigma=tau_sigma,
                            tau_var_penalty=tau_var_penalty, adapt_tau=adapt_tau,
                            adapt_strength=adapt_strength, dale=dale,
                            rate_regularizer=rate_regularizer, dropout=dropout)

    @classmethod
    def for_stimulus(cls, stimulus, n_hidden=100, tau_hidden=20e-3, tau_output=None,
                     **kw) -> "SNN":
        """A network sized for a :class:`~spikeloc.Stimulus` (n_in, dt, num_classes);
        ``tau_output`` defaults to ``tau_hidden`` (to their mean for per-neuron hidden taus)."""
        if tau_output is None:
            tau_output = tau_hidden if np.ndim(tau_hidden) == 0 else float(
                np.mean(real_array(tau_hidden, "tau_hidden")))  # complex: TypeError, not cast
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
        """Constructor arguments (for checkpoints); variant options only where not default."""
        cfg = {"model": "SNN", "n_in": self.n_in, "n_hidden": self.n_hidden,
               "n_out": self.n_out, "dt": self.dt,
               "tau_hidden": self._tau_arg[0], "tau_output": self._tau_arg[1],
               "readout": self.readout, "beta": self.beta, "seed": self.seed,
               "init": self.init}
        cfg.update(self._variant_config())
        return cfg

    @classmethod
    def _checkpoint_layout(cls, config: dict) -> dict:
        n_in, n_hidden, n_out = (check_int(config.get(k), k, minimum=1)
                                 for k in ("n_in", "n_hidden", "n_out"))
        learned = _learned_layers(config.get("learn_tau", False))
        layout = {"w1": ((n_in, n_hidden), np.float32), "w2": ((n_hidden, n_out), np.float32)}
        for layer, n in (("hidden", n_hidden), ("output", n_out)):
            if learned[layer]:
                layout[f"tau_{layer}"] = ((n,), np.float32)
        return layout

    def _abi_config(self, steps: int) -> NetConfig:
        if self._variant:
            tau_hidden = float(np.mean(self._tau_seconds("hidden")))
            tau_output = float(np.mean(self._tau_seconds("output")))
        else:
            tau_hidden, tau_output = self.tau_hidden, self.tau_output
        return NetConfig(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out, steps=steps,
                         dt=self.dt, tau_hidden=tau_hidden, tau_output=tau_output,
                         readout=self._readout_code, beta=self.beta)

    @_locked
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
        if self._variant:
            _native.variant_forward(self._abi_config(T), self._abi_options(training=False),
                                    ev._abi(), idx, batch, self._w1, self._w2, logits, hidden,
                                    membrane, self._threads)
        else:
            _native.snn_forward(self._abi_config(T), ev._abi(), idx, batch, self._w1, self._w2,
                                logits, hidden, membrane, self._threads)
        return SNNOutput(hidden, membrane, logits)

    @_locked
    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        if self._variant:
            _native.variant_forward(self._abi_config(ev.steps), self._abi_options(training=False),
                                    ev._abi(), idx, batch, self._w1, self._w2, logits, None,
                                    None, self._threads)
            return logits
        _native.snn_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w1,
                            self._w2, logits, None, None, self._threads)
        return logits

    def logits(self, spikes, index=None) -> np.ndarray:
        """Class scores, float32 (B, C) (forward pass without recordings)."""
        return self._logits(spikes, index)

    @_locked
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
        if self._variant:
            loss, grads = self._variant_loss_grad(ev, idx, batch, labels, g1, g2, logits)
            return (loss, grads, logits) if return_logits else (loss, grads)
        loss = _native.snn_loss_grad(self._abi_config(ev.steps), ev._abi(), idx, batch, labels,
                                     self._w1, self._w2, g1, g2, logits, self._threads)
        grads = {"w1": g1, "w2": g2}
        return (loss, grads, logits) if return_logits else (loss, grads)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._variant_config().items())
        tau_h, tau_o = self._tau_arg
        if isinstance(tau_h, list):
            tau_h = f"<{len(tau_h)} values>"
        if isinstance(tau_o, list):
            tau_o = f"<{len(tau_o)} values>"
        return (f"SNN(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"dt={self.dt}, tau_hidden={tau_h}, tau_output={tau_o}, "
                f"readout={self.readout!r}{extra})")

    # ------------------------------------------------------------------ research variants
    # (MODEL.md section 4; computed by spk_variant_* in Sources/SpikeLocKernels/Variants.swift)

    def _init_variants(self, rng, tau_hidden, tau_output, *, reset, surrogate, learn_tau,
                       tau_min, tau_sigma, tau_var_penalty, adapt_tau, adapt_strength, dale,
                       rate_regularizer, dropout):
        from .variants import as_dale, as_rate_regularizer
        self.reset = check_choice(reset, "reset", RESETS)
        self.surrogate = check_choice(surrogate, "surrogate", SURROGATES)
        learned = _learned_layers(learn_tau)
        self.learn_tau = learn_tau if isinstance(learn_tau, str) else bool(learn_tau)
        self.tau_min = self.dt if tau_min is None else check_positive(tau_min, "tau_min")
        self.tau_sigma = check_real(tau_sigma, "tau_sigma")
        if self.tau_sigma < 0:
            raise ValueError(f"tau_sigma must be >= 0, got {self.tau_sigma}")
        self.tau_var_penalty = check_real(tau_var_penalty, "tau_var_penalty")
        if self.tau_var_penalty < 0:
            raise ValueError(f"tau_var_penalty must be >= 0, got {self.tau_var_penalty}")
        taus, args, scalar = {}, [], {}
        for layer, value, n in (("hidden", tau_hidden, self.n_hidden),
                                ("output", tau_output, self.n_out)):
            name = f"tau_{layer}"
            if np.ndim(value) == 0:
                tau0 = check_positive(value, name)
                arr = np.full(n, tau0, dtype=np.float32)
                if learned[layer] and self.tau_sigma > 0:
                    arr = np.maximum(rng.normal(tau0, self.tau_sigma, n),
                                     self.tau_min).astype(np.float32)
                args.append(tau0)
                scalar[layer] = not learned[layer]
            else:
                arr = as_float32_matrix(value, name, (n,))
                if not (arr > 0).all():
                    raise ValueError(f"{name} must be > 0 everywhere")
                args.append([float(v) for v in arr])
                scalar[layer] = False
            taus[layer] = np.ascontiguousarray(arr, dtype=np.float32)
        # fixed time constants [s]; learned ones are parameters in units of dt
        self._tau_fixed = taus
        for layer in ("hidden", "output"):
            if learned[layer]:
                setattr(self, f"_tau_{layer}",
                        np.ascontiguousarray(taus[layer] / np.float32(self.dt), dtype=np.float32))
        self._tau_arg = tuple(args)
        self._tau_scalar = scalar
        self._learned = learned
        names = ["w1", "w2"]
        if learned["hidden"]:
            names.append("tau_hidden")
        if learned["output"]:
            names.append("tau_output")
        self._param_names = tuple(names)
        self.adapt_tau = None if adapt_tau is None else check_positive(adapt_tau, "adapt_tau")
        self.adapt_strength = check_real(adapt_strength, "adapt_strength")
        if self.adapt_strength < 0:
            raise ValueError(f"adapt_strength must be >= 0, got {self.adapt_strength}")
        self.dale = as_dale(dale)
        self._sign1 = self._sign2 = None
        if self.dale is not None:
            self._sign1 = self.dale.signs("w1", self.n_in, rng)
            self._sign2 = self.dale.signs("w2", self.n_hidden, rng)
        self.rate_regularizer = as_rate_regularizer(rate_regularizer)
        self.dropout = check_real(dropout, "dropout")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self._dropout_calls = 0
        self._variant = (reset != "delayed" or surrogate != "sigmoid" or any(learned.values())
                         or not all(scalar.values()) or self.adapt_tau is not None
                         or self.dale is not None or self.rate_regularizer is not None
                         or self.dropout > 0 or self.readout == "spike_count")

    def _variant_config(self) -> dict:
        """The non-default variant options as JSON-ready constructor arguments."""
        cfg = {}
        if self.reset != "delayed":
            cfg["reset"] = self.reset
        if self.surrogate != "sigmoid":
            cfg["surrogate"] = self.surrogate
        if self.learn_tau is not False:
            cfg.update(learn_tau=self.learn_tau, tau_min=self.tau_min, tau_sigma=self.tau_sigma,
                       tau_var_penalty=self.tau_var_penalty)
        if self.adapt_tau is not None:
            cfg.update(adapt_tau=self.adapt_tau, adapt_strength=self.adapt_strength)
        if self.dale is not None:
            cfg["dale"] = self.dale.to_dict()
        if self.rate_regularizer is not None:
            cfg["rate_regularizer"] = {"c": self.rate_regularizer.c,
                                       "r_max": self.rate_regularizer.r_max}
        if self.dropout > 0:
            cfg["dropout"] = self.dropout
        return cfg

    @property
    def tau_hidden(self):
        """Hidden time constant(s) [s]: a float for one fixed value per layer, else a
        float32 array (N_h,) per neuron (learned values after training; for learned time
        constants a fresh copy on each access: assigning into it changes nothing)."""
        return float(self._tau_arg[0]) if self._tau_scalar["hidden"] else self._tau_seconds("hidden")

    @property
    def tau_output(self):
        """Readout time constant(s) [s]: a float, or a float32 array (C,) (see ``tau_hidden``)."""
        return float(self._tau_arg[1]) if self._tau_scalar["output"] else self._tau_seconds("output")

    def _tau_seconds(self, layer: str) -> np.ndarray:
        """float32 time constants [s] of "hidden" or "output" (learned: parameter * dt)."""
        if self._learned[layer]:
            return (getattr(self, f"_tau_{layer}").astype(np.float64) * self.dt).astype(np.float32)
        return self._tau_fixed[layer]
    @property
    def w1_eff(self) -> np.ndarray:
        """The input-to-hidden weights the network uses: ``|w1| * sign`` under Dale's law, else a
        copy of w1 (float32 (N_in, N_h)). Read this back as the trained weights."""
        if self._sign1 is None:
            return self._w1.copy()
        return np.abs(self._w1) * self._sign1[:, None]

    @property
    def w2_eff(self) -> np.ndarray:
        """The hidden-to-output weights the network uses (see ``w1_eff``)."""
        if self._sign2 is None:
            return self._w2.copy()
        return np.abs(self._w2) * self._sign2[:, None]

    @property
    def dale_signs(self) -> dict:
        """Signs per presynaptic unit under Dale's law: {"w1": (N_in,) or None, "w2": ...}."""
        return {"w1": None if self._sign1 is None else self._sign1.copy(),
                "w2": None if self._sign2 is None else self._sign2.copy()}

    @_locked
    def after_step(self) -> None:
        """Clamp learned time constants to >= tau_min (``train`` calls this after each step)."""
        for layer in ("hidden", "output"):
            if self._learned[layer]:
                arr = getattr(self, f"_tau_{layer}")
                np.maximum(arr, np.float32(self.tau_min / self.dt), out=arr)

    def _abi_options(self, training: bool) -> VariantOptions:
        """The variant options of a forward pass (``training=False``: no dropout) or of the
        current training step (dropout with the mask seed of step ``_dropout_calls``: a fresh
        mask for every step, reproducible from the model seed; the step advances the count)."""
        reg = self.rate_regularizer
        seed = 0
        if training and self.dropout > 0:
            seed = (self.seed * 0x9E3779B97F4A7C15 + self._dropout_calls) % 2**64
        return VariantOptions(
            reset=RESETS[self.reset], surrogate=SURROGATES[self.surrogate],
            adapt_tau=0.0 if self.adapt_tau is None else self.adapt_tau,
            adapt_strength=self.adapt_strength, tau_hidden=self._tau_seconds("hidden"),
            tau_output=self._tau_seconds("output"), sign_w1=self._sign1, sign_w2=self._sign2,
            rate_c=0.0 if reg is None else reg.strength(self.n_out),
            rate_max=100.0 if reg is None else reg.r_max, dropout=self.dropout,
            dropout_seed=seed)

    def _variant_loss_grad(self, ev, idx, batch, labels, g1, g2, logits):
        for layer in ("hidden", "output"):
            arr = self._tau_seconds(layer)
            if not (np.isfinite(arr).all() and (arr > 0).all()):
                raise ValueError(f"tau_{layer} must be finite and > 0 everywhere")
        gth = np.empty(self.n_hidden, dtype=np.float32)
        gto = np.empty(self.n_out, dtype=np.float32)
        options = self._abi_options(training=True)
        self._dropout_calls += 1  # the next training step draws fresh dropout masks
        loss = _native.variant_loss_grad(self._abi_config(ev.steps), options, ev._abi(), idx,
                                         batch, labels, self._w1, self._w2, g1, g2, gth, gto,
                                         logits, self._threads)
        grads = {"w1": g1, "w2": g2}
        for layer, g in (("hidden", gth), ("output", gto)):
            if self._learned[layer]:
                # the parameter is tau / dt: dL/d(tau / dt) = dt dL/dtau
                g = (g.astype(np.float64) * self.dt)
                if self.tau_var_penalty > 0:
                    # lambda Var(tau / dt) (population variance) and its gradient
                    t = getattr(self, f"_tau_{layer}").astype(np.float64)
                    loss += self.tau_var_penalty * float(t.var())
                    g += 2.0 * self.tau_var_penalty * (t - t.mean()) / t.size
                grads[f"tau_{layer}"] = g.astype(np.float32)
        return loss, grads


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
        Seed of the initial weights.
    init : "seeds" or "fan_in"
        Initial weight bounds: the seeds' (default) ``w ~ U(+-1/sqrt(C))`` or the textbook
        fan-in ``w ~ U(+-1/sqrt(N_in))`` (MODEL.md section 2).
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).
    """

    _param_names = ("w",)

    def __init__(self, n_in, n_out, *, dt, tau, readout="sum", seed=0, threads=None,
                 init="seeds"):
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self.tau = check_positive(tau, "tau")
        self._readout_code = _check_readout(readout, MEMBRANE_READOUTS)
        self.readout = readout
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        self.init = check_choice(init, "init", INITS)
        self._w = _init_uniform(np.random.default_rng(self.seed), self.n_in, self.n_out,
                                self.init)

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
                "dt": self.dt, "tau": self.tau, "readout": self.readout, "seed": self.seed,
                "init": self.init}

    @classmethod
    def _checkpoint_layout(cls, config: dict) -> dict:
        n_in, n_out = (check_int(config.get(k), k, minimum=1) for k in ("n_in", "n_out"))
        return {"w": ((n_in, n_out), np.float32)}

    def _abi_config(self, steps: int) -> NetConfig:
        # n_hidden, tau_hidden and beta are ignored by the membrane-only kernels.
        return NetConfig(n_in=self.n_in, n_hidden=0, n_out=self.n_out, steps=steps, dt=self.dt,
                         tau_hidden=self.tau, tau_output=self.tau, readout=self._readout_code,
                         beta=5.0)

    @_locked
    def forward(self, spikes, index=None) -> MembraneOutput:
        """Forward pass with the membrane recording; returns :class:`MembraneOutput`."""
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        membrane = np.empty((batch, ev.steps, self.n_out), dtype=np.float32)
        _native.mo_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w, logits,
                           membrane, self._threads)
        return MembraneOutput(membrane, logits)

    @_locked
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

    @_locked
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
