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

from ._abi import READOUTS, RESETS, SURROGATES, NetConfig
from ._native_api import (_native, as_float32_matrix, check_finite_array, check_index,
                          check_int, check_labels, check_positive, check_real, real_array,
                          resolve_threads)
from .checkpoint_io import read_model, write_model
from .events import as_events
from .general import GeneralNetwork, hidden_names

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
        """The arrays a checkpoint of this model holds: its parameters, and its delays
        (also fixed ones, which may have been set)."""
        arrays = dict(self.parameters())
        if getattr(self, "delay_options", None) is not None:
            arrays["delays"] = self._delays
        return arrays

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
        if getattr(model, "delay_options", None) is not None:
            np.copyto(model._delays, arrays["delays"])
        return model


#: Readouts of the spiking network (the general network's "window" head is e-prop's).
SNN_READOUTS = MEMBRANE_READOUTS + ("spike_count",)


def _hidden_sizes(n_hidden) -> list:
    """Hidden layer sizes from ``n_hidden``: an int (one layer) or a non-empty sequence."""
    if np.ndim(n_hidden) == 0:
        return [check_int(n_hidden, "n_hidden", minimum=1)]
    if isinstance(n_hidden, (str, bytes)) or len(n_hidden) == 0:
        raise ValueError(f"n_hidden must be an int or a non-empty list of layer sizes, got "
                         f"{n_hidden!r}")
    return [check_int(n, f"n_hidden[{l}]", minimum=1) for l, n in enumerate(n_hidden)]


def _recurrence(recurrent, layers: int) -> list:
    """One recurrence flag per hidden layer from ``recurrent``: a bool (every layer) or one
    bool per layer."""
    if isinstance(recurrent, (bool, np.bool_)):
        return [bool(recurrent)] * layers
    if isinstance(recurrent, (list, tuple)) and len(recurrent) == layers and all(
            isinstance(r, (bool, np.bool_)) for r in recurrent):
        return [bool(r) for r in recurrent]
    raise TypeError(f"recurrent must be a bool or a list of {layers} bools (one per hidden "
                    f"layer), got {recurrent!r}")


def _per_layer(value, layers: int, name: str) -> list:
    """One entry per hidden layer: ``value`` itself with one layer, else a scalar for every
    layer or a list with one entry (scalar or per-neuron array) per layer."""
    if layers == 1 or np.ndim(value) == 0:
        return [value] * layers
    if isinstance(value, np.ndarray) or len(value) != layers:
        raise ValueError(f"{name} must be a scalar or a list of {layers} entries (one per hidden "
                         f"layer), got {value!r}")
    return list(value)


def _delay_layout(options, n_in: int, n_first: int) -> dict:
    """The checkpoint entry of a model's delays, from its configuration's ``delays``."""
    from .variants import as_delays
    delays = as_delays(options)
    if delays is None:
        return {}
    return {"delays": ((n_in,) if delays.per == "input" else (n_in, n_first), np.float32)}


@_locked
def _set_delays(model, value):
    """Assign the delays of ``model`` [steps], in [0, max_steps]."""
    delays = model.delays
    new = as_float32_matrix(value, "delays", delays.shape)
    top = model.delay_options.max_steps
    if not ((new >= 0) & (new <= top)).all():
        raise ValueError(f"delays must lie in [0, max_steps = {top}]")
    np.copyto(delays, new)


def _clamp_delays(model):
    """Learned delays back into [0, max_steps] (after an optimiser step)."""
    if model.delay_options is not None and model.delay_options.learn:
        np.clip(model._delays, 0.0, np.float32(model.delay_options.max_steps), out=model._delays)


