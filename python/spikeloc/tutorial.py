"""The seed notebooks' functions on NumPy arrays, backed by spikeloc's kernels: the Cosyne
tutorial (seed 002), the 250 Hz study (seed 000) and the Dale's law study (seed 001).

Porting a seed notebook is a change of imports: replace its PyTorch definitions by ::

    from spikeloc.tutorial import *

and the notebook's cells keep working with the same names, signatures and parameters, on
NumPy arrays (a ``torch`` tensor in, a NumPy array out: there is no autograd here, training
goes through :func:`train_snn`, :func:`train_membrane_only` and, for seeds 000/001,
:func:`train`). docs/guide/porting.md has a before/after table of the cells that need more
than the import.

Mapping, seed function -> what it does here -> spikeloc equivalent

==============================================  =================================================
``input_signal(ipd, envelope_power)``           ``(spikes, theta)``; spikes from
                                                :meth:`spikeloc.Stimulus.spikes_for`
``random_ipd_input_signal(n, ..., tensor)``     ``(ipd, spikes, theta)``; :meth:`Stimulus.generate`
``discretise(ipds)``                            class indices; :meth:`Stimulus.labels`
``continuise(ipd_indices)``                     class midpoints; :meth:`Stimulus.midpoints`
``init_weight_matrix()``                        ``W`` (input_size, num_classes) float32
``init_weight_matrices()``                      ``(W1, W2)`` float32
``membrane_only(input_spikes, W, tau)``         membrane (B, T, C);
                                                ``MembraneOnly(...).forward(x).output_membrane``
``snn(input_spikes, W1, W2, tau)``              ``v_rec`` (B, T, C);
                                                ``SNN(...).forward(x).output_membrane``
``data_generator(ipds, spikes)``                shuffled ``(spike_batch, ipd_batch)``, drops last
training loop (membrane only, ``sum*0.01``)     :func:`train_membrane_only`; ``MembraneOnly``
                                                (readout ``"sum"``) + :class:`spikeloc.Adam`
training loop (SNN, ``mean``)                   :func:`train_snn`; ``SNN`` (readout ``"mean"``)
                                                + :class:`spikeloc.Adam`
``test_accuracy(ipds, spikes, run)``            ``(ipd_true, ipd_est, confusion, accs)``
                                                (seeds 000/001)
``analyse(ipds, spikes, label, run, ...)``      prints accuracy / error, optional plots, returns
                                                (acc mean, acc std, err mean, err std)
``softmax``, ``log_softmax``                    the notebook's NumPy helpers (over axis 0)
``log_softmax_fn``, ``loss_fn``                 ``nn.LogSoftmax(dim=1)`` and ``nn.NLLLoss()`` as
                                                functions (over the classes, axis 1)
``SurrGradSpike`` / ``spike_fn``                not provided: the surrogate gradient is inside
                                                the kernels (``beta`` below)
``get_dales_mask(n_in, n_out, ie_ratio)``       seeds 000/001: a +1/-1 mask (n_in, n_out),
                                                inhibitory rows at random (seed 001) or the
                                                first ones (``inhibitory="first"``, seed 000)
``get_signed_weights(w, sign)``                 ``|w| * sign``
``init_weight_matrices(ie_ratio=r)``            seeds 000/001: ``(w1, w2, signs)``
``snn(x, w1, w2, signs, tau=5 ms)``             seed 001's network
``snn(x, w1, w2, signs, tau_h, tau_o)``         seed 000's (signs applied when ``DALES_LAW``)
``train(w1, w2, signs, ipds, spikes, ...)``     seeds 000/001's training, :func:`train_with_signs`:
                                                validation, best weights, early stopping
``analyse_accuracy(ipds, spikes, run, label)``  seeds 000/001: prints, plots, returns accuracy %
==============================================  =================================================

Arrays returned by these functions are :class:`TensorArray` s: NumPy arrays that also answer
``.detach()``, ``.cpu()`` and ``.numpy()``, and index like torch where the two differ
(``spikes[i, :, [0]].T`` is the seed's one-fibre raster of shape ``(1, T)``).

Parameters (the seed's names and values): ``dt``, ``anf_per_ear``, ``envelope_power``,
``rate_max``, ``f``, ``duration``, ``duration_steps``, ``input_size``, ``num_classes``,
``my_computer_is_slow``, ``batch_size``, ``n_training_batches``, ``n_testing_batches``,
``num_samples``, ``num_hidden``, ``beta``, ``nb_epochs``, ``lr``, ``phase_offset`` and
``dales_law``. The functions read them when called, as the seed's functions read the
notebook's globals: set them the seed's way, in the notebook after
``from spikeloc.tutorial import *`` (``num_hidden = 30``; seeds 000/001's capitals count too:
``NUM_HIDDEN``, ``DT``, ``ANF_PER_EAR``, ``DURATION``, ``NUM_CLASSES``, ``LR``,
``N_EPOCHS``, ``DALES_LAW``), or on the module (``import spikeloc.tutorial as tut;
tut.num_hidden = 30``). A value set in both places and different fails loudly
(:mod:`spikeloc._porting`).

Random numbers: every call that draws (stimuli, initial weights, shuffles) takes the next seed
of a module-level counter, so repeated calls give fresh data like ``np.random``;
``set_seed(n)`` restarts the counter at a fixed point and makes everything after it
reproducible. Until ``set_seed`` is called the counter starts from OS entropy.

Differences from the seed, on purpose:

* Spikes are ``bool`` NumPy arrays (the seed's ``input_signal`` also returns ``bool``);
  ``tensor=True`` returns float32 arrays in place of ``torch.float`` tensors, and every
  function here accepts 0/1 spikes as bool, uint8 or float.
* ``theta`` is returned as a lazy array (:class:`Theta`): it is computed for the samples you
  index (``theta[i, :, 0]``) instead of being stored (float64, 160 kB per sample).
  ``np.asarray(theta)`` gives the full array.
* ``phase_offset`` defaults to ``0.0`` cycles: in seed 002 the random phase offset of
  ``input_signal`` is commented out. Set ``phase_offset = "per_set"`` for one random offset
  per generated set (the original Cosyne notebook) or ``"per_sample"``.
* The seed's ``random_ipd_input_signal`` forgets to pass ``envelope_power`` on to
  ``input_signal``; here it is passed on. Defaults ``envelope_power=None`` mean the module
  value at call time (the seed binds the value at definition time).
* ``discretise`` clamps to ``[0, num_classes - 1]`` and floors (MODEL.md section 1); the seed's
  ``.long()`` truncates toward zero and does not clamp. They agree on ``[-pi/2, pi/2)``.
* Initial weights: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with PyTorch's ``fan_in`` of a
  2-d tensor, which is its *second* dimension: ``1/sqrt(num_classes)`` for ``W`` and ``W2``,
  ``1/sqrt(num_hidden)`` for ``W1``, exactly as the seed's ``nn.init`` calls compute it
  (``spikeloc.SNN`` itself draws with ``1/sqrt(n_in)``).
* ``membrane_only`` and ``snn`` take the batch size from ``input_spikes`` (the seed uses the
  global ``batch_size``), and the kernels compute in float32 exactly as specified in
  MODEL.md section 2.
* ``continuise`` refuses indices outside ``[0, num_classes)`` (the seed maps 99 to 24 rad),
  and the training functions refuse a negative number of epochs.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ._native_api import check_int, check_real
from ._porting import Parameters, TensorArray, as_tensor
from .events import SpikeEvents
from .network import MembraneOnly, SNN
from .optim import Adam
from .stimulus import Stimulus
from .variants import Dale

__all__ = [
    # units and parameters
    "second", "ms", "Hz", "dt", "anf_per_ear", "envelope_power", "rate_max", "f", "duration",
    "duration_steps", "input_size", "num_classes", "my_computer_is_slow", "batch_size",
    "n_training_batches", "n_testing_batches", "num_samples", "num_hidden", "beta",
    "nb_epochs", "lr", "phase_offset", "dales_law",
    # functions
    "set_seed", "input_signal", "random_ipd_input_signal", "discretise", "continuise",
    "init_weight_matrix", "init_weight_matrices", "membrane_only", "snn", "data_generator",
    "train", "train_membrane_only", "train_snn", "test_accuracy", "analyse", "softmax",
    "log_softmax", "log_softmax_fn", "loss_fn", "current_stimulus", "Theta", "TensorArray",
    # seeds 000 and 001
    "get_dales_mask", "get_signed_weights", "train_with_signs", "analyse_accuracy",
]

# ---- units and parameters (the seed's values) -----------------------------------------------
#: One second (the tutorial's unit of time).
second = 1
#: One millisecond in seconds.
ms = 1e-3
#: One hertz.
Hz = 1

dt = 1 * ms                 # time step
anf_per_ear = 100           # auditory nerve fibres per ear
envelope_power = 2          # sharpness of the rate envelope
rate_max = 600 * Hz         # peak Poisson rate
f = 20 * Hz                 # tone frequency
duration = .1 * second      # stimulus duration
duration_steps = int(np.round(duration / dt))
input_size = 2 * anf_per_ear
num_classes = 180 // 15     # 15-degree classes
phase_offset = 0.0          # cycles; "per_set" / "per_sample" for random offsets

my_computer_is_slow = True
if my_computer_is_slow:
    batch_size = 64
    n_training_batches = 64
else:
    batch_size = 128
    n_training_batches = 128
n_testing_batches = 32
num_samples = batch_size * n_training_batches

num_hidden = 100
beta = 5                    # steepness of the sigmoid surrogate gradient
nb_epochs = 10
lr = 0.01
dales_law = True            # seed 000's DALES_LAW: apply the signs given to snn and train

#: Reads a parameter the way the seed's functions read the notebook's globals.
_p = Parameters(__name__, ("dt", "anf_per_ear", "envelope_power", "rate_max", "f", "duration",
                           "duration_steps", "input_size", "num_classes", "batch_size",
                           "num_hidden", "beta", "nb_epochs", "lr", "phase_offset",
                           "dales_law"),
                aliases={"dt": ("DT",), "anf_per_ear": ("ANF_PER_EAR",),
                         "duration": ("DURATION",), "duration_steps": ("DURATION_STEPS",),
                         "input_size": ("INPUT_SIZE",), "num_classes": ("NUM_CLASSES",),
                         "num_hidden": ("NUM_HIDDEN",), "lr": ("LR",),
                         "nb_epochs": ("N_EPOCHS",), "dales_law": ("DALES_LAW",)})

# ---- random numbers ---------------------------------------------------------------------------
_seed_base = None           # set by set_seed; OS entropy on first use otherwise
_seed_counter = 0


def set_seed(seed: int) -> None:
    """Make every later draw (stimuli, weights, shuffles) reproducible: restarts the
    module's seed counter at ``seed`` (an integer >= 0)."""
    global _seed_base, _seed_counter
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    _seed_base = int(seed)
    _seed_counter = 0


