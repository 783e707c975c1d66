// IPD stimulus (MODEL.md section 1).
//
// For sample b, step n, fibre j: theta = 2 pi (f n dt + phi_b) + psi_j (+ alpha_b in ear 1),
// p = rate_max dt ((1 + sin theta)/2)^k, and the fibre spikes iff U < p.
// sin(theta) is evaluated as sin(A) cos(r) + cos(A) sin(r) with A = 2 pi f n dt + psi_j
// tabulated once per call (double precision, stored as float32) and r the per-sample
// rotation 2 pi phi_b (+ alpha_b), so no transcendental function is evaluated per element.
//
// Phase-delay noise (optional, sigma > 0 rad): input i of sample b gets theta + sigma z_{b,i}
// with z_{b,i} ~ N(0, 1) frozen for the sample, drawn by Box-Muller from two uniform53 of the
// sample's stream (words SPK_WORD_DELAY_NOISE + 2 i and + 2 i + 1). The rotation is then per
// input (2 N_in sin/cos per sample) instead of per ear; without noise it is the same value for
// every input of an ear, so both cases share one inner loop.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct StimulusParams {
    public var dt: Double
    public var steps: Int
    public var freq: Double
    public var anfPerEar: Int
    public var rateMax: Double
    public var envelopePower: Double
    public var nullPhaseDelays: Bool

    public init(dt: Double = 1e-3, steps: Int = 100, freq: Double = 20, anfPerEar: Int = 100,
                rateMax: Double = 600, envelopePower: Double = 2, nullPhaseDelays: Bool = false) {
        self.dt = dt; self.steps = steps; self.freq = freq; self.anfPerEar = anfPerEar
        self.rateMax = rateMax; self.envelopePower = envelopePower; self.nullPhaseDelays = nullPhaseDelays
    }

    public var nIn: Int { 2 * anfPerEar }

    func validate() throws {
        try requirePositiveFinite(dt, "dt")
        try requireCount(steps, "steps")
        try require(freq.isFinite, "freq must be finite, got \(freq)")
        try requireCount(anfPerEar, "anf_per_ear", max: 1 << 24)
        try require(rateMax.isFinite && rateMax >= 0, "rate_max must be finite and >= 0, got \(rateMax)")
        try require(envelopePower.isFinite && envelopePower >= 0,
                    "envelope_power must be finite and >= 0, got \(envelopePower)")
        _ = try checkedProduct(steps, nIn, what: "steps x 2 anf_per_ear")
    }
}