class SNN(_Model):
    """Spiking network: LIF hidden layer(s) and a leaky readout (the tutorial's network by
    default: one hidden layer, delayed reset).

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs N_in, hidden units N_h, classes C. ``n_hidden`` may also be a list of layer
        sizes ``[N_1, N_2, ...]``: stacked LIF layers, each driven by the spikes of the layer
        below (MODEL.md section 7).
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
        Seed of ``numpy.random.default_rng`` for the initial weights (w1 drawn first, then
        w2, ..., then the recurrent weights).
    init : "seeds" or "fan_in"
        Initial weight bounds: the seeds' (default) ``w1 ~ U(+-1/sqrt(N_h))``,
        ``w2 ~ U(+-1/sqrt(C))``, or the textbook fan-in ``w1 ~ U(+-1/sqrt(N_in))``,
        ``w2 ~ U(+-1/sqrt(N_h))`` (MODEL.md section 2); deeper and recurrent weights alike
        (bound 1/sqrt of the columns, or of the rows).
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).

    Attributes ``w1`` (N_in, N_h) and ``w2`` (N_h, C) are float32 C-contiguous; assigning to
    them validates the shape and copies the values into the model's arrays.

    Research variants (MODEL.md section 4; keyword-only, all off by default, combinable):

    tau_hidden, tau_output : float or array (N_h,) / (C,)
        A scalar per layer, or a fixed time constant per neuron [s]. With several hidden
        layers ``tau_hidden`` is a scalar for all of them or a list with one entry (scalar or
        per-neuron array) per layer.
    learn_tau : False, True, "hidden" or "output"
        Learn the per-neuron time constants of both layers / one layer: they join
        ``parameters()`` as "tau_hidden" / "tau_output" *in units of the time step dt* (so
        that an optimiser's lr means time steps per update, as in the PLIF study, instead
        of seconds), are drawn at construction from N(tau, tau_sigma) [s] (model seed,
        after the weights) and clamped to >= ``tau_min`` [s, default dt] after each step
        (:meth:`after_step`, called by ``train``). ``tau_var_penalty`` lambda adds
        lambda Var(tau / dt) per learned layer (population variance of the time constants
        in time steps) to the loss and gradient. ``model.tau_hidden`` / ``tau_output``
        give the values in seconds. Several hidden layers: "tau_hidden1", "tau_hidden2", ...
    reset : "delayed" (the seeds), "same_step", "subtractive" or "zero"
        With v the voltage (threshold 1), s_n = H(v_n - 1), a = exp(-dt / tau), I_n the
        step's input: "same_step" v_{n+1} = (a v_n + I_n)(1 - s_n); "zero" v_{n+1} =
        a v_n (1 - s_n) + I_n (the voltage is set to 0 and the step's input still counts:
        NIR's LIF and snnTorch's ``reset_mechanism="zero"``; exports to NIR exactly);
        "subtractive" v_{n+1} = a v_n + I_n - s_n; "delayed" reads s_{n+1} from v_n.
    surrogate : "sigmoid", "fast_sigmoid", "arctan" or "piecewise_linear"; ``beta`` is its scale.
    adapt_tau, adapt_strength : adaptive threshold theta = 1 + adapt_strength b with
        b_{n+1} = rho b_n + (1 - rho) s_n, rho = exp(-dt / adapt_tau) [s]; None: off.
    readout : also "spike_count": spiking output units (same reset and surrogate), whose
        spike counts are the logits.
    dale : None or :class:`spikeloc.Dale` (e.g. ``Dale(0.5)``; "W1 positive":
        ``Dale(0.5, excitatory_only=("w1",))``; "W2 positive":
        ``Dale(0.5, excitatory_only=("w2",))``). ``w1``/``w2`` stay the raw trained arrays;
        ``w1_eff``/``w2_eff`` are the signed weights the network uses (what to analyse).
        A hidden unit's sign applies to all its outgoing weights (its row of w2, or of w3, ...,
        and of ``w_rec``).
    rate_regularizer : None, :class:`spikeloc.RateRegularizer` or (c, r_max [Hz]) (on every
        hidden layer).
    dropout : probability of dropping a hidden spike on its way to the readout during
        ``loss_and_grad`` (kept spikes scaled by 1 / (1 - p)); never in ``forward``/``logits``.

    Beyond the seeds (MODEL.md section 7; the general network of ``spikeloc.general``):

    recurrent : bool or list of bools
        Recurrent hidden layers: ``w_rec`` (N_h, N_h) adds the spikes of step n to the
        current of step n + 1 (several layers: one flag each, or True for all; weights
        ``w_rec1``, ``w_rec2``, ...), trained by back-propagation through time.
    delays : None or :class:`spikeloc.Delays`
        Trainable delays between the inputs and the first hidden layer
        (``parameters()["delays"]`` in steps, per input or per synapse).
    With several hidden layers the weights are ``w1``, ``w2``, ..., ``w{L+1}`` (the last one
    reads out) and ``forward`` records the spikes of all layers, layer after layer.
    """

    _param_names = ("w1", "w2")

    def __init__(self, n_in, n_hidden, n_out, *, dt, tau_hidden, tau_output,
                 readout="mean", beta=5.0, seed=0, threads=None, reset="delayed",
                 surrogate="sigmoid", learn_tau=False, tau_min=None, tau_sigma=0.0,
                 tau_var_penalty=0.0, adapt_tau=None, adapt_strength=1.0, dale=None,
                 rate_regularizer=None, dropout=0.0, init="seeds", recurrent=False,
                 delays=None):
        from .variants import as_delays
        self.n_in = check_int(n_in, "n_in", minimum=1)
        sizes = _hidden_sizes(n_hidden)
        self.n_hidden = sizes[0] if np.ndim(n_hidden) == 0 else sizes
        self.hidden_sizes = tuple(sizes)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self._readout_code = _check_readout(readout, SNN_READOUTS)
        self.readout = readout
        self.beta = check_positive(beta, "beta")
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        flags = _recurrence(recurrent, len(sizes))
        self.recurrent = flags[0] if isinstance(recurrent, (bool, np.bool_)) and len(set(flags)) == 1 \
            else list(flags)
        self.delay_options = as_delays(delays)
        self.init = check_choice(init, "init", INITS)
        rng = np.random.default_rng(self.seed)
        dims = [self.n_in] + sizes + [self.n_out]
        self._weight_names = tuple(f"w{l + 1}" for l in range(len(sizes) + 1))
        for name, rows, cols in zip(self._weight_names, dims[:-1], dims[1:]):
            setattr(self, "_" + name, _init_uniform(rng, rows, cols, self.init))
        self._rec_names = tuple(name if flag else None for name, flag in
                                zip(hidden_names(len(sizes), "w_rec"), flags))
        for name, n in zip(self._rec_names, sizes):
            if name is not None:
                setattr(self, "_" + name, _init_uniform(rng, n, n, self.init))
        self._init_variants(rng, tau_hidden, tau_output, reset=reset, surrogate=surrogate,
                            learn_tau=learn_tau, tau_min=tau_min, tau_sigma=tau_sigma,
                            tau_var_penalty=tau_var_penalty, adapt_tau=adapt_tau,
                            adapt_strength=adapt_strength, dale=dale,
                            rate_regularizer=rate_regularizer, dropout=dropout)
        if self.delay_options is not None:
            shape = (self.n_in,) if self.delay_options.per == "input" else (self.n_in, sizes[0])
            self._delays = self.delay_options.initial(shape, rng)
        self._init_general()

    @classmethod
    def for_stimulus(cls, stimulus, n_hidden=100, tau_hidden=20e-3, tau_output=None,
                     **kw) -> "SNN":
        """A network sized for a :class:`~spikeloc.Stimulus` (n_in, dt, num_classes);
        ``tau_output`` defaults to ``tau_hidden`` (to their mean for per-neuron hidden taus,
        to the top layer's for several hidden layers)."""
        if tau_output is None:
            # the top layer's entry (several layers: one entry per layer, or one for all)
            top = _per_layer(tau_hidden, len(_hidden_sizes(n_hidden)), "tau_hidden")[-1]
            tau_output = top if np.ndim(top) == 0 else float(
                np.mean(real_array(top, "tau_hidden")))  # complex: TypeError, not cast
        return cls(stimulus.n_in, n_hidden, stimulus.num_classes, dt=stimulus.dt,
                   tau_hidden=tau_hidden, tau_output=tau_output, **kw)

    def _shape(self, name: str) -> tuple:
        """The shape of the weight matrix ``name`` ("w1", ..., "w_rec", ...)."""
        return self._layout_shapes()[name]

    def _layout_shapes(self) -> dict:
        dims = [self.n_in] + list(self.hidden_sizes) + [self.n_out]
        shapes = {name: (dims[l], dims[l + 1]) for l, name in enumerate(self._weight_names)}
        shapes.update({name: (n, n) for name, n in zip(self._rec_names, self.hidden_sizes)
                       if name is not None})
        return shapes

    @property
    def w1(self) -> np.ndarray:
        """Input-to-hidden weights, float32 (N_in, N_h)."""
        return self._w1

    @w1.setter
    def w1(self, value):
        self._set_param("w1", value, self._shape("w1"))

    @property
    def w2(self) -> np.ndarray:
        """Hidden-to-output weights, float32 (N_h, C) (with several hidden layers: the second
        layer's input weights)."""
        return self._w2

    @w2.setter
    def w2(self, value):
        self._set_param("w2", value, self._shape("w2"))

    @property
    def w_rec(self) -> np.ndarray:
        """Recurrent weights of the hidden layer, float32 (N_h, N_h) [presynaptic,
        postsynaptic] (a network with one recurrent hidden layer; else see ``parameters()``)."""
        if self._rec_names != ("w_rec",):
            raise AttributeError("w_rec: this network has no single recurrent hidden layer "
                                 "(see parameters() for w_rec1, w_rec2, ...)")
        return self._w_rec

    @w_rec.setter
    def w_rec(self, value):
        self.w_rec  # the same check
        self._set_param("w_rec", value, self._shape("w_rec"))

    @property
    def delays(self) -> np.ndarray:
        """Delays [steps] between the inputs and the first hidden layer, float32 (N_in,) (per
        input) or (N_in, N_1) (per synapse); assigning checks the range [0, max_steps]."""
        if self.delay_options is None:
            raise AttributeError("delays: this network has no delays (SNN(..., delays=Delays()))")
        return self._delays

    @delays.setter
    def delays(self, value):
        _set_delays(self, value)

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
        n_in, n_out = (check_int(config.get(k), k, minimum=1) for k in ("n_in", "n_out"))
        sizes = _hidden_sizes(config.get("n_hidden"))
        flags = _recurrence(config.get("recurrent", False), len(sizes))
        learned = _learned_layers(config.get("learn_tau", False))
        dims = [n_in] + sizes + [n_out]
        layout = {f"w{l + 1}": ((dims[l], dims[l + 1]), np.float32) for l in range(len(sizes) + 1)}
        for name, n, flag in zip(hidden_names(len(sizes), "w_rec"), sizes, flags):
            if flag:
                layout[name] = ((n, n), np.float32)
        layout.update(_delay_layout(config.get("delays"), n_in, sizes[0]))
        for layer, n in zip(hidden_names(len(sizes), "hidden") + ["output"], sizes + [n_out]):
            if learned["output" if layer == "output" else "hidden"]:
                layout[f"tau_{layer}"] = ((n,), np.float32)
        return layout

    def _abi_config(self, steps: int) -> NetConfig:
        """The config of the tutorial network's fast kernel (spk_snn_*)."""
        return NetConfig(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out, steps=steps,
                         dt=self.dt, tau_hidden=self.tau_hidden, tau_output=self.tau_output,
                         readout=self._readout_code, beta=self.beta)

    @_locked
    def forward(self, spikes, index=None) -> SNNOutput:
        """Forward pass with recordings.

        spikes : uint8/bool (B, T, N_in) or SpikeEvents; index : optional int64 (B,) sample
        indices into ``spikes`` (the batch). Returns :class:`SNNOutput` (with several hidden
        layers, ``hidden_spikes`` holds all of them, layer after layer on the last axis).
        """
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        if self._general is not None:
            logits, hidden, membrane = self._general_forward(ev, idx, batch, record=True)
            return SNNOutput(hidden, membrane, logits)
        T = ev.steps
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        hidden = np.empty((batch, T, self.n_hidden), dtype=np.uint8)
        membrane = np.empty((batch, T, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(T), ev._abi(), idx, batch, self._w1, self._w2,
                            logits, hidden, membrane, self._threads)
        return SNNOutput(hidden, membrane, logits)

    @_locked
    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        if self._general is not None:
            return self._general_forward(ev, idx, batch, record=False)[0]
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, self._w1,
                            self._w2, logits, None, None, self._threads)
        return logits

    def logits(self, spikes, index=None) -> np.ndarray:
        """Class scores, float32 (B, C) (forward pass without recordings)."""
        return self._logits(spikes, index)

    @_locked
    def loss_and_grad(self, spikes, labels, index=None, *, return_logits=False):
        """Mean cross-entropy loss and its surrogate gradient.

        Returns ``(loss, {"w1": grad (N_in, N_h), "w2": grad (N_h, C)})`` (float32 gradients,
        one per array of ``parameters()``), plus the float32 logits (B, C) as a third item if
        ``return_logits``.
        """
        ev, idx, batch = self._batch(spikes, index)
        labels = check_labels(labels, batch, self.n_out)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32) if return_logits else None
        if self._general is not None:
            loss, grads = self._general_loss_grad(ev, idx, batch, labels, logits)
            return (loss, grads, logits) if return_logits else (loss, grads)
        g1 = np.empty_like(self._w1)
        g2 = np.empty_like(self._w2)
        loss = _native.snn_loss_grad(self._abi_config(ev.steps), ev._abi(), idx, batch, labels,
                                     self._w1, self._w2, g1, g2, logits, self._threads)
        grads = {"w1": g1, "w2": g2}
        return (loss, grads, logits) if return_logits else (loss, grads)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._variant_config().items()
                        if k != "delays")
        if self.delay_options is not None:
            extra += f", delays={self.delay_options!r}"
        tau_h, tau_o = self._tau_arg
        if isinstance(tau_h, list):
            tau_h = f"<{len(tau_h)} values>"
        if isinstance(tau_o, list):
            tau_o = f"<{len(tau_o)} values>"
        return (f"SNN(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"dt={self.dt}, tau_hidden={tau_h}, tau_output={tau_o}, "
                f"readout={self.readout!r}{extra})")

    # ------------------------------------------------------------------ research variants
    # (MODEL.md section 4; every variant runs on Swift's general kernel through spk_network_*,
    # Sources/SpikeLocKernels/GeneralNetwork.swift, as recurrence, depth and delays do)

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
        L = len(self.hidden_sizes)
        self._tau_layers = tuple(hidden_names(L, "hidden")) + ("output",)
        values = _per_layer(tau_hidden, L, "tau_hidden") + [tau_output]
        taus, args, scalar, self._learned = {}, [], {}, {}
        for layer, value, n in zip(self._tau_layers, values, list(self.hidden_sizes) + [self.n_out]):
            name = f"tau_{layer}"
            is_learned = learned["output" if layer == "output" else "hidden"]
            self._learned[layer] = is_learned
            if np.ndim(value) == 0:
                tau0 = check_positive(value, name)
                arr = np.full(n, tau0, dtype=np.float32)
                if is_learned and self.tau_sigma > 0:
                    arr = np.maximum(rng.normal(tau0, self.tau_sigma, n),
                                     self.tau_min).astype(np.float32)
                args.append(tau0)
                scalar[layer] = not is_learned
            else:
                arr = as_float32_matrix(value, name, (n,))
                if not (arr > 0).all():
                    raise ValueError(f"{name} must be > 0 everywhere")
                args.append([float(v) for v in arr])
                scalar[layer] = False
            taus[layer] = np.ascontiguousarray(arr, dtype=np.float32)
            if is_learned:  # a parameter in units of dt
                setattr(self, f"_tau_{layer}",
                        np.ascontiguousarray(taus[layer] / np.float32(self.dt), dtype=np.float32))
        # fixed time constants [s]; learned ones are parameters in units of dt
        self._tau_fixed = taus
        self._tau_arg = (args[0] if L == 1 else args[:-1], args[-1])
        self._tau_scalar = scalar
        names = [n for pair in zip(self._weight_names, self._rec_names + (None,)) for n in pair
                 if n is not None]
        if self.delay_options is not None and self.delay_options.learn:
            names.append("delays")
        names += [f"tau_{layer}" for layer in self._tau_layers if self._learned[layer]]
        self._param_names = tuple(names)
        self.adapt_tau = None if adapt_tau is None else check_positive(adapt_tau, "adapt_tau")
        self.adapt_strength = check_real(adapt_strength, "adapt_strength")
        if self.adapt_strength < 0:
            raise ValueError(f"adapt_strength must be >= 0, got {self.adapt_strength}")
        self.dale = as_dale(dale)
        # a sign per presynaptic unit, one array per population: the inputs (rows of w1) and
        # each hidden layer (rows of the matrix it feeds, and of its w_rec)
        self._signs = [None] * (L + 1)
        if self.dale is not None:
            named = set(self.dale.layers) | set(self.dale.excitatory_only)
            unknown = sorted(named - set(self._weight_names) - {"all"})
            if unknown:
                raise ValueError(f"dale: the network has no weight matrix {unknown} (it has "
                                 f"{list(self._weight_names)})")
            dims = [self.n_in] + list(self.hidden_sizes)
            self._signs = [self.dale.signs(name, n, rng)
                           for name, n in zip(self._weight_names, dims)]
        self._sign1, self._sign2 = self._signs[0], (self._signs[1] if L == 1 else None)
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
        if self.recurrent is not False:
            cfg["recurrent"] = self.recurrent
        if self.delay_options is not None:
            cfg["delays"] = self.delay_options.to_dict()
        return cfg

    @property
    def tau_hidden(self):
        """Hidden time constant(s) [s]: a float for one fixed value per layer, else a
        float32 array (N_h,) per neuron (learned values after training; for learned time
        constants a fresh copy on each access: assigning into it changes nothing). With
        several hidden layers, a list with one such entry per layer."""
        args = self._tau_arg[0] if len(self._tau_layers) > 2 else [self._tau_arg[0]]
        values = [float(arg) if self._tau_scalar[layer] else self._tau_seconds(layer)
                  for layer, arg in zip(self._tau_layers, args)]
        return values[0] if len(values) == 1 else values

    @property
    def tau_output(self):
        """Readout time constant(s) [s]: a float, or a float32 array (C,) (see ``tau_hidden``)."""
        return float(self._tau_arg[1]) if self._tau_scalar["output"] else self._tau_seconds("output")

    def _tau_seconds(self, layer: str) -> np.ndarray:
        """float32 time constants [s] of a layer ("hidden", "hidden2", ... or "output";
        learned: parameter * dt)."""
        if self._learned[layer]:
            return (getattr(self, f"_tau_{layer}").astype(np.float64) * self.dt).astype(np.float32)
        return self._tau_fixed[layer]

    def _effective(self, name: str, signs) -> np.ndarray:
        w = getattr(self, "_" + name)
        return w.copy() if signs is None else np.abs(w) * signs[:, None]

    @property
    def w1_eff(self) -> np.ndarray:
        """The input-to-hidden weights the network uses: ``|w1| * sign`` under Dale's law, else a
        copy of w1 (float32 (N_in, N_h)). Read this back as the trained weights."""
        return self._effective("w1", self._signs[0])

    @property
    def w2_eff(self) -> np.ndarray:
        """The hidden-to-output weights the network uses (see ``w1_eff``)."""
        return self._effective("w2", self._signs[1])

    @property
    def dale_signs(self) -> dict:
        """Signs per presynaptic unit under Dale's law, by the weight matrix whose rows they
        sign: {"w1": (N_in,) or None, "w2": ...}."""
        return {name: None if s is None else s.copy()
                for name, s in zip(self._weight_names, self._signs)}

    @_locked
    def after_step(self) -> None:
        """Clamp learned time constants to >= tau_min and learned delays to [0, max_steps]
        (``train`` calls this after each optimiser step)."""
        for layer in self._tau_layers:
            if self._learned[layer]:
                arr = getattr(self, f"_tau_{layer}")
                np.maximum(arr, np.float32(self.tau_min / self.dt), out=arr)
        _clamp_delays(self)

    def _dropout_seed(self) -> int:
        """Seed of the dropout masks of training step ``_dropout_calls``."""
        return (self.seed * 0x9E3779B97F4A7C15 + self._dropout_calls) % 2**64 if self.dropout else 0

    def _check_taus(self):
        for layer in self._tau_layers:
            arr = self._tau_seconds(layer)
            if not (np.isfinite(arr).all() and (arr > 0).all()):
                raise ValueError(f"tau_{layer} must be finite and > 0 everywhere")

    def _tau_gradients(self, loss: float, per_second: dict) -> tuple:
        """The learned time constants' gradients in their units (dt) from dL/dtau [1/s] by
        layer, with the variance penalty added to the loss and gradients."""
        grads = {}
        for layer, g in per_second.items():
            if self._learned[layer]:
                # the parameter is tau / dt: dL/d(tau / dt) = dt dL/dtau
                g = (np.asarray(g, dtype=np.float64) * self.dt)
                if self.tau_var_penalty > 0:
                    # lambda Var(tau / dt) (population variance) and its gradient
                    t = getattr(self, f"_tau_{layer}").astype(np.float64)
                    loss += self.tau_var_penalty * float(t.var())
                    g += 2.0 * self.tau_var_penalty * (t - t.mean()) / t.size
                grads[f"tau_{layer}"] = g.astype(np.float32)
        return loss, grads

    # ------------------------------------------------------------------ the general network
    # (MODEL.md section 7: recurrence, several layers, delays; spikeloc.general)

    def _init_general(self):
        """The general network of this model (any research variant, recurrence, several layers
        or delays), or None: the tutorial's network keeps its fast kernel (spk_snn_*)."""
        self._general = None
        if (len(self.hidden_sizes) == 1 and not any(self._rec_names)
                and self.delay_options is None and not self._variant):
            return
        reg = self.rate_regularizer
        delays = self.delay_options
        self._general = GeneralNetwork(
            self.n_in, self.hidden_sizes, self.n_out, [n is not None for n in self._rec_names],
            dt=self.dt, beta=self.beta, reset=self.reset, surrogate=self.surrogate,
            adapt_tau=self.adapt_tau, adapt_strength=self.adapt_strength, head=self.readout,
            delays=None if delays is None else delays.per,
            max_delay=0 if delays is None else delays.max_steps,
            rate=None if reg is None else ("upper", reg.strength(self.n_out), reg.r_max),
            dropout=self.dropout)
        signs = {name: s for name, s in zip(self._weight_names, self._signs)}
        signs.update({rec: s for rec, s in zip(self._rec_names, self._signs[1:]) if rec})
        self._signs_flat = self._general.layout.pack_signs(signs)

    def _general_params(self) -> np.ndarray:
        """The flat parameter vector of the general network (time constants in seconds)."""
        self._check_taus()
        arrays = {name: getattr(self, "_" + name)
                  for name in self._weight_names + tuple(n for n in self._rec_names if n)}
        if self.delay_options is not None:
            arrays["delays"] = self._delays
        arrays.update({f"tau_{layer}": self._tau_seconds(layer) for layer in self._tau_layers})
        return self._general.layout.pack(arrays)

    def _general_forward(self, ev, idx, batch, *, record):
        return self._general.forward(ev, idx, batch, self._general_params(), self._signs_flat,
                                     self._threads, record=record)

    def _general_loss_grad(self, ev, idx, batch, labels, logits):
        seed = self._dropout_seed()
        self._dropout_calls += 1  # the next training step draws fresh dropout masks
        loss, flat = self._general.loss_grad(ev, idx, batch, labels, self._general_params(),
                                             self._signs_flat, self._threads, dropout_seed=seed,
                                             logits=logits)
        grads = self._general.layout.unpack(flat)
        loss, taus = self._tau_gradients(
            loss, {layer: grads[f"tau_{layer}"] for layer in self._tau_layers})
        out = dict(taus)
        out.update({name: grads[name] for name in self._param_names if name in grads
                    and not name.startswith("tau_")})
        return loss, {name: out[name] for name in self._param_names}