def _next_seed() -> int:
    """The next 64-bit seed of the module's stream: a hash of (base seed, call counter)."""
    global _seed_base, _seed_counter
    if _seed_base is None:
        _seed_base = int(np.random.SeedSequence().entropy)
    ss = np.random.SeedSequence([_seed_base, _seed_counter])
    _seed_counter += 1
    return int(ss.generate_state(1, np.uint64)[0])


def _rng() -> np.random.Generator:
    return np.random.default_rng(_next_seed())


# ---- helpers ----------------------------------------------------------------------------------
def _numpy(x, name: str) -> np.ndarray:
    """A NumPy array from an array-like or a torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    return arr


def _spikes(x, name: str = "input_spikes"):
    """0/1 spikes (bool, integer or float array, or SpikeEvents) in a form the models read."""
    if isinstance(x, SpikeEvents):
        return x
    arr = _numpy(x, name)
    if arr.dtype in (np.bool_, np.uint8):
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold 0/1 spikes, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr.astype(np.uint8)


def _weights(W, name: str) -> np.ndarray:
    arr = _numpy(W, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-d weight matrix, got shape {arr.shape}")
    return arr


def current_stimulus(envelope_power=None) -> Stimulus:
    """The :class:`~spikeloc.Stimulus` of the current module parameters (``dt``, ``duration``,
    ``f``, ``anf_per_ear``, ``rate_max``, ``envelope_power``, ``num_classes``,
    ``phase_offset``)."""
    k = _p("envelope_power") if envelope_power is None else envelope_power
    return Stimulus(dt=_p("dt"), duration=_p("duration"), freq=_p("f"),
                    anf_per_ear=_p("anf_per_ear"), rate_max=_p("rate_max"), envelope_power=k,
                    num_classes=_p("num_classes"), phase_offset=_p("phase_offset"))


class Theta:
    """Lazy phase array ``theta`` of shape (num_samples, T, 2 anf_per_ear), float64 [rad].

    ``theta[b, n, j] = 2 pi (f n dt + phi0_b) + psi_j`` for ear 0 (``j < anf_per_ear``), plus
    ``ipd[b]`` for ear 1, with ``psi = linspace(0, pi/2, anf_per_ear)`` (MODEL.md section 1).
    Indexing with an integer or a slice first (``theta[i]``, ``theta[i, :, 0]``,
    ``theta[:4]``) computes only those samples; ``np.asarray(theta)`` computes everything.
    """

    def __init__(self, ipd, phase, stim: Stimulus):
        self._ipd = np.asarray(ipd, dtype=np.float64)
        self._phase = np.asarray(phase, dtype=np.float64)
        self._stim = stim

    @property
    def shape(self) -> tuple:
        """(samples, steps, inputs), the shape of the phase array it stands for."""
        return (self._ipd.shape[0], self._stim.steps, self._stim.n_in)

    ndim = 3
    dtype = np.dtype(np.float64)

    def __len__(self) -> int:
        return self._ipd.shape[0]

    def _compute(self, ipd: np.ndarray, phase: np.ndarray) -> np.ndarray:
        s = self._stim
        n = np.arange(s.steps, dtype=np.float64)
        psi = (np.zeros(s.anf_per_ear) if s.null_phase_delays
               else np.linspace(0.0, np.pi / 2, s.anf_per_ear))
        base = 2.0 * np.pi * (s.freq * n[None, :] * s.dt + phase[:, None])
        out = np.empty((ipd.shape[0], s.steps, s.n_in))
        out[:, :, :s.anf_per_ear] = base[:, :, None] + psi
        out[:, :, s.anf_per_ear:] = base[:, :, None] + psi + ipd[:, None, None]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self._compute(self._ipd, self._phase)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(first, (numbers.Integral, np.integer)) and not isinstance(first, bool):
            block = self._compute(np.atleast_1d(self._ipd[first]),
                                  np.atleast_1d(self._phase[first]))[0]
            return block[rest] if rest else block
        if isinstance(first, slice):
            block = self._compute(self._ipd[first], self._phase[first])
            return block[(slice(None),) + rest]
        return np.asarray(self)[key]

    def __repr__(self) -> str:
        return f"Theta(shape={self.shape}, dtype=float64)"


# ---- stimulus -----------------------------------------------------------------------------------
def input_signal(ipd, envelope_power=None):
    """Poisson spike trains of the auditory nerve fibres for given IPDs (seed: same name).

    Parameters
    ----------
    ipd : array-like (num_samples,)
        True IPDs [rad].
    envelope_power : float, optional
        Sharpness k of the rate envelope (None: the module's ``envelope_power``).

    Returns
    -------
    spikes : bool (num_samples, duration_steps, 2*anf_per_ear)
    theta : :class:`Theta`, the phases (num_samples, duration_steps, 2*anf_per_ear), lazy
    """
    ipd = np.ascontiguousarray(_numpy(ipd, "ipd"), dtype=np.float64)
    stim = current_stimulus(envelope_power)
    seed = _next_seed()
    spikes = stim.spikes_for(ipd, seed=seed)
    theta = Theta(ipd, stim.phases(ipd.shape[0], seed), stim)
    return as_tensor(spikes.view(np.bool_)), theta


def random_ipd_input_signal(num_samples, envelope_power=None, tensor=False):
    """Random IPDs, uniform in [-pi/2, pi/2), and their spikes (seed: same name).

    Returns ``(ipd, spikes, theta)``: ipd float64 (num_samples,), spikes bool
    (num_samples, duration_steps, 2*anf_per_ear), theta a lazy :class:`Theta`. With
    ``tensor=True`` ipd and spikes are float32 arrays (the seed's ``torch.float`` tensors).
    """
    stim = current_stimulus(envelope_power)
    seed = _next_seed()
    ipd, spikes = stim.generate(num_samples, seed=seed)
    theta = Theta(ipd, stim.phases(ipd.shape[0], seed), stim)
    spikes = spikes.view(np.bool_)
    if tensor:
        return as_tensor(ipd.astype(np.float32)), as_tensor(spikes.astype(np.float32)), theta
    return as_tensor(ipd), as_tensor(spikes), theta


def discretise(ipds):
    """Class index of each IPD: ``clip(floor((ipd + pi/2) num_classes / pi), 0, C-1)``,
    int64, same shape as ``ipds``."""
    arr = _numpy(ipds, "ipds").astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("ipds contains NaN or infinite values")
    C = _p("num_classes")
    c = np.floor((arr + np.pi / 2) * C / np.pi)
    return as_tensor(np.clip(c, 0, C - 1).astype(np.int64))


def continuise(ipd_indices):
    """IPD midpoint of each class index: ``(i + 0.5) / num_classes * pi - pi/2`` [rad],
    float64, same shape. Indices must be whole numbers in ``[0, num_classes)``."""
    arr = _numpy(ipd_indices, "ipd_indices").astype(np.float64)
    C = _p("num_classes")
    if arr.size and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
                         and arr.min() >= 0 and arr.max() < C):
        bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)) & (arr >= 0) & (arr < C))]
        raise ValueError(f"ipd_indices must be class indices in [0, {C}) (num_classes = {C}), "
                         f"got {bad.ravel()[0]!r}")
    return as_tensor((arr + 0.5) / C * np.pi - np.pi / 2)


# ---- weights ----------------------------------------------------------------------------------
def _uniform(rng: np.random.Generator, shape) -> np.ndarray:
    # nn.init with bound 1/sqrt(fan_in), fan_in of a 2-d tensor = size(1) (see module doc).
    bound = 1.0 / math.sqrt(shape[1])
    return np.ascontiguousarray(rng.uniform(-bound, bound, size=shape), dtype=np.float32)


def init_weight_matrix() -> np.ndarray:
    """``W`` (input_size, num_classes), float32, ``U(-1/sqrt(num_classes), 1/sqrt(num_classes))``
    as the seed's ``nn.init`` computes it."""
    return as_tensor(_uniform(_rng(), (_p("input_size"), _p("num_classes"))))


def init_weight_matrices(ie_ratio=None, *, inhibitory="random"):
    """``(W1, W2)``: W1 (input_size, num_hidden) with bound ``1/sqrt(num_hidden)``, W2
    (num_hidden, num_classes) with bound ``1/sqrt(num_classes)``, float32 (seed 002).

    With ``ie_ratio`` (seeds 000/001): ``(w1, w2, signs)``, ``signs`` the two Dale's-law
    masks of :func:`get_dales_mask` (``inhibitory``: "random", seed 001, or "first", seed
    000).
    """
    rng = _rng()
    n_in, n_h, C = _p("input_size"), _p("num_hidden"), _p("num_classes")
    w1, w2 = as_tensor(_uniform(rng, (n_in, n_h))), as_tensor(_uniform(rng, (n_h, C)))
    if ie_ratio is None:
        return w1, w2
    return w1, w2, [get_dales_mask(n_in, n_h, ie_ratio, inhibitory=inhibitory),
                    get_dales_mask(n_h, C, ie_ratio, inhibitory=inhibitory)]


# ---- networks ---------------------------------------------------------------------------------
def _membrane_model(W, tau, readout="sum") -> MembraneOnly:
    W = _weights(W, "W")
    model = MembraneOnly(W.shape[0], W.shape[1], dt=_p("dt"), tau=tau, readout=readout)
    model.w = W
    return model


def _snn_model(W1, W2, tau_hidden, tau_output, readout="mean", dale=None) -> SNN:
    W1, W2 = _weights(W1, "W1"), _weights(W2, "W2")
    if W2.shape[0] != W1.shape[1]:
        raise ValueError(f"W1 {W1.shape} and W2 {W2.shape} do not chain: W2 needs "
                         f"{W1.shape[1]} rows")
    model = SNN(W1.shape[0], W1.shape[1], W2.shape[1], dt=_p("dt"), tau_hidden=tau_hidden,
                tau_output=tau_output, readout=readout, beta=_p("beta"), dale=dale)
    model.w1, model.w2 = W1, W2
    return model


def membrane_only(input_spikes, W, tau=20 * ms) -> np.ndarray:
    """Membrane potentials of the membrane-only network (seed: same name).

    input_spikes (B, duration_steps, input_size) 0/1; W (input_size, num_classes); tau [s].
    Returns ``v_rec``, float32 (B, duration_steps, num_classes): ``v_0 = 0``,
    ``v_{t+1} = exp(-dt/tau) v_t + input_spikes[:, t] @ W``.
    """
    return as_tensor(_membrane_model(W, tau).forward(_spikes(input_spikes)).output_membrane)


def _snn_arguments(args, tau, tau_hidden, tau_output, signs):
    """(signs, tau_hidden, tau_output) from the seeds' three ways of calling :func:`snn`."""
    args = list(args)
    if args and _looks_like_signs(args[0]):
        if signs is not None:
            raise TypeError("snn: signs given twice")
        signs = args.pop(0)
    if len(args) > 2:
        raise TypeError(f"snn: too many arguments: expected snn(x, W1, W2[, signs][, tau]) or "
                        f"snn(x, w1, w2, signs, tau_hidden, tau_output), got {len(args)} "
                        f"after the weights")
    if len(args) == 1:
        tau = args[0]
    elif len(args) == 2:
        tau_hidden, tau_output = args
    if tau is not None and (tau_hidden is not None or tau_output is not None):
        raise TypeError("snn: give tau (both layers) or tau_hidden and tau_output, not both")
    default = 5 * ms if signs is not None else 20 * ms   # seed 001's and seed 002's tau
    tau = default if tau is None else tau
    return (signs, tau if tau_hidden is None else tau_hidden,
            tau if tau_output is None else tau_output)


def snn(input_spikes, W1, W2, *args, tau=None, tau_hidden=None, tau_output=None, signs=None,
        epoch=None) -> np.ndarray:
    """Readout membrane potentials of the spiking network (seeds: same name), as each seed
    calls it:

    * seed 002: ``snn(input_spikes, W1, W2, tau=20 ms)``;
    * seed 001: ``snn(input_spikes, w1, w2, signs, tau=5 ms)``;
    * seed 000: ``snn(input_spikes, w1, w2, signs, tau_hidden, tau_output, epoch=0)``
      (``epoch`` is accepted and ignored, as in the seed).

    input_spikes (B, duration_steps, input_size) 0/1; W1 (input_size, num_hidden);
    W2 (num_hidden, num_classes); tau [s]; ``signs``: the two Dale's-law masks (or sign
    vectors) of :func:`init_weight_matrices`, applied as ``|W| * sign`` when ``dales_law``
    (seed 000's ``DALES_LAW``) is true. Returns ``v_rec``, float32
    (B, duration_steps, num_classes). Dynamics: MODEL.md section 2 (delayed reset).
    """
    signs, tau_h, tau_o = _snn_arguments(args, tau, tau_hidden, tau_output, signs)
    if signs is not None and _p("dales_law"):
        s1, s2 = _row_signs(signs, W1, W2)
        W1 = get_signed_weights(_weights(W1, "W1"), s1[:, None])
        W2 = get_signed_weights(_weights(W2, "W2"), s2[:, None])
    model = _snn_model(W1, W2, tau_h, tau_o)
    return as_tensor(model.forward(_spikes(input_spikes)).output_membrane)


# ---- batches ----------------------------------------------------------------------------------
def _batch_indices(n: int, size: int) -> Iterator[np.ndarray]:
    perm = _rng().permutation(n)
    for i in range(n // size):
        yield perm[i * size:(i + 1) * size]


def data_generator(ipds, spikes, batch_size=None):
    """Shuffled batches ``(spike_batch, ipd_batch)`` (seed: same name and order).

    Yields ``len(ipds) // batch_size`` batches of ``batch_size`` samples (None: the module's
    ``batch_size``) in a random order; the last incomplete batch is dropped.
    """
    size = check_int(_p("batch_size") if batch_size is None else batch_size, "batch_size",
                     minimum=1)
    ipds = _numpy(ipds, "ipds")
    spikes = _numpy(spikes, "spikes")
    if ipds.shape[0] != spikes.shape[0]:
        raise ValueError(f"ipds has {ipds.shape[0]} samples but spikes has {spikes.shape[0]}")
    for index in _batch_indices(spikes.shape[0], size):
        yield as_tensor(spikes[index]), as_tensor(ipds[index])


# ---- training ---------------------------------------------------------------------------------
def _epochs_and_lr(nb_epochs, lr):
    """The training length and learning rate: the arguments, else the parameters."""
    nb_epochs = check_int(_p("nb_epochs") if nb_epochs is None else nb_epochs, "nb_epochs",
                          minimum=0)
    lr = check_real(_p("lr") if lr is None else lr, "lr")
    if lr < 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    return nb_epochs, lr


def _fit(model, ipds, spikes, nb_epochs, lr, verbose) -> list:
    nb_epochs, lr = _epochs_and_lr(nb_epochs, lr)
    labels = discretise(ipds)
    events = SpikeEvents.from_dense(_spikes(spikes, "spikes"))
    if labels.shape[0] != events.n_samples:
        raise ValueError(f"ipds has {labels.shape[0]} samples but spikes has "
                         f"{events.n_samples}")
    optimizer = Adam(model, lr=lr)
    if verbose:
        print(f"Want loss for epoch 1 to be about {-np.log(1 / _p('num_classes')):.2f}, "
              f"multiply m by constant to get this")
    loss_hist = []
    size = check_int(_p("batch_size"), "batch_size", minimum=1)
    for e in range(nb_epochs):
        local_loss = []
        for index in _batch_indices(events.n_samples, size):
            loss, grads = model.loss_and_grad(events, labels[index], index=index)
            optimizer.step(grads)
            local_loss.append(loss)
        loss_hist.append(float(np.mean(local_loss)) if local_loss else float("nan"))
        if verbose:
            print("Epoch %i: loss=%.5f" % (e + 1, loss_hist[-1]))
    return loss_hist


def _write_back(W, value) -> np.ndarray:
    """Update a caller's float32 weight array in place (like an ``nn.Parameter``) and return
    it; a copy when it cannot be updated in place."""
    if (isinstance(W, np.ndarray) and W.dtype == np.float32 and W.flags.writeable
            and W.shape == value.shape):
        np.copyto(W, value)
        return W
    return as_tensor(value.copy())


def train_membrane_only(ipds, spikes, W=None, nb_epochs=None, lr=None, tau=20 * ms,
                        verbose=True):
    """The seed's membrane-only training loop: Adam, loss ``NLL(log_softmax(0.01 sum_t v))``.

    Returns ``(W, loss_hist)``; a float32 ``W`` passed in is updated in place. Batches come
    from the module's shuffling (``batch_size``, last incomplete batch dropped).
    """
    W = init_weight_matrix() if W is None else W
    model = _membrane_model(W, tau, readout="sum")
    loss_hist = _fit(model, ipds, spikes, nb_epochs, lr, verbose)
    return _write_back(W, model.w), loss_hist


def train_snn(ipds, spikes, W1=None, W2=None, nb_epochs=None, lr=None, tau=20 * ms,
              verbose=True):
    """The seed's SNN training loop: Adam, loss ``NLL(log_softmax(mean_t v))``, surrogate
    gradient with ``beta``.

    Returns ``(W1, W2, loss_hist)``; float32 ``W1``/``W2`` passed in are updated in place.
    """
    if W1 is None or W2 is None:
        W1_init, W2_init = init_weight_matrices()
        W1 = W1_init if W1 is None else W1
        W2 = W2_init if W2 is None else W2
    model = _snn_model(W1, W2, tau, tau, readout="mean")
    loss_hist = _fit(model, ipds, spikes, nb_epochs, lr, verbose)
    return _write_back(W1, model.w1), _write_back(W2, model.w2), loss_hist


def train(*args, model="snn", **kwargs):
    """Seed 002: ``train(ipds, spikes, model="snn")`` trains the ``"snn"`` (returns
    ``(W1, W2, loss_hist)``, see :func:`train_snn`) or ``"membrane_only"`` network (returns
    ``(W, loss_hist)``, see :func:`train_membrane_only`).

    Seeds 000/001: ``train(w1, w2, signs, ipds, spikes, ipds_validation, spikes_validation,
    ...)`` is :func:`train_with_signs`."""
    if len(args) > 3 or "ipds_validation" in kwargs or "signs" in kwargs:
        return train_with_signs(*args, **kwargs)
    if model == "snn":
        return train_snn(*args, **kwargs)
    if model == "membrane_only":
        return train_membrane_only(*args, **kwargs)
    raise ValueError(f"model must be 'snn' or 'membrane_only', got {model!r}")


# ---- evaluation -------------------------------------------------------------------------------
def test_accuracy(ipds, spikes, run: Callable):
    """Run ``run(spike_batch) -> output (B, T, C)`` on shuffled batches (seeds 000/001).

    The class estimate is ``argmax_c sum_t output``. Returns ``(ipd_true, ipd_est, confusion,
    accs)``: true IPDs and estimated IPDs (class midpoints) of the batched samples, float64;
    ``confusion[estimated, true]`` counts (num_classes, num_classes); per-batch accuracies.
    """
    accs, ipd_true, ipd_est = [], [], []
    C = _p("num_classes")
    confusion = np.zeros((C, C))
    for spike_batch, ipd_batch in data_generator(ipds, spikes):
        labels = discretise(ipd_batch)
        output = _numpy(run(spike_batch), "run(spike_batch)")
        estimated = np.argmax(np.sum(output, axis=1), axis=1)
        np.add.at(confusion, (estimated, labels), 1)
        ipd_true.append(np.asarray(ipd_batch, dtype=np.float64))
        ipd_est.append(continuise(estimated))
        accs.append(np.mean(labels == estimated))
    if not accs:
        raise ValueError(f"no complete batch: {len(ipds)} samples, "
                         f"batch_size={_p('batch_size')}")
    return np.hstack(ipd_true), np.hstack(ipd_est), confusion, accs


def analyse(ipds, spikes, label, run: Callable, plot_analysis=1):
    """Accuracy and absolute error of a classifier ``run`` (seed: same name).

    Prints ``"{label} classifier accuracy: ..%"`` and ``"{label} absolute error: .. deg"``;
    with ``plot_analysis`` (needs matplotlib; skipped with a warning without it) draws the
    histograms of true/estimated IPDs and the confusion matrix. Returns ``(accuracy mean %,
    accuracy std % over batches, absolute error mean deg, absolute error std deg)``.
    """
    ipd_true, ipd_est, confusion, accs = test_accuracy(ipds, spikes, run)
    abs_errors_deg = np.abs(ipd_true - ipd_est) * 180 / np.pi
    acc_mean, acc_std = float(100 * np.mean(accs)), float(100 * np.std(accs))
    err_mean, err_std = float(np.mean(abs_errors_deg)), float(np.std(abs_errors_deg))
    print(f"{label} classifier accuracy: {acc_mean:.1f}%")
    print(f"{label} absolute error: {err_mean:.1f} deg \n")
    if plot_analysis:
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            warnings.warn("analyse: matplotlib is not installed, no plots "
                          "(pip install 'spikeloc[plot]')", RuntimeWarning, stacklevel=2)
        else:
            _plot_analysis(plt, ipd_true, ipd_est, confusion, label)
    return acc_mean, acc_std, err_mean, err_std


def _plot_analysis(plt, ipd_true, ipd_est, confusion, label):
    fig = plt.figure(figsize=(10, 4), dpi=100)
    plt.subplot(121)
    plt.hist(ipd_true * 180 / np.pi, bins=_p("num_classes"), label="True")
    plt.hist(ipd_est * 180 / np.pi, bins=_p("num_classes"), label="Estimated")
    plt.xlabel("IPD")
    plt.yticks([])
    plt.legend(loc="best")
    plt.title(label)
    plt.subplot(122)
    with np.errstate(invalid="ignore", divide="ignore"):
        confusion = confusion / np.sum(confusion, axis=0)[np.newaxis, :]
    image = plt.imshow(confusion, interpolation="nearest", aspect="auto", origin="lower",
                       extent=(-90, 90, -90, 90))
    plt.xlabel("True IPD")
    plt.ylabel("Estimated IPD")
    plt.title("Confusion matrix")
    plt.colorbar(image).set_label("Probability")
    plt.tight_layout()
    return fig


# ---- the notebook's NumPy helpers -------------------------------------------------------------
def softmax(x):
    """``exp(x - max x) / sum exp(x - max x)`` over axis 0 (the notebook's demonstration)."""
    x = np.asarray(x, dtype=np.float64)
    e_x = np.exp(x - np.max(x))
    return e_x / e_x.sum(axis=0)


def log_softmax(x):
    """``log(softmax(x))`` over axis 0, as the notebook's demonstration (for a batch of class
    scores (B, C) use :func:`log_softmax_fn`, which normalises over the classes)."""
    return np.log(softmax(x))


def log_softmax_fn(m):
    """The seed's ``log_softmax_fn = nn.LogSoftmax(dim=1)``: log-probabilities of class scores
    ``m`` (B, C) over the classes (axis 1), float64, computed stably."""
    m = np.asarray(_numpy(m, "m"), dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"m must be class scores of shape (B, C), got {m.shape}")
    shifted = m - m.max(axis=1, keepdims=True)
    return as_tensor(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def loss_fn(log_probabilities, labels) -> float:
    """The seed's ``loss_fn = nn.NLLLoss()``: the mean over the batch of
    ``-log_probabilities[b, labels[b]]``."""
    logp = np.asarray(_numpy(log_probabilities, "log_probabilities"), dtype=np.float64)
    y = np.asarray(_numpy(labels, "labels"))
    if logp.ndim != 2 or y.shape != (logp.shape[0],):
        raise ValueError(f"loss_fn expects log-probabilities (B, C) and labels (B,), got "
                         f"{logp.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0
                                                              or y.max() >= logp.shape[1])):
        raise ValueError(f"labels must be class indices in [0, {logp.shape[1]})")
    return float(-logp[np.arange(len(y)), y].mean())


# ---- seeds 000 and 001: Dale's law -------------------------------------------------------------
def get_dales_mask(nb_inputs, nb_out, ie_ratio, *, inhibitory="random"):
    """Dale's-law mask (nb_inputs, nb_out), float32: rows of inhibitory presynaptic units -1,
    the others +1. ``inhibitory="random"``: ``int(nb_inputs ie_ratio)`` rows drawn at random
    (seed 001); ``"first"``: rows ``0 .. ceil(ie_ratio nb_inputs) - 1`` (seed 000)."""
    nb_inputs = check_int(nb_inputs, "nb_inputs", minimum=1)
    nb_out = check_int(nb_out, "nb_out", minimum=1)
    signs = Dale(ie_ratio, inhibitory=inhibitory).signs("w1", nb_inputs, _rng())
    return as_tensor(np.repeat(signs[:, None], nb_out, axis=1))


def get_signed_weights(w, sign):
    """``|w| * sign`` (seeds 000/001): the weights the network uses under Dale's law."""
    return as_tensor(np.abs(_numpy(w, "w")) * _numpy(sign, "sign"))


def _looks_like_signs(value) -> bool:
    """A pair of sign masks/vectors (what init_weight_matrices returns as ``signs``)."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(
        np.ndim(_numpy(v, "signs")) in (1, 2) for v in value)


def _row_signs(signs, W1, W2):
    """Per-presynaptic-unit signs (two float32 vectors) from masks or vectors, checked."""
    out = []
    for name, sign, W in (("signs[0]", signs[0], W1), ("signs[1]", signs[1], W2)):
        arr = np.asarray(_numpy(sign, name), dtype=np.float32)
        rows = np.shape(W)[0]
        if arr.ndim == 2:
            if arr.shape != np.shape(W) or not np.all(arr == arr[:, :1]):
                raise ValueError(f"{name} must be a Dale's-law mask of the weights' shape "
                                 f"{np.shape(W)} with one sign per row, got {arr.shape}")
            arr = arr[:, 0]
        if arr.shape != (rows,) or not np.all(np.abs(arr) == 1):
            raise ValueError(f"{name} must hold one sign (+1 or -1) per presynaptic unit "
                             f"({rows}), got shape {arr.shape}")
        out.append(np.ascontiguousarray(arr))
    return out


@dataclass(frozen=True)
class _GivenSigns(Dale):
    """Dale's law with the signs a notebook made (:func:`get_dales_mask`)."""

    given: tuple = field(default=(None, None), compare=False, repr=False)

    def signs(self, layer, n, rng):
        sign = self.given[0 if layer == "w1" else 1]
        return None if sign is None else sign.copy()


def train_with_signs(w1, w2, signs, ipds, spikes, ipds_validation, spikes_validation,
                     tau_hidden=None, tau_output=None, lr=0.01, n_epochs=30, *,
                     readout=None):
    """Seeds 000/001's ``train``: Adam on ``w1``, ``w2`` under Dale's law (``|W| * sign``
    when ``dales_law``), the validation loss after every epoch, the weights of the best
    validation epoch kept.

    Seed 001 (``tau_hidden`` not given): tau 5 ms for both layers, the ``0.01 x sum``
    readout, and its early stopping (stop when none of the last 9 epochs improved on the
    validation loss before them). Seed 000 (``tau_hidden``, ``tau_output`` [s] given): the
    mean readout, no early stopping (its active rule never fires). Returns
    ``(w1, w2, signs)``: the signed weights ``|w| * sign`` of the best epoch, as the seeds do
    (seed 000 meant to return its best weights but returned the last ones).
    """
    from .training import train as fit
    seed_000 = tau_hidden is not None or tau_output is not None
    tau_h = 5 * ms if tau_hidden is None else tau_hidden
    tau_o = tau_h if tau_output is None else tau_output
    readout = readout or ("mean" if seed_000 else "sum")
    n_epochs, lr = _epochs_and_lr(n_epochs, lr)
    apply = _p("dales_law")
    s1, s2 = _row_signs(signs, w1, w2)
    dale = _GivenSigns(0.5, given=(s1, s2)) if apply else None
    model = _snn_model(w1, w2, tau_h, tau_o, readout=readout, dale=dale)
    fit(model, _numpy(ipds, "ipds"), SpikeEvents.from_dense(_spikes(spikes, "spikes")),
        stimulus=current_stimulus(), epochs=n_epochs, lr=lr,
        batch_size=check_int(_p("batch_size"), "batch_size", minimum=1),
        validation=(_numpy(ipds_validation, "ipds_validation"),
                    SpikeEvents.from_dense(_spikes(spikes_validation, "spikes_validation"))),
        early_stopping=None if seed_000 else 10, seed=_next_seed() >> 1, progress=False)
    if apply:
        return as_tensor(model.w1_eff), as_tensor(model.w2_eff), signs
    return as_tensor(model.w1.copy()), as_tensor(model.w2.copy()), signs


def analyse_accuracy(ipds, spikes, run: Callable, label, plot_analysis=1) -> float:
    """Seeds 000/001's ``analyse_accuracy``: prints the accuracy and absolute error of
    ``run`` (and plots the analysis, see :func:`analyse`); returns the accuracy in %."""
    return analyse(ipds, spikes, label, run, plot_analysis)[0]
