// Counter-based random numbers (spikeloc.h, "counter-based random numbers").
//
// Every random number is a pure function of (seed, stream index, counter): SplitMix64's
// output function applied to key + (counter + 1) * GAMMA. A sample's stimulus therefore does
// not depend on threads, chunking or on which other samples were generated with it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum CounterRNG {
    public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15
    /// Word of a sample's IPD draw.
    public static let wordIPD: UInt64 = 1 << 62
    /// Word of a sample's phase-offset draw.
    public static let wordPhase: UInt64 = (1 << 62) + 1
    /// Word of the per-epoch phase offset: phi0(seed, epoch) = uniform53(key(seed, epoch), wordEpochPhase).
    /// Drawn by the Python layer through spk_uniform53; mirrors SPK_WORD_EPOCH_PHASE for the Swift tests.
    public static let wordEpochPhase: UInt64 = (1 << 62) + (1 << 40)
    /// First word of the phase-delay noise: input i uses words wordDelayNoise + 2 i and + 2 i + 1.
    public static let wordDelayNoise: UInt64 = (1 << 62) + (1 << 61)
    /// Stream index of per-set draws.
    public static let setIndex: Int64 = Int64.max

    /// SplitMix64 finaliser (Steele, Lea & Flood 2014; constants of Stafford's "Mix13").
    @inline(__always) public static func mix64(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Key of stream `index` under `seed`.
    @inline(__always) public static func key(seed: UInt64, index: UInt64) -> UInt64 {
        mix64(mix64(seed) ^ (index &* gamma))
    }

    /// The `w`-th 64-bit output of the stream with key `key`.
    @inline(__always) public static func word(key: UInt64, _ w: UInt64) -> UInt64 {
        mix64(key &+ (w &+ 1) &* gamma)
    }

    /// Uniform double in [0, 1) with 53 random bits.
    @inline(__always) public static func uniform53(key: UInt64, word w: UInt64) -> Double {
        Double(word(key: key, w) >> 11) * 0x1p-53
    }

    /// Standard normal of input `i`'s phase-delay noise (Box-Muller, cosine branch):
    /// sqrt(-2 ln(1 - u1)) cos(2 pi u2), u1 and u2 the uniform53 of words
    /// wordDelayNoise + 2 i and + 2 i + 1 (1 - u1 is in (0, 1], so the logarithm is finite).
    @inline(__always) public static func delayNoiseNormal(key: UInt64, input i: UInt64) -> Double {
        let u1 = uniform53(key: key, word: wordDelayNoise &+ 2 &* i)
        let u2 = uniform53(key: key, word: wordDelayNoise &+ 2 &* i &+ 1)
        return (-2 * log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// The 24-bit integer behind stimulus element `e` (U = m / 2^24).
    @inline(__always) public static func stimulusBits(key: UInt64, element e: UInt64) -> UInt32 {
        let x = word(key: key, e >> 1)
        return (e & 1) == 0 ? UInt32(truncatingIfNeeded: x >> 40) : UInt32(truncatingIfNeeded: (x >> 8) & 0xFF_FFFF)
    }

    /// Vectorised: the 16 stimulus integers of words w0 ..< w0 + 8 (elements 2 w0 ..< 2 w0 + 16),
    /// stored as 16 consecutive UInt32 at `out` (element 2q at out[2q], 2q+1 at out[2q+1]).
    @inline(__always) static func stimulusBits16(key: UInt64, firstWord w0: UInt64, into out: UnsafeMutableRawPointer) {
        let q = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        var z = SIMD8<UInt64>(repeating: key &+ (w0 &+ 1) &* gamma) &+ q &* gamma
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z &>> 31)
        // low half <- bits 40..63 (even element), high half <- bits 8..31 (odd element)
        let packed = (z &>> 40) | (((z &>> 8) & 0xFF_FFFF) &<< 32)
        out.storeBytes(of: packed, as: SIMD8<UInt64>.self)
    }
}