/// Fills `spikes` (n x T x 2 N_a bytes) for the IPDs `ipd` (rad) and phase offsets `phase`
/// (cycles); sample b draws from stream key(seed, firstIndex + b).
/// `delayNoise` is the standard deviation sigma (rad, finite, >= 0) of the per-sample
/// Gaussian noise on each input's phase delay (0: none, the seeds' stimulus).
public func generateStimulus(
    _ params: StimulusParams, ipd: UnsafeBufferPointer<Double>, phase: UnsafeBufferPointer<Double>,
    seed: UInt64, firstIndex: Int, spikes: UnsafeMutablePointer<UInt8>, threads: Int,
    delayNoise: Double = 0
) throws {
    try params.validate()
    try require(delayNoise.isFinite && delayNoise >= 0, "delay_noise must be finite and >= 0, got \(delayNoise)")
    let n = ipd.count
    try require(phase.count == n, "phase must have as many entries as ipd (\(n)), got \(phase.count)")
    try require(firstIndex >= 0 && firstIndex <= Int.max - n, "first_index must be >= 0 and first_index + n must not overflow")
    for b in 0..<n {
        try require(ipd[b].isFinite, "ipd[\(b)] is not finite")
        try require(phase[b].isFinite, "phase[\(b)] is not finite")
    }
    let threads = try resolveThreads(threads)
    if n == 0 { return }

    let T = params.steps, na = params.anfPerEar, nIn = 2 * na
    let naPad = roundUp(na, lanes)
    // sin/cos of A[n, j] = 2 pi f n dt + psi_j, rows padded to naPad.
    let sinA = try Scratch<Float>(T * naPad, what: "stimulus table")
    let cosA = try Scratch<Float>(T * naPad, what: "stimulus table")
    sinA.zero(); cosA.zero()
    for step in 0..<T {
        // reduce f n dt modulo 1 cycle before multiplying by 2 pi, to keep A small and exact
        let cycles = params.freq * Double(step) * params.dt
        let base = 2 * Double.pi * (cycles - cycles.rounded(.down))
        for j in 0..<na {
            let psi = params.nullPhaseDelays || na == 1 ? 0 : Double.pi / 2 * Double(j) / Double(na - 1)
            sinA.pointer[step * naPad + j] = Float(sin(base + psi))
            cosA.pointer[step * naPad + j] = Float(cos(base + psi))
        }
    }

    let scale = Float(params.rateMax * params.dt * 0x1p24)  // p * 2^24, compared with U * 2^24
    let k = params.envelopePower
    let integerPower: Int? = (k == k.rounded() && k <= 1024) ? Int(k) : nil
    let rowWords = na  // N_in = 2 N_a elements per step = N_a words
    // row buffer of 24-bit integers as float, padded so 16-wide stores and 8-wide loads fit
    let rowFloats = roundUp(nIn, 16) + 16

    try parallelFor(n, threads: threads, makeContext: { () throws -> StimulusContext in
        let c = StimulusContext(bits: try Scratch<UInt32>(rowFloats, what: "stimulus row"),
                                uniforms: try Scratch<Float>(rowFloats, what: "stimulus row"),
                                rotCos: try Scratch<Float>(rowFloats, what: "stimulus rotations"),
                                rotSin: try Scratch<Float>(rowFloats, what: "stimulus rotations"))
        c.rotCos.zero(); c.rotSin.zero()
        return c
    }) { ctx, b in
        let bits = ctx.bits, uniforms = ctx.uniforms
        let streamKey = CounterRNG.key(seed: seed, index: UInt64(firstIndex + b))
        let r0 = 2 * Double.pi * (phase[b] - phase[b].rounded(.down))
        // (cos r, sin r) of each input's rotation: ear 0 by the phase offset, ear 1 also by the
        // IPD, plus the input's delay noise if any
        for ear in 0..<2 {
            let r = ear == 0 ? r0 : r0 + ipd[b]
            if delayNoise == 0 {
                let c = Float(cos(r)), s = Float(sin(r))
                for j in 0..<na { ctx.rotCos.pointer[ear * na + j] = c; ctx.rotSin.pointer[ear * na + j] = s }
            } else {
                for j in 0..<na {
                    let i = ear * na + j
                    let rr = r + delayNoise * CounterRNG.delayNoiseNormal(key: streamKey, input: UInt64(i))
                    ctx.rotCos.pointer[i] = Float(cos(rr)); ctx.rotSin.pointer[i] = Float(sin(rr))
                }
            }
        }
        let out = spikes + b * T * nIn
        for step in 0..<T {
            // 24-bit integers of this step's N_in elements, as floats
            var w = 0
            let firstWord = UInt64(step) &* UInt64(rowWords)
            while w < rowWords {
                CounterRNG.stimulusBits16(key: streamKey, firstWord: firstWord &+ UInt64(w),
                                          into: UnsafeMutableRawPointer(bits.pointer + 2 * w))
                w += 8
            }
            var e = 0
            while e < nIn {
                let m = UnsafeRawPointer(bits.pointer + e).loadUnaligned(as: SIMD8<UInt32>.self)
                storeVec(Vec(SIMD8<Int32>(truncatingIfNeeded: m)), uniforms.pointer + e)
                e += lanes
            }
            let row = out + step * nIn
            for ear in 0..<2 {
                let cr = ctx.rotCos.pointer + ear * na, sr = ctx.rotSin.pointer + ear * na
                let sRow = sinA.pointer + step * naPad, cRow = cosA.pointer + step * naPad
                var j = 0
                while j < na {
                    let s = loadVec(sRow + j) * loadVec(cr + j) + loadVec(cRow + j) * loadVec(sr + j)
                    let y = (1 + s) * 0.5
                    var p: Vec
                    if let power = integerPower {
                        p = integerPow(y, power)
                    } else {
                        p = Vec()
                        for l in 0..<lanes { p[l] = powf(Swift.max(y[l], 0), Float(k)) }
                    }
                    p *= scale
                    let u = loadVec(uniforms.pointer + ear * na + j)
                    let spike = SIMD8<Int32>(repeating: 0).replacing(with: 1, where: u .< p)
                    let bytes = SIMD8<UInt8>(truncatingIfNeeded: spike)
                    let dest = row + ear * na + j
                    if j + lanes <= na {
                        UnsafeMutableRawPointer(dest).storeBytes(of: bytes, as: SIMD8<UInt8>.self)
                    } else {
                        for l in 0..<(na - j) { dest[l] = bytes[l] }
                    }
                    j += lanes
                }
            }
        }
    }
}

/// Per-worker scratch of the stimulus kernel (no allocation per sample).
struct StimulusContext {
    let bits: Scratch<UInt32>
    let uniforms: Scratch<Float>
    let rotCos: Scratch<Float>
    let rotSin: Scratch<Float>
}

/// y^k for an integer k >= 0 by repeated squaring (0^0 = 1, as in NumPy).
@inline(__always) func integerPow(_ y: Vec, _ k: Int) -> Vec {
    var result = Vec(repeating: 1), base = y, e = k
    while e > 0 {
        if e & 1 == 1 { result *= base }
        e >>= 1
        if e > 0 { base *= base }
    }
    return result
}
