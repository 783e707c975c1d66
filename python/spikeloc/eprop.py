"""e-prop: online learning for a recurrent spiking network (MODEL.md section 5; seed 003).

:class:`EPropNetwork` is a recurrent layer of LIF neurons (reset by subtraction of the
threshold) with a leaky, non-spiking readout, trained with eligibility propagation (Bellec et
al. 2020): eligibility traces run forward in time beside the network and a learning signal
(the readout error sent back through fixed random or symmetric feedback weights) turns them
into weight updates. Nothing is stored over time, so the memory of training does not grow with
the length of the input, unlike back-propagation through time (:class:`~spikeloc.SNN`).

It has the interface of the other models (``parameters()``, ``loss_and_grad``, ``logits``,
``predict``), so :func:`~spikeloc.train` and :func:`~spikeloc.evaluate` work unchanged::

    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=100)     # instead of sl.SNN.for_stimulus
    history = sl.train(net, ipd, spikes, stimulus=stim, epochs=10, lr=0.01)

Class scores (``logits``) are the readout averaged over the learning window (the last
``window`` steps); ``predict`` is their argmax. Units: times in seconds, rates in Hz.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._abi import EPROP_LOSSES, EPropConfig
from ._native_api import (_native, as_float32_matrix, check_finite_array, check_int,
                          check_labels, check_positive, check_real)
from .general import GeneralNetwork
from .network import _locked, _Model, check_choice, draw_in_blocks

__all__ = ["EPropNetwork", "EPropOutput", "BPTTView", "LOSSES", "FEEDBACKS", "CONVENTIONS"]

#: e-prop loss name -> kernel code (cross-entropy or mean squared error on the window).
LOSSES = EPROP_LOSSES
#: Feedback weights of the learning signal: fixed random, or the readout weights transposed.
FEEDBACKS = ("random", "symmetric")
#: How ``gamma``, ``reg_c``, the learning rate and the readout/feedback initialisation are
#: read: spikeloc's (MODEL.md section 5) or NEST's ``eprop_iaf`` tutorial's (seed 003).
CONVENTIONS = ("spikeloc", "nest")


class EPropOutput(NamedTuple):
    """Recordings of :meth:`EPropNetwork.record` (B samples, T steps, N_h units, C classes).

    voltage : float32 (B, T, N_h), membrane voltages v after each step's input and reset
    spikes : uint8 (B, T, N_h), spikes z
    psi : float32 (B, T, N_h), pseudo-derivative ``(gamma / v_th) max(0, 1 - |v - v_th| / v_th)``
    learning_signal : float32 (B, T, N_h), L = feedback err in the window (0 elsewhere; all 0
    without labels; the regulariser's term is not included)
    readout : float32 (B, T, C), readout y
    logits : float32 (B, C), y averaged over the window
    """

    voltage: np.ndarray
    spikes: np.ndarray
    psi: np.ndarray
    learning_signal: np.ndarray
    readout: np.ndarray
    logits: np.ndarray


def _mask(value, name, shape, sparsity, rng, diagonal=True):
    """A uint8 0/1 mask: ``value`` if given (any 0/1-like array of ``shape``), else a random
    mask keeping each synapse with probability 1 - sparsity (no autapses if not diagonal)."""
    if value is not None:
        arr = np.asarray(value)
        if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be a bool or integer 0/1 array, got dtype {arr.dtype}")
        if arr.shape != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{name} must contain only 0 and 1")
        return np.ascontiguousarray(arr, dtype=np.uint8)
    mask = draw_in_blocks(lambda size: rng.random(size) >= sparsity, shape, np.uint8)
    if not diagonal:
        np.fill_diagonal(mask, 0)
    return mask


def _fraction(value, name):
    value = check_real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


class EPropNetwork(_Model):
    """Recurrent LIF network with a leaky readout, trained with e-prop (MODEL.md section 5).

    Dynamics per step n (all state 0 before the first step)::

        v_n = alpha v_{n-1} + x_n w_in + z_{n-1} w_rec - v_th z_{n-1},   alpha = exp(-dt/tau_m)
        z_n = H(v_n - v_th)
        y_n = kappa y_{n-1} + z_n w_out + b,                            kappa = exp(-dt/tau_out)

    Parameters
    ----------
    n_in, n_hidden, n_out : int
        Inputs N_in, recurrent units N_h, readout units (classes) C.
    dt : float
        Time step [s] (seed 003: 1 ms; must match the data).
    tau_m : float
        Membrane time constant [s] of the recurrent units (seed 003: 30 ms).
    tau_out : float
        Time constant [s] of the readout, and of the eligibility filter (seed 003: 100 ms).
    v_th : float
        Threshold (seed 003: 0.6); the reset subtracts it.
    gamma : float
        Height of the pseudo-derivative ``psi = (gamma / v_th) max(0, 1 - |v - v_th| / v_th)``.
    feedback : "random" or "symmetric"
        Learning-signal weights: fixed random (drawn like w_out, kept for the network's life)
        or w_out itself ("symmetric e-prop").
    loss : "mse" or "cross_entropy"
        Per-step loss in the window: 0.5 sum_k (y_k - onehot_k)^2 (seed 003) or
        -log softmax(y)[label]. The sample's loss is its mean over the window.
    window : int
        Learning window: the last ``window`` steps of each sample (seed 003: 10 of 300).
    reg_c : float
        Firing-rate regulariser strength [1/Hz^2]: adds 0.5 reg_c mean_j (f_j - f_target)^2,
        f_j the unit's rate over the sample [Hz] (0 turns it off).
    f_target : float
        Target rate [Hz] (seed 003: 10 Hz).
    sparsity_in, sparsity_rec, sparsity_out : float in [0, 1)
        Fractions of absent synapses, drawn at random (seed 003: 0.75, 0.99, 0.0; default 0:
        all-to-all). Absent synapses have weight 0 and get gradient 0, so they stay 0.
    mask_in, mask_rec, mask_out : 0/1 arrays, optional
        Explicit masks (shapes of the weights) instead of the sparsities.
    autapses : bool
        Allow recurrent self-connections (seed 003: no).
    recurrent : bool
        With recurrent weights w_rec (False: a feed-forward hidden layer, still with reset).
    seed : int
        Seed of ``numpy.random.default_rng`` for weights, masks and feedback. Initialisation of
        seed 003: w_in ~ N(0, 1/N_in), w_rec ~ N(0, 1/N_h), w_out and feedback ~ U(-l, l) with
        l = sqrt(3 / max(1, (N_h + C)/2)) (Glorot), b = 0; then masked.
    threads : int or None
        Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores); results do not depend on it.
    conventions : "spikeloc" or "nest"
        "nest" reads ``gamma``, ``reg_c`` and the optimiser's learning rate as NEST's e-prop
        tutorial (seed 003) sets them, so that its numbers (learning rate 5e-3,
        ``c_reg = 2 / 300``, ``gamma = 0.5``) train as they do in NEST. With s = 1 - kappa
        (the tutorial's ``scale_factor``), W the window and N_h T dt the units times the
        sample's duration [s]: w_out starts at s x its Glorot draw and the random feedback
        weights are drawn from N(0, 1) / s (seed 003's initialisation); ``gamma`` is the
        height of the pseudo-derivative (the kernel's ``gamma * v_th``); the loss and every
        gradient are s**2 W times spikeloc's (NEST sums the per-step gradient over the window
        and applies eta s**2; its optimiser averages over a batch, as spikeloc's does); and
        the kernel's regulariser strength is ``reg_c N_h T dt / (1000 s**2 W)`` (NEST adds
        ``c_reg / s**2 (f - f_target)``, rates in spikes per ms, to the learning signal of
        every step). NEST's width 1.7 of the pseudo-derivative is spikeloc's 1 / v_th (1.67
        for v_th = 0.6), its reset subtracts v_th in the step of the spike, and it updates
        the weights after every sample (``batch_size = 1`` here). Recordings
        (:meth:`record`) stay in spikeloc's units.

    Weights are stored [presynaptic, postsynaptic]: ``w_in`` (N_in, N_h), ``w_rec`` (N_h, N_h),
    ``w_out`` (N_h, C), ``b`` (C,), all float32; ``parameters()`` hands out the live arrays.
    """

    def __init__(self, n_in, n_hidden, n_out, *, dt=1e-3, tau_m=30e-3, tau_out=100e-3, v_th=0.6,
                 gamma=0.3, feedback="random", loss="mse", window=10, reg_c=0.0, f_target=10.0,
                 sparsity_in=0.0, sparsity_rec=0.0, sparsity_out=0.0, mask_in=None,
                 mask_rec=None, mask_out=None, autapses=False, recurrent=True, seed=0,
                 threads=None, conventions="spikeloc"):
        self.n_in = check_int(n_in, "n_in", minimum=1, maximum=65535)
        self.n_hidden = check_int(n_hidden, "n_hidden", minimum=1, maximum=65536)
        self.n_out = check_int(n_out, "n_out", minimum=1, maximum=65536)
        self.dt = check_positive(dt, "dt")
        self.tau_m = check_positive(tau_m, "tau_m")
        self.tau_out = check_positive(tau_out, "tau_out")
        self.v_th = check_positive(v_th, "v_th")
        self.gamma = check_real(gamma, "gamma")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        self.feedback = check_choice(feedback, "feedback", FEEDBACKS)
        self.loss = check_choice(loss, "loss", LOSSES)
        self.window = check_int(window, "window", minimum=1, maximum=65535)
        self.reg_c = check_real(reg_c, "reg_c")
        if self.reg_c < 0:
            raise ValueError(f"reg_c must be >= 0, got {self.reg_c}")
        self.f_target = check_real(f_target, "f_target")
        self.sparsity_in = _fraction(sparsity_in, "sparsity_in")
        self.sparsity_rec = _fraction(sparsity_rec, "sparsity_rec")
        self.sparsity_out = _fraction(sparsity_out, "sparsity_out")
        if not isinstance(recurrent, (bool, np.bool_)):
            raise TypeError(f"recurrent must be a bool, got {type(recurrent).__name__}")
        self.recurrent = bool(recurrent)
        self.autapses = bool(autapses)
        self.seed = check_int(seed, "seed", minimum=0)
        self.threads = threads
        if conventions not in CONVENTIONS:
            raise ValueError(f"conventions must be one of {CONVENTIONS}, got {conventions!r}")
        self.conventions = conventions
        self._param_names = ("w_in", "w_rec", "w_out", "b") if self.recurrent else \
            ("w_in", "w_out", "b")

        N_in, N_h, C = self.n_in, self.n_hidden, self.n_out
        rng = np.random.default_rng(self.seed)
        limit = math.sqrt(3.0 / max(1.0, (N_h + C) / 2.0))
        nest = conventions == "nest"   # seed 003: w_out * scale_factor, randn / scale_factor
        scale = self._nest_scale() if nest else 1.0
        w_in = draw_in_blocks(lambda size: rng.standard_normal(size) / math.sqrt(N_in),
                              (N_in, N_h))
        w_rec = draw_in_blocks(lambda size: rng.standard_normal(size) / math.sqrt(N_h),
                               (N_h, N_h))
        w_out = draw_in_blocks(lambda size: rng.uniform(-limit, limit, size) * scale, (N_h, C))
        self._feedback = draw_in_blocks(
            (lambda size: rng.standard_normal(size) / scale) if nest
            else (lambda size: rng.uniform(-limit, limit, size)), (N_h, C))
        mrng = np.random.default_rng([self.seed, 1])
        self._mask_in = _mask(mask_in, "mask_in", (N_in, N_h), self.sparsity_in, mrng)
        self._mask_rec = _mask(mask_rec, "mask_rec", (N_h, N_h), self.sparsity_rec, mrng,
                               diagonal=self.autapses) if self.recurrent else None
        self._mask_out = _mask(mask_out, "mask_out", (N_h, C), self.sparsity_out, mrng)
        w_in *= self._mask_in
        w_out *= self._mask_out
        if self.recurrent:
            w_rec *= self._mask_rec
        self._w_in, self._w_out = w_in, w_out
        self._w_rec = w_rec if self.recurrent else None
        self._b = np.zeros(C, dtype=np.float32)

    @classmethod
    def for_stimulus(cls, stimulus, n_hidden=100, *, tau_m=20e-3, tau_out=20e-3, v_th=1.0,
                     loss="cross_entropy", window=None, **kw) -> "EPropNetwork":
        """A network sized for a :class:`~spikeloc.Stimulus` (n_in, dt, num_classes), with
        settings for the IPD task: the tutorial's time constants (20 ms), threshold 1 (as the
        tutorial's network), cross-entropy, and a learning window over the whole sample
        (``window=None``: T steps), so that prediction is the argmax of the readout averaged
        over the sample, like :class:`~spikeloc.SNN`'s mean readout."""
        if window is None:
            window = stimulus.steps
        return cls(stimulus.n_in, n_hidden, stimulus.num_classes, dt=stimulus.dt, tau_m=tau_m,
                   tau_out=tau_out, v_th=v_th, loss=loss, window=window, **kw)

    # ---------------------------------------------------------------- parameters and masks

    @_locked
    def _weight(self, name, value, shape, mask):
        new = as_float32_matrix(value, name, shape)
        if mask is not None:
            new *= mask
        np.copyto(getattr(self, "_" + name), new)

    @property
    def w_in(self) -> np.ndarray:
        """Input weights, float32 (N_in, N_h); assigning masks absent synapses to 0."""
        return self._w_in

    @w_in.setter
    def w_in(self, value):
        self._weight("w_in", value, (self.n_in, self.n_hidden), self._mask_in)

    @property
    def w_rec(self):
        """Recurrent weights, float32 (N_h, N_h) (None without a recurrent layer)."""
        return self._w_rec

    @w_rec.setter
    def w_rec(self, value):
        if not self.recurrent:
            raise ValueError("w_rec: this network has no recurrent layer (recurrent=False)")
        self._weight("w_rec", value, (self.n_hidden, self.n_hidden), self._mask_rec)

    @property
    def w_out(self) -> np.ndarray:
        """Readout weights, float32 (N_h, C)."""
        return self._w_out

    @w_out.setter
    def w_out(self, value):
        self._weight("w_out", value, (self.n_hidden, self.n_out), self._mask_out)

    @property
    def b(self) -> np.ndarray:
        """Readout bias, float32 (C,)."""
        return self._b

    @b.setter
    def b(self, value):
        self._weight("b", value, (self.n_out,), None)

    @property
    def masks(self) -> dict:
        """Connectivity masks (uint8 0/1, shapes of the weights): "w_in", "w_rec", "w_out"."""
        out = {"w_in": self._mask_in, "w_out": self._mask_out}
        if self.recurrent:
            out["w_rec"] = self._mask_rec
        return out

    @property
    def feedback_weights(self) -> np.ndarray:
        """The learning-signal weights B (N_h, C): the fixed random matrix, or w_out."""
        return self._w_out if self.feedback == "symmetric" else self._feedback

    @property
    def config(self) -> dict:
        """Constructor arguments (masks are saved separately)."""
        return {"model": "EPropNetwork", "n_in": self.n_in, "n_hidden": self.n_hidden,
                "n_out": self.n_out, "dt": self.dt, "tau_m": self.tau_m,
                "tau_out": self.tau_out, "v_th": self.v_th, "gamma": self.gamma,
                "feedback": self.feedback, "loss": self.loss, "window": self.window,
                "reg_c": self.reg_c, "f_target": self.f_target,
                "sparsity_in": self.sparsity_in, "sparsity_rec": self.sparsity_rec,
                "sparsity_out": self.sparsity_out, "autapses": self.autapses,
                "recurrent": self.recurrent, "seed": self.seed,
                **({"conventions": self.conventions} if self.conventions != "spikeloc"
                   else {})}

    # ---------------------------------------------------------------- kernels

    def _nest_scale(self) -> float:
        """NEST's ``scale_factor`` s = 1 - kappa, kappa = exp(-dt / tau_out)."""
        return -math.expm1(-self.dt / self.tau_out)

    def _kernel_terms(self, steps: int) -> tuple:
        """(gamma, reg_c, factor) in spikeloc's units: the kernel's pseudo-derivative scale
        and regulariser strength, and the factor on its loss and gradients (see
        ``conventions``)."""
        if self.conventions != "nest":
            return self.gamma, self.reg_c, 1.0
        s2w = self._nest_scale() ** 2 * self.window
        return (self.gamma * self.v_th,
                self.reg_c * self.n_hidden * steps * self.dt / (1000.0 * s2w), s2w)

    def _abi_config(self, steps: int) -> EPropConfig:
        if self.window > steps:
            raise ValueError(f"window={self.window} is longer than the samples (T={steps} steps)")
        gamma, reg_c, _ = self._kernel_terms(steps)
        return EPropConfig(n_in=self.n_in, n_hidden=self.n_hidden, n_out=self.n_out,
                           steps=steps, window=self.window, dt=self.dt, tau_m=self.tau_m,
                           tau_out=self.tau_out, v_th=self.v_th, gamma=gamma,
                           reg_c=reg_c, f_target=self.f_target, loss=LOSSES[self.loss],
                           recurrent=int(self.recurrent))

    def _check_params(self):
        super()._check_params()
        if self.feedback == "random":
            check_finite_array(self._feedback, "feedback")

    @_locked
    def record(self, spikes, labels=None, index=None) -> EPropOutput:
        """Forward pass with recordings (:class:`EPropOutput`): voltages, spikes, psi,
        learning signals (with ``labels``), readout and logits.

        spikes : uint8/bool (B, T, N_in) or SpikeEvents; labels : optional int (B,) in [0, C);
        index : optional int64 (B,) sample indices into ``spikes``.
        """
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        if labels is not None:
            labels = check_labels(labels, batch, self.n_out)
        T, H, C = ev.steps, self.n_hidden, self.n_out
        cfg = self._abi_config(T)
        out = EPropOutput(voltage=np.empty((batch, T, H), np.float32),
                          spikes=np.empty((batch, T, H), np.uint8),
                          psi=np.empty((batch, T, H), np.float32),
                          learning_signal=(np.empty((batch, T, H), np.float32)
                                           if labels is not None
                                           else np.zeros((batch, T, H), np.float32)),
                          readout=np.empty((batch, T, C), np.float32),
                          logits=np.empty((batch, C), np.float32))
        _native.eprop_forward(cfg, ev._abi(), idx, batch, labels, self._w_in, self._w_rec,
                              self._w_out, self._b, self.feedback_weights, out.logits,
                              out.voltage, out.spikes, out.psi,
                              out.learning_signal if labels is not None else None,
                              out.readout, self._threads)
        return out

    forward = record

    @_locked
    def _logits(self, spikes, index) -> np.ndarray:
        ev, idx, batch = self._batch(spikes, index)
        self._check_params()
        logits = np.empty((batch, self.n_out), dtype=np.float32)
        _native.eprop_forward(self._abi_config(ev.steps), ev._abi(), idx, batch, None,
                              self._w_in, self._w_rec, self._w_out, self._b, None, logits,
                              threads=self._threads)
        return logits

    def logits(self, spikes, index=None) -> np.ndarray:
        """Class scores, float32 (B, C): the readout averaged over the learning window."""
        return self._logits(spikes, index)

    @_locked
    def loss_and_grad(self, spikes, labels, index=None, *, return_logits=False):
        """Mean loss over the batch and its e-prop gradients (computed online, forward in time).

        Returns ``(loss, grads)`` with grads = {"w_in", "w_rec" (if recurrent), "w_out", "b"}
        (float32, shaped like the weights; 0 at absent synapses), plus the logits (B, C) as a
        third item if ``return_logits``. The loss is the mean over samples of the mean over
        the window of the per-step loss, plus the rate regulariser.
        """
        ev, idx, batch = self._batch(spikes, index)
        labels = check_labels(labels, batch, self.n_out)
        self._check_params()
        grads = {"w_in": np.empty_like(self._w_in), "w_out": np.empty_like(self._w_out),
                 "b": np.empty_like(self._b)}
        if self.recurrent:
            grads["w_rec"] = np.empty_like(self._w_rec)
        logits = np.empty((batch, self.n_out), dtype=np.float32) if return_logits else None
        loss = _native.eprop_loss_grad(
            self._abi_config(ev.steps), ev._abi(), idx, batch, labels, self._w_in, self._w_rec,
            self._w_out, self._b, self.feedback_weights, self._mask_in, self._mask_rec,
            self._mask_out, grads["w_in"], grads.get("w_rec"), grads["w_out"], grads["b"],
            logits, self._threads)
        grads = {name: grads[name] for name in self._param_names}
        factor = self._kernel_terms(ev.steps)[2]
        if factor != 1.0:   # NEST's conventions
            loss *= factor
            grads = {name: g * np.float32(factor) for name, g in grads.items()}
        return (loss, grads, logits) if return_logits else (loss, grads)

    def bptt(self, reset_in_gradient=True) -> "BPTTView":
        """The same network trained by back-propagation through time: a view sharing this
        network's parameter arrays whose ``loss_and_grad`` is exact BPTT with the same
        pseudo-derivative and loss, computed by the general network's Swift kernel (memory
        growing with T). ``reset_in_gradient=False`` treats the reset as a constant, the path
        e-prop leaves out. For comparisons::

            sl.train(net.bptt(), ipd, spikes, stimulus=stim, epochs=10)   # BPTT
            sl.train(net, ipd, spikes, stimulus=stim, epochs=10)          # e-prop
        """
        return BPTTView(self, reset_in_gradient=reset_in_gradient)

    # ---------------------------------------------------------------- checkpoints
    # save/load are the models' (spikeloc.checkpoint): the file also holds the masks and the
    # fixed feedback weights.

    def _checkpoint_arrays(self) -> dict:
        arrays = dict(self.parameters())
        arrays.update({"mask_" + name[2:]: mask for name, mask in self.masks.items()})
        arrays["feedback"] = self._feedback
        return arrays

    @classmethod
    def _checkpoint_layout(cls, config: dict) -> dict:
        n_in, n_hidden, n_out = (check_int(config.get(k), k, minimum=1)
                                 for k in ("n_in", "n_hidden", "n_out"))
        recurrent = config.get("recurrent", True)
        if not isinstance(recurrent, bool):
            raise TypeError(f"recurrent must be a bool, got {type(recurrent).__name__}")
        shapes = {"in": (n_in, n_hidden), "out": (n_hidden, n_out)}
        if recurrent:
            shapes["rec"] = (n_hidden, n_hidden)
        layout = {"b": ((n_out,), np.float32), "feedback": ((n_hidden, n_out), np.float32)}
        for name, shape in shapes.items():
            layout["w_" + name] = (shape, np.float32)
            layout["mask_" + name] = (shape, np.uint8)
        return layout

    @classmethod
    def _from_checkpoint(cls, config: dict, arrays: dict, threads) -> "EPropNetwork":
        net = cls(**config, mask_in=arrays["mask_in"], mask_rec=arrays.get("mask_rec"),
                  mask_out=arrays["mask_out"], threads=threads)
        for name in net._param_names:
            setattr(net, name, arrays[name])  # the setters apply the masks
        np.copyto(net._feedback, arrays["feedback"])
        return net

    def __repr__(self) -> str:
        return (f"EPropNetwork(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"dt={self.dt}, tau_m={self.tau_m}, tau_out={self.tau_out}, v_th={self.v_th}, "
                f"feedback={self.feedback!r}, loss={self.loss!r}, window={self.window}, "
                f"recurrent={self.recurrent})")


class BPTTView:
    """An :class:`EPropNetwork` whose gradients come from back-propagation through time.
    ``parameters()``, ``logits`` and ``predict`` are the network's own, so
    :func:`~spikeloc.train` and :func:`~spikeloc.evaluate` work with it; gradients are
    float32 and masked like e-prop's.

    The network is the general network of :mod:`spikeloc.general` (MODEL.md section 7) with
    one hidden layer (recurrent or not): its subtractive reset and threshold 1 on the weights
    ``w_in / v_th`` and ``w_rec / v_th`` (the voltage divided by v_th), the piecewise-linear
    surrogate of height gamma (e-prop's psi on that voltage), the e-prop timing (the readout
    sees the spikes of its own step) and the window head with the bias ``b``; so its
    gradients of ``w_in`` and ``w_rec`` are those of the scaled weights divided by v_th. The
    reference is :func:`spikeloc.reference.eprop.bptt_loss_and_grad`."""

    def __init__(self, net: EPropNetwork, reset_in_gradient=True):
        self.net = net
        self.reset_in_gradient = bool(reset_in_gradient)
        self.n_out = net.n_out

    def _general(self, steps: int):
        """(the general network of this view for samples of ``steps`` steps, the factor on its
        loss and gradients): e-prop's pseudo-derivative scale and regulariser in spikeloc's
        units (:meth:`EPropNetwork._kernel_terms`, which depend on T under NEST's
        conventions)."""
        net = self.net
        gamma, reg_c, factor = net._kernel_terms(steps)
        general = GeneralNetwork(
            net.n_in, [net.n_hidden], net.n_out, [net.recurrent], dt=net.dt, beta=gamma,
            reset="subtractive", surrogate="piecewise_linear",
            detach_reset=not self.reset_in_gradient, head="window", window=net.window,
            window_loss=net.loss, timing="eprop", bias=True,
            rate=("target", reg_c, net.f_target) if reg_c else None)
        return general, factor

    @property
    def threads(self):
        """Worker threads of the underlying network."""
        return self.net.threads

    @property
    def lock(self):
        """The network's lock (see :attr:`spikeloc.SNN.lock`)."""
        return self.net.lock

    def parameters(self) -> dict:
        """The network's live weight arrays."""
        return self.net.parameters()

    def logits(self, spikes, index=None):
        """The network's class scores, float32 (B, C)."""
        return self.net.logits(spikes, index)

    def predict(self, spikes, index=None):
        """The network's predicted classes, int64 (B,)."""
        return self.net.predict(spikes, index)

    def _params(self, layout) -> np.ndarray:
        """The general network's parameter vector: weights into the hidden layer divided by
        v_th, the readout, the bias and the time constants [s]."""
        net = self.net
        arrays = {"w1": net.w_in / np.float32(net.v_th), "w2": net.w_out, "b": net.b,
                  "tau_hidden": np.full(net.n_hidden, net.tau_m),
                  "tau_output": np.full(net.n_out, net.tau_out)}
        if net.recurrent:
            arrays["w_rec"] = net.w_rec / np.float32(net.v_th)
        return layout.pack(arrays)

    def loss_and_grad(self, spikes, labels, index=None, *, return_logits=False):
        """Loss and gradients by back-propagation through time, in the form of
        :meth:`EPropNetwork.loss_and_grad`."""
        with self.net.lock:
            return self._loss_and_grad(spikes, labels, index, return_logits)

    def _loss_and_grad(self, spikes, labels, index, return_logits):
        net = self.net
        # the checks of the e-prop kernels: spikes, index, window and weights
        ev, idx, batch = net._batch(spikes, index)
        net._abi_config(ev.steps)
        net._check_params()
        labels = check_labels(labels, batch, net.n_out)
        general, factor = self._general(ev.steps)
        logits = np.empty((batch, net.n_out), dtype=np.float32) if return_logits else None
        loss, flat = general.loss_grad(ev, idx, batch, labels, self._params(general.layout), None,
                                       net.threads, logits=logits)
        g = general.layout.unpack(flat)
        v_th, masks = np.float32(net.v_th), net.masks
        grads = {"w_in": g["w1"] / v_th, "w_out": g["w2"], "b": g["b"]}
        if net.recurrent:
            grads["w_rec"] = g["w_rec"] / v_th
        out = {name: (factor * (grads[name] * masks[name] if name in masks else grads[name])
                      ).astype(np.float32) for name in net._param_names}
        return (loss * factor, out, logits) if return_logits else (loss * factor, out)