# w1 and grad_w1 of the membrane-only network in spk_snn_* (N_in x 0: never read or written).
_NO_HIDDEN = np.empty(0, dtype=np.float32)


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
    delays : None or :class:`spikeloc.Delays`
        Trainable delays between the inputs and the readout (MODEL.md section 7; per input,
        or per input-class synapse): the readout then sums the delayed inputs. Drawn after
        the weights; ``parameters()["delays"]`` in steps when learned.
    """

    _param_names = ("w",)

    def __init__(self, n_in, n_out, *, dt, tau, readout="sum", seed=0, threads=None,
                 init="seeds", delays=None):
        from .variants import as_delays
        self.n_in = check_int(n_in, "n_in", minimum=1)
        self.n_out = check_int(n_out, "n_out", minimum=1)
        self.dt = check_positive(dt, "dt")
        self.tau = check_positive(tau, "tau")
        self._readout_code = _check_readout(readout, MEMBRANE_READOUTS)
        self.readout = readout
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        self.init = check_choice(init, "init", INITS)
        rng = np.random.default_rng(self.seed)
        self._w = _init_uniform(rng, self.n_in, self.n_out, self.init)
        self.delay_options = as_delays(delays)
        self._general = None
        if self.delay_options is not None:
            per = self.delay_options.per
            self._delays = self.delay_options.initial(
                (self.n_in,) if per == "input" else (self.n_in, self.n_out), rng)
            if self.delay_options.learn:
                self._param_names = ("w", "delays")
            # the readout reads the delayed inputs: the general network without hidden layers
            self._general = GeneralNetwork(self.n_in, [], self.n_out, [], dt=self.dt,
                                           head=readout, delays=per,
                                           max_delay=self.delay_options.max_steps)

    @property
    def delays(self) -> np.ndarray:
        """Delays [steps] between the inputs and the readout, float32 (N_in,) or (N_in, C);
        assigning checks the range [0, max_steps]."""
        if self.delay_options is None:
            raise AttributeError("delays: this network has no delays "
                                 "(MembraneOnly(..., delays=Delays()))")
        return self._delays

    @delays.setter
    def delays(self, value):
        _set_delays(self, value)

    @_locked
    def after_step(self) -> None:
        """Clamp learned delays to [0, max_steps] (``train`` calls this after each step)."""
        _clamp_delays(self)

    def _general_params(self) -> np.ndarray:
        return self._general.layout.pack({"w1": self._w, "delays": self._delays,
                                          "tau_output": np.full(self.n_out, self.tau)})

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
        cfg = {"model": "MembraneOnly", "n_in": self.n_in, "n_out": self.n_out,
               "dt": self.dt, "tau": self.tau, "readout": self.readout, "seed": self.seed,
               "init": self.init}
        if self.delay_options is not None:
            cfg["delays"] = self.delay_options.to_dict()
        return cfg

    @classmethod
    def _checkpoint_layout(cls, config: dict) -> dict:
        n_in, n_out = (check_int(config.get(k), k, minimum=1) for k in ("n_in", "n_out"))
        return dict({"w": ((n_in, n_out), np.float32)},
                    **_delay_layout(config.get("delays"), n_in, n_out))

    def _abi_config(self, steps: int) -> NetConfig:
        # n_hidden 0: spk_snn_* runs the membrane-only network, self._w as its w2 (spikeloc.h);
        # tau_hidden and beta are ignored.
        return NetConfig(n_in=self.n_in, n_hidden=0, n_out=self.n_out, steps=steps, dt=self.dt,
                         tau_hidden=self.tau, tau_output=self.tau, readout=self._readout_code,
                         beta=5.0)

    @_locked
    def forward(self, spikes, index=None) -> MembraneOutput:
        """Forward pass with the membrane recording; returns :class:`MembraneOutput`."""
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        if self._general is not None:
            logits, _, membrane = self._general.forward(ev, idx, batch, self._general_params(),
                                                        None, self._threads)
            return MembraneOutput(membrane, logits)
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        membrane = np.empty((batch, ev.steps, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, _NO_HIDDEN,
                            self._w, logits, None, membrane, self._threads)
        return MembraneOutput(membrane, logits)

    @_locked
    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        if self._general is not None:
            return self._general.forward(ev, idx, batch, self._general_params(), None,
                                         self._threads, record=False)[0]
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        _native.snn_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, _NO_HIDDEN,
                            self._w, logits, None, None, self._threads)
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
        logits = np.empty((batch, self.n_out), dtype=np.float32) if return_logits else None
        if self._general is not None:
            loss, flat = self._general.loss_grad(ev, idx, batch, labels, self._general_params(),
                                                 None, self._threads, logits=logits)
            g = self._general.layout.unpack(flat, ("w1", "delays"))
            grads = {"w": g["w1"], "delays": g["delays"]}
            grads = {name: grads[name] for name in self._param_names}
            return (loss, grads, logits) if return_logits else (loss, grads)
        g = np.empty_like(self._w)
        loss = _native.snn_loss_grad(self._abi_config(ev.steps), ev._abi(), idx, batch, labels,
                                     _NO_HIDDEN, self._w, _NO_HIDDEN, g, logits, self._threads)
        return (loss, {"w": g}, logits) if return_logits else (loss, {"w": g})

    def __repr__(self) -> str:
        delays = "" if self.delay_options is None else f", delays={self.delay_options!r}"
        return (f"MembraneOnly(n_in={self.n_in}, n_out={self.n_out}, dt={self.dt}, "
                f"tau={self.tau}, readout={self.readout!r}{delays})")
