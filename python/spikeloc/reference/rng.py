"""Counter-based random numbers, exactly as specified in ``spikeloc.h``.

The generator is SplitMix64's mixing function applied to a counter. Every random number is
addressed by ``(seed, stream index, word)``, so a sample's randomness does not depend on how
many samples were generated with it, on chunking or on thread counts (MODEL.md section 1).

All arithmetic is modulo 2**64. It is done here on ``numpy.uint64`` *arrays* (never Python
ints mixed with NumPy scalars, whose promotion rules differ between NumPy versions), with
overflow warnings silenced: wrapping is the intended behaviour.

    mix64(z):         z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                      z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                      return z ^ (z >> 31)
    key(seed, index)  = mix64(mix64(seed) ^ (index * GAMMA))
    word(key, w)      = mix64(key + (w + 1) * GAMMA)
    uniform53         = (word >> 11) / 2**53                       in [0, 1)
    stimulus element e of a sample:
        m = word(key, e // 2) >> 40                 (e even: the top 24 bits)
        m = (word(key, e // 2) >> 8) & 0xFFFFFF     (e odd: the next 24 bits)
        U = m / 2**24                                              in [0, 1)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GAMMA",
    "WORD_IPD",
    "WORD_PHASE",
    "SET_INDEX",
    "WORD_EPOCH_PHASE",
    "WORD_DELAY_NOISE",
    "delay_noise_normals",
    "as_u64",
    "mix64",
    "key",
    "word",
    "stimulus_uniforms",
    "uniform53",
]

_U64 = np.uint64
_MASK64 = (1 << 64) - 1

#: SplitMix64 increment (the golden ratio times 2**64, odd).
#: SplitMix64's increment (the golden-ratio constant).
GAMMA = 0x9E3779B97F4A7C15
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_GAMMA = _U64(GAMMA)

#: Word of a sample's IPD draw (``SPK_WORD_IPD``).
WORD_IPD = 1 << 62
#: Word of a sample's phase-offset draw (``SPK_WORD_PHASE``).
WORD_PHASE = (1 << 62) + 1
#: Stream index of a per-set draw (``SPK_SET_INDEX`` = INT64_MAX).
SET_INDEX = (1 << 63) - 1
#: Word of the per-epoch phase offset, drawn on stream (seed, epoch) (``SPK_WORD_EPOCH_PHASE``).
WORD_EPOCH_PHASE = (1 << 62) + (1 << 40)
#: First word of the phase-delay noise (``SPK_WORD_DELAY_NOISE``): input i uses words
#: WORD_DELAY_NOISE + 2 i and WORD_DELAY_NOISE + 2 i + 1 of the sample's stream.
WORD_DELAY_NOISE = (1 << 62) + (1 << 61)


def as_u64(values) -> np.ndarray:
    """Integers (Python ints, possibly negative or >= 2**63, or integer arrays) as a uint64
    array, reduced modulo 2**64 (two's complement for negative values)."""
    if isinstance(values, np.ndarray) and values.dtype == np.uint64:
        return values.copy()
    if isinstance(values, np.ndarray) and values.dtype.kind == "i":
        return values.astype(np.int64).view(np.uint64).copy()
    arr = np.asarray(values, dtype=object)
    flat = [int(v) & _MASK64 for v in arr.reshape(-1)]
    return np.array(flat, dtype=np.uint64).reshape(arr.shape)


def mix64(z) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on a uint64 array (returns a new uint64 array)."""
    z = np.array(as_u64(z), dtype=np.uint64, ndmin=1)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _U64(30))) * _M1
        z = (z ^ (z >> _U64(27))) * _M2
        return z ^ (z >> _U64(31))


def key(seed, index) -> np.ndarray:
    """Stream key ``mix64(mix64(seed) ^ (index * GAMMA))``; ``index`` may be an array."""
    s = mix64(as_u64(seed))
    idx = np.atleast_1d(as_u64(index))
    with np.errstate(over="ignore"):
        return mix64(s ^ (idx * _GAMMA))


def word(k, w) -> np.ndarray:
    """Word ``w`` of stream key ``k``: ``mix64(k + (w + 1) * GAMMA)`` (broadcasting)."""
    k = np.atleast_1d(as_u64(k))
    w = np.atleast_1d(as_u64(w))
    with np.errstate(over="ignore"):
        return mix64(k + (w + _U64(1)) * _GAMMA)


def stimulus_uniforms(seed, index, n: int) -> np.ndarray:
    """U[e] for stimulus elements e = 0 .. n-1 of sample stream ``index`` (float64, shape (n,)).

    Each 64-bit word yields two 24-bit integers (elements 2w and 2w+1), so every U is an exact
    multiple of 2**-24 in [0, 1) and exactly representable in float32. ``index`` may also be
    a 1-D array of stream indices, giving shape (len(index), n).
    """
    n = int(n)
    idx = np.atleast_1d(as_u64(index))
    k = key(seed, idx)                                  # (S,)
    n_words = (n + 1) // 2
    words = word(k[:, None], np.arange(n_words, dtype=np.uint64)[None, :])   # (S, n_words)
    m = np.empty((idx.shape[0], 2 * n_words), dtype=np.uint64)
    m[:, 0::2] = words >> _U64(40)                      # even e: top 24 bits
    m[:, 1::2] = (words >> _U64(8)) & _U64(0xFFFFFF)    # odd e: bits 8..31
    u = m[:, :n].astype(np.float64) / 2.0**24
    return u[0] if np.ndim(index) == 0 else u


def uniform53(seed, first_index, w, n: int) -> np.ndarray:
    """``out[b] = (word(key(seed, first_index + b), w) >> 11) / 2**53`` for b < n (float64)."""
    with np.errstate(over="ignore"):
        idx = as_u64(int(first_index)) + np.arange(int(n), dtype=np.uint64)
        bits = word(key(seed, idx), w) >> _U64(11)
    return bits.astype(np.float64) / 2.0**53


def delay_noise_normals(seed, index, n: int) -> np.ndarray:
    """Standard normals z_i, i < n, of the phase-delay noise of sample stream ``index``.

    Box-Muller (cosine branch): ``z_i = sqrt(-2 ln(1 - u1)) cos(2 pi u2)`` with
    ``u1 = uniform53`` of word ``WORD_DELAY_NOISE + 2 i`` and ``u2`` of word
    ``WORD_DELAY_NOISE + 2 i + 1`` (``1 - u1`` lies in (0, 1]). ``index`` may be a 1-D array of
    stream indices, giving shape (len(index), n); a scalar gives shape (n,).
    """
    n = int(n)
    idx = np.atleast_1d(as_u64(index))
    k = key(seed, idx)                                               # (S,)
    base = _U64(WORD_DELAY_NOISE) + _U64(2) * np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        u1 = (word(k[:, None], base[None, :]) >> _U64(11)).astype(np.float64) / 2.0**53
        u2 = (word(k[:, None], (base + _U64(1))[None, :]) >> _U64(11)).astype(np.float64) / 2.0**53
    z = np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)
    return z[0] if np.ndim(index) == 0 else z
