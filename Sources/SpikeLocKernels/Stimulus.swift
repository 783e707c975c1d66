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

/// What every sample of one stimulus call shares: the checked arguments and the tables
/// sin/cos of A[n, j] = 2 pi f n dt + psi_j. `sample` runs the draws of one sample and hands
/// the spikes to a `SpikeSink`, so that the dense array and the event lists come from the very
/// same code (hence the same counter-based draws).
final class StimulusPlan {
    let params: StimulusParams
    let ipd: UnsafeBufferPointer<Double>, phase: UnsafeBufferPointer<Double>
    let seed: UInt64, firstIndex: Int, delayNoise: Double, threads: Int
    let T: Int, na: Int, nIn: Int, naPad: Int, rowFloats: Int
    let sinA: Scratch<Float>, cosA: Scratch<Float>
    let scale: Float, k: Double, integerPower: Int?

    init(_ params: StimulusParams, ipd: UnsafeBufferPointer<Double>, phase: UnsafeBufferPointer<Double>,
         seed: UInt64, firstIndex: Int, threads: Int, delayNoise: Double) throws {
        try params.validate()
        try require(delayNoise.isFinite && delayNoise >= 0, "delay_noise must be finite and >= 0, got \(delayNoise)")
        let n = ipd.count
        try require(phase.count == n, "phase must have as many entries as ipd (\(n)), got \(phase.count)")
        try require(firstIndex >= 0 && firstIndex <= Int.max - n, "first_index must be >= 0 and first_index + n must not overflow")
        for b in 0..<n {
            try require(ipd[b].isFinite, "ipd[\(b)] is not finite")
            try require(phase[b].isFinite, "phase[\(b)] is not finite")
        }
        self.params = params; self.ipd = ipd; self.phase = phase; self.seed = seed
        self.firstIndex = firstIndex; self.delayNoise = delayNoise
        self.threads = try resolveThreads(threads)
        T = params.steps; na = params.anfPerEar; nIn = 2 * na
        naPad = roundUp(na, lanes)
        // row buffer of 24-bit integers as float, padded so 16-wide stores and 8-wide loads fit
        rowFloats = roundUp(nIn, 16) + 16
        scale = Float(params.rateMax * params.dt * 0x1p24)  // p * 2^24, compared with U * 2^24
        k = params.envelopePower
        integerPower = (k == k.rounded() && k <= 1024) ? Int(k) : nil
        // sin/cos of A[n, j] = 2 pi f n dt + psi_j, rows padded to naPad (only when there is work)
        let tableSize = n == 0 ? 0 : T * naPad
        sinA = try Scratch<Float>(tableSize, what: "stimulus table")
        cosA = try Scratch<Float>(tableSize, what: "stimulus table")
        if n == 0 { return }
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
    }

    func makeContext() throws -> StimulusContext {
        let c = StimulusContext(bits: try Scratch<UInt32>(rowFloats, what: "stimulus row"),
                                uniforms: try Scratch<Float>(rowFloats, what: "stimulus row"),
                                rotCos: try Scratch<Float>(rowFloats, what: "stimulus rotations"),
                                rotSin: try Scratch<Float>(rowFloats, what: "stimulus rotations"),
                                row: try Scratch<UInt8>(nIn + 16, what: "stimulus row"))
        c.rotCos.zero(); c.rotSin.zero()
        return c
    }

    /// The draws of sample b: for each step, `sink.put(step, i0, spikes, valid)` with the 0/1
    /// bytes of inputs i0 ..< i0 + valid (i0 increasing; valid <= 8, lanes past it are junk),
    /// then `sink.endStep(step)`.
    @inline(__always)
    func sample<Sink: SpikeSink>(_ ctx: StimulusContext, _ b: Int, _ sink: inout Sink) {
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
        let rowWords = na  // N_in = 2 N_a elements per step = N_a words
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
                    sink.put(step, ear * na + j, SIMD8<UInt8>(truncatingIfNeeded: spike), Swift.min(lanes, na - j))
                    j += lanes
                }
            }
            sink.endStep(step)
        }
    }
}

