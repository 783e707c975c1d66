"""The interaural phase difference (IPD) stimulus (MODEL.md section 1).

A pure tone of frequency ``f`` reaches the two ears with a phase difference ``alpha`` (the
IPD, radians). Each ear has ``N_a`` auditory nerve fibres; fibre ``j`` has its own phase delay
``psi_j``. Fibres fire as inhomogeneous Bernoulli processes whose per-step probability follows
a sharpened sine envelope. For sample ``b``, step ``n``, fibre ``j < N_a``::

    ear 0, input j:        theta = 2 pi (f n dt + phi0_b) + psi_j
    ear 1, input N_a + j:  theta = 2 pi (f n dt + phi0_b) + psi_j + alpha_b
    p = rate_max dt ((1 + sin theta) / 2)^k
    spike iff U < p,  U ~ U[0, 1) from the counter-based generator (see ``rng``)

``phi0`` is the phase offset in cycles. Shapes: spikes ``(B, T, N_in)`` with
``N_in = 2 N_a``; inputs ``0 .. N_a-1`` belong to ear 0, ``N_a .. 2 N_a - 1`` to ear 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import rng

__all__ = [
    "StimulusParams",
    "phase_delays",
    "spike_probability",
    "stimulus",
    "draw_ipd",
    "draw_phase_per_sample",
    "draw_phase_per_set",
    "draw_phase_per_epoch",
    "delay_noise_offsets",
    "labels",
    "midpoints",
    "abs_error_deg",
    "envelope_mean",
    "expected_rate",
]


@dataclass(frozen=True)
class StimulusParams:
    """Stimulus parameters (the fields of ``spk_stimulus_params``); defaults of the tutorial.

    dt                time step [s]
    steps             number of time steps T (tutorial: duration 0.1 s / dt = 100)
    freq              tone frequency f [Hz]
    anf_per_ear       fibres per ear N_a (N_in = 2 N_a)
    rate_max          peak firing rate [Hz]; the per-step probability peaks at rate_max dt
    envelope_power    k >= 0, sharpness of the envelope
    null_phase_delays if True, psi_j = 0 for every fibre (control condition)
    """

    dt: float = 1e-3
    steps: int = 100
    freq: float = 20.0
    anf_per_ear: int = 100
    rate_max: float = 600.0
    envelope_power: float = 2.0
    null_phase_delays: bool = False

    @property
    def n_in(self) -> int:
        """Number of inputs N_in = 2 N_a."""
        return 2 * self.anf_per_ear

    @classmethod
    def from_duration(cls, duration: float = 0.1, dt: float = 1e-3, **kw) -> "StimulusParams":
        """Parameters with ``steps = round(duration / dt)``."""
        return cls(dt=dt, steps=int(round(duration / dt)), **kw)


#: Number of IPD classes of the tutorial (15 degrees each over [-pi/2, pi/2)).
#: IPD classes of the tutorial.
NUM_CLASSES = 12


def phase_delays(anf_per_ear: int, null: bool = False) -> np.ndarray:
    """Per-fibre phase delays psi_j [rad], shape (N_a,): ``linspace(0, pi/2, N_a)``, or zeros
    if ``null``."""
    if null:
        return np.zeros(anf_per_ear)
    return np.linspace(0.0, np.pi / 2, anf_per_ear)


def spike_probability(ipd, phase, params: StimulusParams, delay_offsets=None) -> np.ndarray:
    """Per-step spike probability p, float64 of shape (B, T, 2 N_a).

    ipd    (B,) IPD alpha_b [rad]
    phase  (B,) or scalar, phase offset phi0_b [cycles]
    delay_offsets  optional (B, 2 N_a) [rad], added to each input's phase delay (the
           phase-delay noise sigma z_{b,i}; see ``delay_noise_offsets``)

    p = rate_max dt ((1 + sin theta) / 2)^k (with 0^0 = 1, so k = 0 gives a constant rate).
    No clipping: if rate_max dt > 1 the input simply spikes whenever p > U.
    """
    ipd = np.atleast_1d(np.asarray(ipd, dtype=np.float64))
    B = ipd.shape[0]
    phase = np.broadcast_to(np.asarray(phase, dtype=np.float64), (B,))
    n = np.arange(params.steps, dtype=np.float64)
    psi = phase_delays(params.anf_per_ear, params.null_phase_delays)
    # common part: 2 pi (f n dt + phi0_b), shape (B, T, 1)
    base = 2.0 * np.pi * (params.freq * n[None, :] * params.dt + phase[:, None])
    base = base[:, :, None]
    theta = np.concatenate(
        [base + psi[None, None, :],                       # ear 0
         base + psi[None, None, :] + ipd[:, None, None]],  # ear 1
        axis=2)
    if delay_offsets is not None:
        theta = theta + np.asarray(delay_offsets, dtype=np.float64).reshape(B, 1, -1)
    envelope = (1.0 + np.sin(theta)) / 2.0
    return params.rate_max * params.dt * np.power(envelope, float(params.envelope_power))


def stimulus(ipd, phase, params: StimulusParams, seed: int, first_index: int = 0,
             delay_noise: float = 0.0):
    """Spikes of samples ``first_index .. first_index + B - 1`` (what ``spk_stimulus`` computes;
    with ``delay_noise`` = sigma > 0 [rad], what ``spk_stimulus_noisy`` computes: input i of
    sample b has its phase delay shifted by ``sigma z_{b,i}``, see ``delay_noise_offsets``).

    Returns ``(spikes, U, p)``:
      spikes  uint8 (B, T, N_in), 1 iff U < p
      U       float64 (B, T, N_in), the uniforms; element e = n N_in + i of sample b comes from
              ``rng.stimulus_uniforms(seed, first_index + b, T N_in)``
      p       float64 (B, T, N_in), from ``spike_probability``
    """
    B = np.atleast_1d(np.asarray(ipd)).shape[0]
    offsets = None
    if delay_noise:
        offsets = delay_noise_offsets(B, seed, first_index, params.n_in, delay_noise)
    p = spike_probability(ipd, phase, params, offsets)
    B, T, N_in = p.shape
    idx = int(first_index) + np.arange(B)
    U = rng.stimulus_uniforms(seed, idx, T * N_in).reshape(B, T, N_in)
    spikes = (U < p).astype(np.uint8)
    return spikes, U, p


def draw_ipd(n: int, seed: int, first_index: int = 0) -> np.ndarray:
    """IPDs alpha_b = -pi/2 + pi * uniform53(seed, first_index + b, WORD_IPD), shape (n,) [rad]."""
    return -np.pi / 2 + np.pi * rng.uniform53(seed, first_index, rng.WORD_IPD, n)


def draw_phase_per_sample(n: int, seed: int, first_index: int = 0) -> np.ndarray:
    """Phase offsets phi0_b = uniform53(seed, first_index + b, WORD_PHASE), shape (n,) [cycles]."""
    return rng.uniform53(seed, first_index, rng.WORD_PHASE, n)


def draw_phase_per_set(seed: int) -> float:
    """The one phase offset of a generated set: uniform53(seed, SET_INDEX, WORD_PHASE) [cycles]."""
    return float(rng.uniform53(seed, rng.SET_INDEX, rng.WORD_PHASE, 1)[0])


def labels(ipd, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Class of each IPD: ``clip(floor((alpha + pi/2) C / pi), 0, C-1)``, int64."""
    ipd = np.asarray(ipd, dtype=np.float64)
    c = np.floor((ipd + np.pi / 2) * num_classes / np.pi)
    return np.clip(c, 0, num_classes - 1).astype(np.int64)


