"""The interaural phase difference (IPD) stimulus (MODEL.md section 1).

A pure tone of frequency ``freq`` reaches the two ears with a phase difference ``ipd``
(radians, in [-pi/2, pi/2)). Each ear has ``anf_per_ear`` auditory nerve fibres with phase
delays ``linspace(0, pi/2, anf_per_ear)``; each fibre spikes at step ``n`` with probability
``rate_max dt ((1 + sin theta) / 2) ** envelope_power``. Spikes are uint8 0/1 arrays of shape
``(n, T, N_in)`` with ``N_in = 2 anf_per_ear`` (ear 0 first), or, with ``events=True``, the
same spikes as :class:`~spikeloc.SpikeEvents` built straight from the random draws (what the
networks read; no dense array is made).

Random numbers come from a counter-based generator keyed by ``(seed, sample index)``: a
sample's IPD and spikes depend only on the seed and its index, not on how many samples are
generated together, on chunking, or on the thread count. The seed has no default: a test set
drawn with the training set's seed would be (the start of) the training set, so every call
that draws data names its stream (``generate(4096, seed=0)``, then ``generate(2048,
seed=1)``).

Data options of the follow-up studies (issue 4 item 8; the seed notebooks in shared/seeds do
not contain code for either, so the definitions here are spikeloc's):

* ``phase_offset="per_epoch"``: one phase offset for all samples of a set, redrawn each
  training epoch, deterministic from ``(seed, epoch)``. A sample keeps its IPD, its spike
  uniforms and its delay noise (all keyed by ``(seed, sample index)``); only the tone's phase
  moves. Use it with ``train(..., regenerate=stim.regenerator(ipd, seed))``, which rebuilds
  the training inputs of epoch ``e`` with :meth:`Stimulus.spikes_for` ``(..., epoch=e)``.
* ``phase_delay_noise=sigma`` [rad]: each input's phase delay ``psi_j`` is shifted by
  ``sigma z``, ``z ~ N(0, 1)`` drawn once per (sample, input) and frozen for the sample, so the
  two ears' fibres no longer share exact delays.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

from .evaluation import class_midpoints, labels_from_ipd
from ._abi import (SET_INDEX, WORD_DELAY_NOISE, WORD_EPOCH_PHASE, WORD_IPD, WORD_PHASE,
                   StimulusParams)
from ._native_api import (MAX_EVENT_DIM, _native, check_int, check_real, check_seed, real_array,
                          resolve_threads)

__all__ = ["Stimulus", "PRESETS", "WORD_IPD", "WORD_PHASE", "SET_INDEX", "WORD_EPOCH_PHASE",
           "WORD_DELAY_NOISE"]

_PHASE_MODES = ("per_set", "per_sample", "per_epoch")


def _check_first_index(first_index, n: int) -> int:
    first_index = check_int(first_index, "first_index", minimum=0)
    if first_index + n > SET_INDEX:
        raise ValueError(
            f"first_index + n must be <= 2**63 - 1, got first_index={first_index}, n={n}")
    return first_index


@dataclass(frozen=True)
class Stimulus:
    """IPD stimulus configuration (defaults: the Cosyne tutorial).

    Attributes
    ----------
    dt : float
        Time step [s], > 0 (tutorial: 1 ms).
    duration : float
        Duration of a sample [s], > 0; ``steps = round(duration / dt)`` (tutorial: 100 ms),
        between 1 and 65535 (the most time steps spike events hold).
    freq : float
        Tone frequency [Hz] (tutorial: 20 Hz).
    anf_per_ear : int
        Auditory nerve fibres per ear, 1 <= N_a <= 32767; ``n_in = 2 N_a`` (tutorial: 100).
    rate_max : float
        Peak firing rate [Hz], >= 0 (tutorial: 600 Hz).
    envelope_power : float
        Sharpness k >= 0 of the rate envelope (tutorial: 2).
    num_classes : int
        Number C of IPD classes over [-pi/2, pi/2) (tutorial: 12, 15 degrees each).
    null_phase_delays : bool
        Control condition: all fibres have phase delay 0.
    phase_offset : "per_sample", "per_set", "per_epoch" or float
        Phase offset phi0 of the tone [cycles]: one draw per sample (``"per_sample"``, the
        default: the network must learn the IPD whatever the tone's phase, as the seeds'
        comments ask), one draw per generated set (``"per_set"``, the code of seeds 000/001:
        the draw depends only on the seed, so a training and a test set drawn with different
        seeds differ in phase), one draw per set and epoch (``"per_epoch"``: ``uniform53`` of the
        stream ``(seed, epoch)``, word ``WORD_EPOCH_PHASE``; the ``epoch`` argument of
        :meth:`phases`, :meth:`spikes_for` and :meth:`generate` picks it, 0 by default), or a
        fixed number of cycles (seed 002 comments its draw out: ``0.0`` for every sample).
    phase_delay_noise : float
        Standard deviation sigma [rad], >= 0, of Gaussian noise on each input's phase delay,
        drawn once per (sample, input) from the sample's random stream (0: none, the seeds'
        stimulus). Example: 0.1 rad is about 6 degrees.
    """

    dt: float = 1e-3
    duration: float = 0.1
    freq: float = 20.0
    anf_per_ear: int = 100
    rate_max: float = 600.0
    envelope_power: float = 2.0
    num_classes: int = 12
    null_phase_delays: bool = False
    phase_offset: Union[str, float] = "per_sample"
    phase_delay_noise: float = 0.0

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        dt = check_real(self.dt, "dt")
        if dt <= 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        set_("dt", dt)
        duration = check_real(self.duration, "duration")
        if duration <= 0:
            raise ValueError(f"duration must be > 0, got {duration}")
        set_("duration", duration)
        steps = duration / dt  # may overflow to inf for a tiny dt
        if not math.isfinite(steps) or round(steps) > MAX_EVENT_DIM:
            raise ValueError(
                f"dt = {dt} s gives round(duration / dt) = {steps:.6g} time steps for "
                f"duration = {duration} s; at most {MAX_EVENT_DIM} steps fit in spike events "
                f"(choose a larger dt or a shorter duration)")
        if round(steps) < 1:
            raise ValueError(
                f"duration must be at least one time step: round(duration / dt) = "
                f"round({duration} / {dt}) = 0")
        set_("freq", check_real(self.freq, "freq"))
        set_("anf_per_ear", check_int(self.anf_per_ear, "anf_per_ear", minimum=1,
                                      maximum=MAX_EVENT_DIM // 2))
        rate_max = check_real(self.rate_max, "rate_max")
        if rate_max < 0:
            raise ValueError(f"rate_max must be >= 0, got {rate_max}")
        set_("rate_max", rate_max)
        k = check_real(self.envelope_power, "envelope_power")
        if k < 0:
            raise ValueError(f"envelope_power must be >= 0, got {k}")
        set_("envelope_power", k)
        set_("num_classes", check_int(self.num_classes, "num_classes", minimum=1))
        if not isinstance(self.null_phase_delays, (bool, np.bool_)):
            raise TypeError(
                f"null_phase_delays must be a bool, got {type(self.null_phase_delays).__name__}")
        set_("null_phase_delays", bool(self.null_phase_delays))
        po = self.phase_offset
        if isinstance(po, str):
            if po not in _PHASE_MODES:
                raise ValueError(
                    f"phase_offset must be 'per_set', 'per_sample', 'per_epoch' or a number of "
                    f"cycles, got {po!r}")
        elif isinstance(po, numbers.Real) and not isinstance(po, (bool, np.bool_)):
            set_("phase_offset", check_real(po, "phase_offset"))
        else:
            raise TypeError(
                f"phase_offset must be 'per_set', 'per_sample', 'per_epoch' or a float, got "
                f"{type(po).__name__}")
        noise = check_real(self.phase_delay_noise, "phase_delay_noise")
        if not math.isfinite(noise) or noise < 0:
            raise ValueError(f"phase_delay_noise must be finite and >= 0 (rad), got {noise}")
        set_("phase_delay_noise", noise)

    # ---- presets -------------------------------------------------------------------------
    @classmethod
    def tutorial(cls, **overrides) -> "Stimulus":
        """The Cosyne tutorial's stimulus parameters: dt = 1 ms, 100 ms, 20 Hz, 2 x 100 fibres,
        600 Hz, k = 2, 12 classes, with the default phase offset (one draw per sample).

        Seed 002 itself fixes the phase at 0 for every sample (``phase_offset=0.0``) and seeds
        000/001 draw one offset per generated set (``phase_offset="per_set"``); MODEL.md
        sections 1 and 6 say why the default draws one per sample."""
        return cls(**overrides)

    @classmethod
    def hz250(cls, **overrides) -> "Stimulus":
        """The 250 Hz study's stimulus (seed 000): dt = 0.1 ms, f = 250 Hz (1000 steps), with
        the default phase offset (one draw per sample; seed 000 drew one per generated set,
        ``phase_offset="per_set"``)."""
        kw = dict(dt=1e-4, freq=250.0)
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes) -> "Stimulus":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Number of time steps T = round(duration / dt)."""
        return int(round(self.duration / self.dt))

    @property
    def n_in(self) -> int:
        """Number of inputs N_in = 2 anf_per_ear."""
        return 2 * self.anf_per_ear

    def _params(self) -> StimulusParams:
        return StimulusParams(dt=self.dt, steps=self.steps, freq=self.freq,
                              anf_per_ear=self.anf_per_ear, rate_max=self.rate_max,
                              envelope_power=self.envelope_power,
                              null_phase_delays=int(self.null_phase_delays))

    # ---- random draws --------------------------------------------------------------------
    def draw_ipd(self, n: int, seed: int, first_index: int = 0) -> np.ndarray:
        """IPDs of samples ``first_index .. first_index + n - 1`` [rad], float64 (n,), uniform in
        [-pi/2, pi/2)."""
        n = check_int(n, "n", minimum=0)
        seed = check_seed(seed)
        first_index = _check_first_index(first_index, n)
        u = np.empty(n, dtype=np.float64)
        if n:
            _native.uniform53(seed, first_index, WORD_IPD, u)
        return -np.pi / 2 + np.pi * u

    def phases(self, n: int, seed: int = 0, first_index: int = 0, *,
               epoch: int = 0) -> np.ndarray:
        """Phase offsets phi0 [cycles] used for samples ``first_index ..`` , float64 (n,).

        ``per_set``: one value for all samples of the seed; ``per_sample``: one draw per
        sample index; ``per_epoch``: one value for all samples of the seed in epoch ``epoch``
        (>= 0); a float: that value. ``epoch`` is ignored by the other modes.
        """
        n = check_int(n, "n", minimum=0)
        seed = check_seed(seed)
        first_index = _check_first_index(first_index, n)
        epoch = check_int(epoch, "epoch", minimum=0, maximum=SET_INDEX)
        if self.phase_offset == "per_epoch":
            one = np.empty(1, dtype=np.float64)
            _native.uniform53(seed, epoch, WORD_EPOCH_PHASE, one)
            return np.full(n, one[0])
        if self.phase_offset == "per_set":
            one = np.empty(1, dtype=np.float64)
            _native.uniform53(seed, SET_INDEX, WORD_PHASE, one)
            return np.full(n, one[0])
        if self.phase_offset == "per_sample":
            out = np.empty(n, dtype=np.float64)
            if n:
                _native.uniform53(seed, first_index, WORD_PHASE, out)
            return out
        return np.full(n, float(self.phase_offset))

    # ---- spikes ----------------------------------------------------------------------------
    def spikes_for(self, ipd, seed: int, first_index: int = 0, threads=None, *,
                   epoch: int = 0, events: bool = False):
        """Spikes for given IPDs.

        Parameters
        ----------
        ipd : float (n,)
            IPDs [rad] (finite).
        seed, first_index : int
            Random stream: sample ``b`` uses the stream ``(seed, first_index + b)``.
        threads : int or None
            Worker threads (None: ``SPIKELOC_NUM_THREADS`` or all cores).
        epoch : int >= 0
            Training epoch, for ``phase_offset="per_epoch"`` (ignored otherwise).
        events : bool
            False (default): a dense array. True: :class:`~spikeloc.SpikeEvents` built straight
            from the random draws, without the dense array (one pass; memory about the event
            lists' own size), equal to ``SpikeEvents.from_dense`` of the dense array.

        Returns
        -------
        spikes : uint8 array (n, T, N_in) of 0/1, or SpikeEvents of that shape (``events=True``).
        """
        arr = real_array(ipd, "ipd")
        if arr.ndim != 1:
            raise ValueError(f"ipd must be one-dimensional (n,), got shape {arr.shape}")
        ipd = np.ascontiguousarray(arr, dtype=np.float64)
        if not np.isfinite(ipd).all():
            raise ValueError("ipd contains NaN or infinite values")
        if not isinstance(events, (bool, np.bool_)):
            raise TypeError(f"events must be a bool, got {type(events).__name__}")
        n = ipd.shape[0]
        seed = check_seed(seed)
        first_index = _check_first_index(first_index, n)
        threads = resolve_threads(threads)
        phase = self.phases(n, seed, first_index, epoch=epoch)
        if events:
            from .events import SpikeEvents
            parts = _native.stimulus_events(self._params(), ipd, phase, seed, first_index,
                                            self.phase_delay_noise, threads)
            return SpikeEvents._built(n, self.steps, self.n_in, parts)
        spikes = np.empty((n, self.steps, self.n_in), dtype=np.uint8)
        if n:
            _native.stimulus_noisy(self._params(), ipd, phase, seed, first_index,
                                   self.phase_delay_noise, spikes, threads)
        return spikes

    def regenerator(self, ipd, seed: int, first_index: int = 0, threads=None, *,
                    events: bool = False):
        """A function ``epoch -> spikes`` for ``train(..., regenerate=...)``.

        It returns ``spikes_for(ipd, seed, first_index, threads, epoch=epoch, events=events)``:
        the same samples (IPDs, spike uniforms, delay noise) with the phase offset of that
        epoch, so with ``phase_offset="per_epoch"`` each epoch sees the tone at a new phase.
        Epoch 0 gives exactly ``generate(len(ipd), seed, first_index, events=events)[1]`` when
        ``ipd`` came from that call. ``events=True`` (what training wants) builds
        :class:`~spikeloc.SpikeEvents` directly, without a dense array.
        """
        arr = real_array(ipd, "ipd")
        if arr.ndim != 1:
            raise ValueError(f"ipd must be one-dimensional (n,), got shape {arr.shape}")
        ipd = np.array(arr, dtype=np.float64)   # a private copy
        seed = check_seed(seed)
        first_index = _check_first_index(first_index, ipd.shape[0])
        threads = resolve_threads(threads)
        if not isinstance(events, (bool, np.bool_)):
            raise TypeError(f"events must be a bool, got {type(events).__name__}")

        def regenerate(epoch: int):
            return self.spikes_for(ipd, seed, first_index, threads, epoch=epoch, events=events)
        return regenerate

    def generate(self, n: int, seed: int, first_index: int = 0,
                 threads=None, *, epoch: int = 0, events: bool = False) -> Tuple[np.ndarray, object]:
        """Draw ``n`` samples of the stream ``seed``: returns ``(ipd, spikes)``.

        Returns
        -------
        ipd : numpy.ndarray
            float64 (n,) [rad], uniform in [-pi/2, pi/2).
        spikes : numpy.ndarray or SpikeEvents
            uint8 (n, T, N_in); with ``events=True`` a :class:`~spikeloc.SpikeEvents` built
            from the same draws without the dense array (equal to converting the dense array
            with ``SpikeEvents.from_dense``): what training reads, at about a tenth of the
            dense array's memory at 250 Hz.

        Sample ``b`` is the sample of index ``first_index + b`` of the seed's stream, so
        ``generate(10, s)`` equals ``generate(5, s)`` followed by
        ``generate(5, s, first_index=5)``: draw a test set from another seed than the training
        set.
        ``epoch`` selects the phase offset of ``phase_offset="per_epoch"``.
        """
        ipd = self.draw_ipd(n, seed, first_index)
        return ipd, self.spikes_for(ipd, seed, first_index, threads, epoch=epoch, events=events)

    # ---- classes ---------------------------------------------------------------------------
    def labels(self, ipd) -> np.ndarray:
        """Class of each IPD: ``clip(floor((ipd + pi/2) C / pi), 0, C-1)``, int64, same shape
        (:func:`spikeloc.evaluation.labels_from_ipd` with this stimulus's C)."""
        return labels_from_ipd(ipd, self.num_classes)

    def midpoints(self, labels) -> np.ndarray:
        """IPD estimate of each class, its midpoint ``(c + 1/2) pi / C - pi/2`` [rad], float64
        (:func:`spikeloc.evaluation.class_midpoints` with this stimulus's C)."""
        return class_midpoints(labels, self.num_classes)

    def abs_error_deg(self, ipd, predicted) -> np.ndarray:
        """Absolute error ``|ipd - midpoint(predicted)|`` [degrees], float64."""
        ipd = real_array(ipd, "ipd").astype(np.float64)
        return np.abs(ipd - self.midpoints(predicted)) * 180 / math.pi


#: Named stimulus configurations.
PRESETS = {"tutorial": Stimulus.tutorial(), "250hz": Stimulus.hz250()}