/// Receives the spikes of one stimulus sample (`StimulusPlan.sample`).
protocol SpikeSink {
    mutating func put(_ step: Int, _ input: Int, _ spikes: SIMD8<UInt8>, _ valid: Int)
    mutating func endStep(_ step: Int)
}

/// Writes a sample's spikes into its rows of the dense array.
struct DenseSink: SpikeSink {
    let out: UnsafeMutablePointer<UInt8>, nIn: Int
    @inline(__always) mutating func put(_ step: Int, _ input: Int, _ spikes: SIMD8<UInt8>, _ valid: Int) {
        let dest = out + step * nIn + input
        if valid == 8 {
            UnsafeMutableRawPointer(dest).storeBytes(of: spikes, as: SIMD8<UInt8>.self)
        } else {
            for l in 0..<valid { dest[l] = spikes[l] }
        }
    }
    @inline(__always) mutating func endStep(_ step: Int) {}
}

/// Appends a sample's spikes to its step-order event list (`buildEvents`): each step's bytes
/// go to a row buffer (as in the dense kernel), then `EventArena.appendRow` lists them.
struct EventSink: SpikeSink {
    let arena: EventArena, row: UnsafeMutablePointer<UInt8>
    let stepCounts: UnsafeMutablePointer<Int64>
    @inline(__always) mutating func put(_ step: Int, _ input: Int, _ spikes: SIMD8<UInt8>, _ valid: Int) {
        // the row has room for 8 bytes past N_in; the bytes past `valid` are overwritten by the
        // next call or never read
        UnsafeMutableRawPointer(row + input).storeBytes(of: spikes, as: SIMD8<UInt8>.self)
    }
    @inline(__always) mutating func endStep(_ step: Int) {
        var invalid: UInt64 = 0  // the kernel's bytes are 0 or 1
        // without memory the arena drops the sample and buildEvents reports it
        if let k = arena.appendRow(row, invalid: &invalid) { stepCounts[step] = Int64(k) }
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
    let plan = try StimulusPlan(params, ipd: ipd, phase: phase, seed: seed, firstIndex: firstIndex,
                                threads: threads, delayNoise: delayNoise)
    let n = ipd.count, perSample = plan.T * plan.nIn
    if n == 0 { return }
    try parallelFor(n, threads: plan.threads, makeContext: plan.makeContext) { ctx, b in
        var sink = DenseSink(out: spikes + b * perSample, nIn: plan.nIn)
        plan.sample(ctx, b, &sink)
    }
}

/// The same spikes as `generateStimulus`, as event lists built straight from the draws (no
/// dense array; one pass over the draws), in storage from `allocate` (see `buildEvents`).
public func generateStimulusEvents(
    _ params: StimulusParams, ipd: UnsafeBufferPointer<Double>, phase: UnsafeBufferPointer<Double>,
    seed: UInt64, firstIndex: Int, threads: Int, delayNoise: Double = 0, allocate: EventStorage
) throws -> BuiltEvents {
    let plan = try StimulusPlan(params, ipd: ipd, phase: phase, seed: seed, firstIndex: firstIndex,
                                threads: threads, delayNoise: delayNoise)
    try require(plan.T <= EventData.maxSteps, "steps must be <= \(EventData.maxSteps) for event lists, got \(plan.T)")
    try require(plan.nIn <= EventData.maxInputs, "2 anf_per_ear must be <= \(EventData.maxInputs) for event lists, got \(plan.nIn)")
    return try buildEvents(n: ipd.count, steps: plan.T, nIn: plan.nIn, threads: plan.threads, allocate: allocate,
                           makeContext: plan.makeContext, produce: { ctx, arena, b, stepCounts in
        var sink = EventSink(arena: arena, row: ctx.row.pointer, stepCounts: stepCounts)
        plan.sample(ctx, b, &sink)
        return true
    }, invalid: { s in KernelError.value("stimulus sample \(s) failed") })
}

/// Per-worker scratch of the stimulus kernel (no allocation per sample).
struct StimulusContext {
    let bits: Scratch<UInt32>
    let uniforms: Scratch<Float>
    let rotCos: Scratch<Float>
    let rotSin: Scratch<Float>
    let row: Scratch<UInt8>  // one step's spikes, for event lists
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