def midpoints(classes, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """IPD estimate of each class: its midpoint ``(c + 1/2) pi / C - pi/2`` [rad], float64."""
    c = np.asarray(classes, dtype=np.float64)
    return (c + 0.5) * np.pi / num_classes - np.pi / 2


def abs_error_deg(ipd, predicted_classes, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Absolute error ``|alpha - midpoint(c_hat)| 180 / pi`` [degrees]."""
    return np.abs(np.asarray(ipd, dtype=np.float64)
                  - midpoints(predicted_classes, num_classes)) * 180.0 / np.pi


def envelope_mean(k: float) -> float:
    """E[((1 + sin theta) / 2)^k] for theta uniform on a cycle.

    (1 + sin theta) / 2 = sin^2(theta / 2 + pi / 4), and E[sin^(2k)] = Gamma(k + 1/2) /
    (sqrt(pi) Gamma(k + 1)), which for integer k is C(2k, k) / 4^k (k = 2: 3/8).
    """
    k = float(k)
    if k == int(k) and k >= 0:
        kk = int(k)
        return math.comb(2 * kk, kk) / 4.0**kk
    return math.exp(math.lgamma(k + 0.5) - math.lgamma(k + 1.0)) / math.sqrt(math.pi)


def expected_rate(params: StimulusParams) -> float:
    """Per-step spike probability averaged over the phase of the tone (dimensionless):
    ``rate_max dt E[((1 + sin theta)/2)^k]`` (valid while rate_max dt <= 1).

    It is the exact mean of ``spike_probability`` over a fibre's steps whenever the stimulus
    covers whole cycles (f T dt integer, more than 2k steps per cycle), for any phase or IPD.
    """
    return params.rate_max * params.dt * envelope_mean(params.envelope_power)


# ---- data options (issue 4 item 8): per-epoch phase offset, phase-delay noise -------------

def draw_phase_per_epoch(seed: int, epoch: int) -> float:
    """The phase offset of every sample of a set in epoch ``epoch`` (from 0):
    ``uniform53(seed, epoch, WORD_EPOCH_PHASE)`` [cycles], drawn on stream index ``epoch``."""
    return float(rng.uniform53(seed, epoch, rng.WORD_EPOCH_PHASE, 1)[0])


def delay_noise_offsets(n: int, seed: int, first_index: int, n_in: int,
                        sigma: float) -> np.ndarray:
    """Phase-delay noise ``sigma z_{b,i}`` [rad] of samples ``first_index .. + n - 1``, float64
    (n, N_in): ``z`` from ``rng.delay_noise_normals`` (standard normals, one per input and
    sample, fixed for the whole sample)."""
    idx = int(first_index) + np.arange(int(n))
    z = rng.delay_noise_normals(seed, idx, n_in)
    return float(sigma) * z.reshape(int(n), int(n_in))
