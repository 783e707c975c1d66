// The spiking network and the membrane-only network (MODEL.md section 2): forward pass and
// back-propagation through time with the sigmoid surrogate.
//
// Per sample (n = 0 .. T-2):
//   hidden   P_n = a_h v_n + I_n,  v_{n+1} = P_n (1 - s_n),  s_{n+1} = H(v_n - 1),  I = x W1
//   readout  u_{n+1} = a_o u_n + J_n,  J = S W2,  m = mean | 0.01 sum | max over u_0 .. u_{T-1}
// Backward (adjoints g*; surr(x) = beta sig(beta x)(1 - sig(beta x))):
//   gu_{T-1} = du_{T-1},  gu_n = du_n + a_o gu_{n+1},  dJ_n = gu_{n+1}
//   dW2 = sum_n s_n^T dJ_n,  ds_n = dJ_n W2^T           (n <= T-2; ds_{T-1} = 0)
//   gv_{T-1} = gs_{T-1} = 0 and for n = T-2 .. 0:
//     gI_n = gv_{n+1} (1 - s_n)
//     gv_n = gv_{n+1} a_h (1 - s_n) + gs_{n+1} surr(v_n - 1)
//     gs_n = ds_n - gv_{n+1} P_n                        (the reset factor is not detached)
//   dW1 = sum_n x_n^T gI_n
//
// Layout: hidden vectors are padded to Hp = roundUp(N_h, 8) lanes and class vectors to
// Cp = roundUp(C, 8); padding lanes hold zeros and never spike. Samples are processed in
// fixed chunks of `chunkSize`; each chunk writes its own gradient partial, and partials are
// summed in chunk order, so results do not depend on the number of threads.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Readout: Int32 {
    case mean = 0, sum = 1, max = 2
}

public struct NetConfig {
    public var nIn: Int, nHidden: Int, nOut: Int, steps: Int
    public var dt: Double, tauHidden: Double, tauOutput: Double
    public var readout: Readout
    public var beta: Double

    public init(nIn: Int, nHidden: Int, nOut: Int, steps: Int, dt: Double, tauHidden: Double,
                tauOutput: Double, readout: Readout = .mean, beta: Double = 5) {
        self.nIn = nIn; self.nHidden = nHidden; self.nOut = nOut; self.steps = steps
        self.dt = dt; self.tauHidden = tauHidden; self.tauOutput = tauOutput
        self.readout = readout; self.beta = beta
    }

    func validate(hidden: Bool) throws {
        try requireCount(nIn, "n_in", max: EventData.maxInputs)
        if hidden { try requireCount(nHidden, "n_hidden", max: 1 << 20) }
        try requireCount(nOut, "n_out", max: 1 << 20)
        try requireCount(steps, "steps", max: EventData.maxSteps)
        try requirePositiveFinite(dt, "dt")
        if hidden { try requirePositiveFinite(tauHidden, "tau_hidden") }
        try requirePositiveFinite(tauOutput, "tau_output")
        if hidden { try requirePositiveFinite(beta, "beta") }
        _ = try checkedProduct(nIn, hidden ? nHidden : nOut, what: "weights")
    }

    func checkData(_ data: EventData) throws {
        try require(data.steps == steps, "events have \(data.steps) steps, the network expects \(steps)")
        try require(data.nIn == nIn, "events have \(data.nIn) inputs, the network expects n_in = \(nIn)")
    }
}

/// Samples per chunk of the batch (fixed, so that reductions do not depend on threads).
let chunkSize = 8
/// Bit l in lane l, to turn a comparison mask into an integer bitmask.
let laneBits = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 64, 128)
/// Columns of a weight tile in the event sums. Measured on the tutorial network (104 padded
/// hidden units): whole rows (64 + 32 + 8 lanes per event) beat 64-, 32- and 16-column tiles,
/// whose smaller L1 footprint does not pay for the extra passes over the event lists.
let columnTile = 128

// MARK: - building blocks

/// out[0 ..< width] += sum over k of base[rows[k] * stride ..< + width]; width is a multiple of 8.
/// The workhorse of both passes: the forward current sums weight rows of spiking inputs,
/// the weight gradient sums backpropagated currents over an input's spike times.
///
/// Each accumulator is a dependency chain of vector additions (latency ~4 cycles), so tiles
/// keep 8 or more independent accumulators in flight: 64-wide tiles hold 8 registers, 32-wide
/// tiles alternate two sets of 4 between even and odd events, and the last 8 columns use 4
/// accumulators over events k mod 4. The summation order is fixed by `count` and `width` only.
@inline(__always)
func addRows(_ rows: UnsafePointer<UInt16>, _ count: Int, from base: UnsafePointer<Float>, stride: Int,
             into out: UnsafeMutablePointer<Float>, width: Int) {
    addRowsShifted(rows, count, shift: 0, from: base, stride: stride, into: out, width: width)
}

/// The same with row indices stored shifted: rows[k] - shift indexes the rows of `base` (all
/// rows[k] >= shift), so that an input's event list (its spike steps t) can index the rows of
/// a block (r = t - shift) without being copied (e-prop, EProp.swift). `addRows` is this with
/// shift 0 (constant-folded after inlining: the same code, tiles and summation order).
@inline(__always)
func addRowsShifted(_ rows: UnsafePointer<UInt16>, _ count: Int, shift: Int, from base: UnsafePointer<Float>, stride: Int,
                    into out: UnsafeMutablePointer<Float>, width: Int) {
    var col = 0
    #if SPIKELOC_AVX512
    // 16-lane registers, each lane summing the same events in the same order as the 8-lane
    // tiles below (bit-identical results to the avx2 build)
    while col + 64 <= width {
        var a0 = loadWide(out + col), a1 = loadWide(out + col + 16)
        var a2 = loadWide(out + col + 32), a3 = loadWide(out + col + 48)
        for k in 0..<count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadWide(p); a1 += loadWide(p + 16); a2 += loadWide(p + 32); a3 += loadWide(p + 48)
        }
        storeWide(a0, out + col); storeWide(a1, out + col + 16)
        storeWide(a2, out + col + 32); storeWide(a3, out + col + 48)
        col += 64
    }
    while col + 32 <= width {
        var a0 = loadWide(out + col), a1 = loadWide(out + col + 16)
        var b0 = Wide(), b1 = Wide()
        var k = 0
        while k + 1 < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col, q = base + (Int(rows[k + 1]) &- shift) * stride + col
            a0 += loadWide(p); a1 += loadWide(p + 16)
            b0 += loadWide(q); b1 += loadWide(q + 16)
            k += 2
        }
        if k < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadWide(p); a1 += loadWide(p + 16)
        }
        storeWide(a0 + b0, out + col); storeWide(a1 + b1, out + col + 16)
        col += 32
    }
    #endif
    while col + 64 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8), a2 = loadVec(out + col + 16)
        var a3 = loadVec(out + col + 24), a4 = loadVec(out + col + 32), a5 = loadVec(out + col + 40)
        var a6 = loadVec(out + col + 48), a7 = loadVec(out + col + 56)
        for k in 0..<count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
            a4 += loadVec(p + 32); a5 += loadVec(p + 40); a6 += loadVec(p + 48); a7 += loadVec(p + 56)
        }
        storeVec(a0, out + col); storeVec(a1, out + col + 8); storeVec(a2, out + col + 16)
        storeVec(a3, out + col + 24); storeVec(a4, out + col + 32); storeVec(a5, out + col + 40)
        storeVec(a6, out + col + 48); storeVec(a7, out + col + 56)
        col += 64
    }
    while col + 32 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8)
        var a2 = loadVec(out + col + 16), a3 = loadVec(out + col + 24)
        var b0 = Vec(), b1 = Vec(), b2 = Vec(), b3 = Vec()
        var k = 0
        while k + 1 < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col, q = base + (Int(rows[k + 1]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
            b0 += loadVec(q); b1 += loadVec(q + 8); b2 += loadVec(q + 16); b3 += loadVec(q + 24)
            k += 2
        }
        if k < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8); a2 += loadVec(p + 16); a3 += loadVec(p + 24)
        }
        storeVec(a0 + b0, out + col); storeVec(a1 + b1, out + col + 8)
        storeVec(a2 + b2, out + col + 16); storeVec(a3 + b3, out + col + 24)
        col += 32
    }
    while col + 16 <= width {
        var a0 = loadVec(out + col), a1 = loadVec(out + col + 8), b0 = Vec(), b1 = Vec()
        var k = 0
        while k + 1 < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col, q = base + (Int(rows[k + 1]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8)
            b0 += loadVec(q); b1 += loadVec(q + 8)
            k += 2
        }
        if k < count {
            let p = base + (Int(rows[k]) &- shift) * stride + col
            a0 += loadVec(p); a1 += loadVec(p + 8)
        }
        storeVec(a0 + b0, out + col); storeVec(a1 + b1, out + col + 8)
        col += 16
    }
    while col < width {
        var a0 = loadVec(out + col), a1 = Vec(), a2 = Vec(), a3 = Vec()
        var k = 0
        while k + 3 < count {
            a0 += loadVec(base + (Int(rows[k]) &- shift) * stride + col)
            a1 += loadVec(base + (Int(rows[k + 1]) &- shift) * stride + col)
            a2 += loadVec(base + (Int(rows[k + 2]) &- shift) * stride + col)
            a3 += loadVec(base + (Int(rows[k + 3]) &- shift) * stride + col)
            k += 4
        }
        while k < count { a0 += loadVec(base + (Int(rows[k]) &- shift) * stride + col); k += 1 }
        storeVec((a0 + a1) + (a2 + a3), out + col)
        col += 8
    }
}

/// A weight matrix copied into rows padded with zeros to a multiple of 8 columns.
struct PaddedWeights {
    let stride: Int
    let storage: Scratch<Float>
    var pointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    init(_ w: UnsafePointer<Float>, rows: Int, cols: Int, name: String, transpose: Bool = false) throws {
        let (r, c) = transpose ? (cols, rows) : (rows, cols)
        self.stride = roundUp(c, lanes)
        storage = try Scratch<Float>(try checkedProduct(r, stride, what: name), what: name)
        storage.zero()
        for i in 0..<rows {
            for j in 0..<cols {
                let value = w[i * cols + j]
                if !value.isFinite { throw KernelError.value("\(name)[\(i), \(j)] is not finite (\(value))") }
                if transpose { storage.pointer[j * stride + i] = value } else { storage.pointer[i * stride + j] = value }
            }
        }
    }
}

/// The leaky readout of one sample, u_{n+1} = a_o u_n + J_n with J_n the sum of the rows of
/// `w` (stride Cp) listed for step n by `rows(n)`. Records u (T x Cp) and aggregates m over
/// u_0 .. u_{T-1} on the fly, in vector registers: a compensated (Kahan) sum for mean and sum,
/// a running maximum and its first time index for max. Writes m (double, C) and the argmax
/// (as float, Cp lanes) into the workspace.
@inline(__always)
func leakyReadout(steps T: Int, classes C: Int, stride Cp: Int, readout: Readout, decay aO: Float,
                  w: UnsafePointer<Float>, _ ws: SNNWorkspace,
                  rows: (Int) -> (list: UnsafePointer<UInt16>, count: Int)) {
    let U = ws.membrane.pointer, J = ws.temp.pointer
    let total = ws.aggregate.pointer, compensation = ws.aggregate.pointer + Cp
    let peak = ws.aggregate.pointer + 2 * Cp, argmax = ws.argmax.pointer
    U.update(repeating: 0, count: Cp)
    total.update(repeating: 0, count: 2 * Cp)
    peak.update(repeating: 0, count: Cp)    // u_0 = 0 is the maximum so far, at n = 0
    argmax.update(repeating: 0, count: Cp)
    for n in 0..<(T - 1) {
        let (list, count) = rows(n)
        if count > 0 {
            J.update(repeating: 0, count: Cp)
            addRows(list, count, from: w, stride: Cp, into: J, width: Cp)
        }
        let time = Vec(repeating: Float(n + 1))
        var c = 0
        while c < Cp {
            var u = aO * loadVec(U + n * Cp + c)
            if count > 0 { u += loadVec(J + c) }
            storeVec(u, U + (n + 1) * Cp + c)
            if readout == .max {
                let better = u .> loadVec(peak + c)
                storeVec(loadVec(peak + c).replacing(with: u, where: better), peak + c)
                storeVec(loadVec(argmax + c).replacing(with: time, where: better), argmax + c)
            } else {
                let sum = loadVec(total + c), y = u - loadVec(compensation + c)
                let t = sum + y
                storeVec((t - sum) - y, compensation + c)
                storeVec(t, total + c)
            }
            c += lanes
        }
    }
    let m = ws.m.pointer
    for c in 0..<C {
        switch readout {
        case .mean: m[c] = Double(total[c]) / Double(T)
        case .sum: m[c] = 0.01 * Double(total[c])
        case .max: m[c] = Double(peak[c])
        }
    }
}

/// Weights r_n of the linear readouts (nil for max): m = sum_n r_n J_n with
/// r_n = scale sum_{k=0}^{T-2-n} a_o^k for n <= T-2 and r_{T-1} = 0, because
/// sum_{n=0}^{T-1} u_n = sum_k J_k (1 + a_o + ... + a_o^{T-2-k}) when u_0 = 0.
/// scale is 1/T (mean) or 0.01 (sum). Computed in double by the recursion r = 1 + a r.
func linearReadoutWeights(_ readout: Readout, steps T: Int, decay aO: Double) throws -> Scratch<Float>? {
    guard readout != .max else { return nil }
    let scale = readout == .mean ? 1 / Double(T) : 0.01
    let weights = try Scratch<Float>(T, what: "readout weights")
    weights.pointer[T - 1] = 0
    var geometric = 0.0
    var n = T - 2
    while n >= 0 {
        geometric = 1 + aO * geometric
        weights.pointer[n] = Float(scale * geometric)
        n -= 1
    }
    return weights
}

/// Cross-entropy of log-softmax(m) at `label`; writes dm = (softmax(m) - onehot) * scale.
@inline(__always)
func crossEntropy(_ m: UnsafePointer<Double>, classes C: Int, label: Int, scale: Double,
                  dm: UnsafeMutablePointer<Float>) -> Double {
    var top = m[0]
    for c in 1..<C { top = Swift.max(top, m[c]) }
    var z = 0.0
    for c in 0..<C { z += exp(m[c] - top) }
    let lse = top + log(z)
    for c in 0..<C {
        dm[c] = Float((exp(m[c] - lse) - (c == label ? 1 : 0)) * scale)
    }
    return lse - m[label]
}

/// Backward through the leaky readout: writes dJ_n = gu_{n+1} (n <= T-2) into dJ (T x Cp;
/// row T-1 = 0) from dm (the loss gradient of the aggregated m, Cp lanes, zero padded), with
/// gu_{T-1} = du_{T-1}, gu_n = du_n + a_o gu_{n+1} and du_n = dm / T (mean), 0.01 dm (sum) or
/// dm at the first maximum only (max).
@inline(__always)
func readoutBackward(_ ws: SNNWorkspace, steps T: Int, stride Cp: Int, readout: Readout, decay aO: Float,
                     dJ: UnsafeMutablePointer<Float>) {
    let dm = ws.dm.pointer, argmax = ws.argmax.pointer
    (dJ + (T - 1) * Cp).update(repeating: 0, count: Cp)
    var c = 0
    while c < Cp {
        let g = loadVec(dm + c), peak = loadVec(argmax + c)
        let constant: Vec = readout == .mean ? g / Float(T) : (readout == .sum ? 0.01 * g : Vec())
        @inline(__always) func du(_ n: Int) -> Vec {
            readout == .max ? Vec().replacing(with: g, where: peak .== Float(n)) : constant
        }
        var gu = du(T - 1)
        var n = T - 2
        while n >= 0 {
            storeVec(gu, dJ + n * Cp + c)
            gu = du(n) + aO * gu
            n -= 1
        }
        c += lanes
    }
}

// MARK: - the spiking network, one sample

/// Per-worker memory of one sample's pass. Rows are Hp (hidden) or Cp (class) floats:
/// `current` one row (I_n), `voltage` two alternating rows (v_n, v_{n+1}), `preReset` and
/// `spikes` T rows (P_n and s_n, all the backward pass needs), `membrane` and `dJ` T class
/// rows (the recursion path), `spikeCount` the weighted spike count z (linear readouts).
final class SNNWorkspace {
    let current: Scratch<Float>, voltage: Scratch<Float>, preReset: Scratch<Float>, spikes: Scratch<Float>
    let spikeList: Scratch<UInt16>, spikePtr: Scratch<Int>
    let membrane: Scratch<Float>, dJ: Scratch<Float>, temp: Scratch<Float>
    let m: Scratch<Double>, dm: Scratch<Float>, argmax: Scratch<Float>, aggregate: Scratch<Float>
    let gv: Scratch<Float>, gs: Scratch<Float>, spikeCount: Scratch<Float>
    /// T rows of the sigmoid surrogate surr(v_n - 1), written by a training forward pass of the
    /// spiking network (`SNNKernel.forward` with `surrogate` set) for its backward pass.
    let surrogate: Scratch<Float>
    /// Further per-worker memory of kernels that need more (Variants.swift: VariantBuffers).
    var extra: AnyObject? = nil

    /// `countSize`: length of the weighted spike count (hidden units, or inputs for the
    /// membrane-only network).
    init(steps T: Int, hiddenStride Hp: Int, classStride Cp: Int, countSize: Int? = nil) throws {
        let th = try checkedProduct(T, Hp, what: "workspace")
        current = try Scratch(Hp, what: "workspace"); voltage = try Scratch(2 * Hp, what: "workspace")
        preReset = try Scratch(th, what: "workspace"); spikes = try Scratch(th, what: "workspace")
        spikeList = try Scratch(th, what: "workspace"); spikePtr = try Scratch(T + 1, what: "workspace")
        membrane = try Scratch(T * Cp, what: "workspace"); dJ = try Scratch(T * Cp, what: "workspace")
        temp = try Scratch(Swift.max(Hp, Cp), what: "workspace")
        m = try Scratch(Cp, what: "workspace"); dm = try Scratch(Cp, what: "workspace")
        argmax = try Scratch(Cp, what: "workspace"); aggregate = try Scratch(3 * Cp, what: "workspace")
        gv = try Scratch(Hp, what: "workspace"); gs = try Scratch(Hp, what: "workspace")
        spikeCount = try Scratch(countSize ?? Hp, what: "workspace")
        surrogate = try Scratch(th, what: "workspace")
        dm.zero()  // padding lanes stay 0
    }
}

struct SNNKernel: GradientKernel {
    let config: NetConfig
    let data: EventData
    let w1: PaddedWeights   // N_in x Hp
    let w2: PaddedWeights   // N_h x Cp
    let w2t: PaddedWeights  // C x Hp
    let aH: Float, aO: Float, beta: Float
    /// Mean and sum readouts are linear in the hidden spikes: m = z W2 with the weighted spike
    /// count z = sum_n r_n s_n (see `linearReadoutWeights`), so training needs no readout
    /// recursion. The max readout, and any call that records the membrane, runs the recursion.
    let linearWeights: Scratch<Float>?
    /// Whether `forward` also records surr(v_n - 1) for `hiddenBackward` (training passes).
    /// Evaluated in the forward pass, the surrogate's exp and division overlap the event sums,
    /// whose loads leave the multiply-add pipes idle; the values are bit-identical to
    /// evaluating it in the backward pass (same v_n, same operations).
    var surrogate = false
    var T: Int { config.steps }
    var Hp: Int { w1.stride }
    var Cp: Int { w2.stride }

    init(_ config: NetConfig, _ data: EventData, w1: UnsafePointer<Float>, w2: UnsafePointer<Float>) throws {
        self.config = config; self.data = data
        self.w1 = try PaddedWeights(w1, rows: config.nIn, cols: config.nHidden, name: "w1")
        self.w2 = try PaddedWeights(w2, rows: config.nHidden, cols: config.nOut, name: "w2")
        self.w2t = try PaddedWeights(w2, rows: config.nHidden, cols: config.nOut, name: "w2", transpose: true)
        aH = Float(exp(-config.dt / config.tauHidden))
        aO = Float(exp(-config.dt / config.tauOutput))
        beta = Float(config.beta)
        linearWeights = try linearReadoutWeights(config.readout, steps: config.steps, decay: exp(-config.dt / config.tauOutput))
    }

    func workspace() throws -> SNNWorkspace { try SNNWorkspace(steps: T, hiddenStride: Hp, classStride: Cp) }

    // GradientKernel: dW1 (N_in x Hp) from the current gradients gI, dW2 (N_h x Cp) per sample
    var gradients: [(rows: Int, cols: Int, stride: Int)] {
        [(config.nIn, config.nHidden, Hp), (config.nHidden, config.nOut, Cp)]
    }
    var currentWidth: Int { Hp }
    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, current g: UnsafeMutablePointer<Float>,
                  partials: [UnsafeMutablePointer<Float>]) -> Double {
        backward(label: label, batch: batch, ws, gI: g, gradW2: partials[1])
    }
    func finishChunk(_ samples: ArraySlice<Int>, current g: UnsafePointer<Float>, partials: [UnsafeMutablePointer<Float>]) {
        inputWeightGradient(data: data, samples: samples, g: g, width: Hp, into: partials[0])
    }

    /// Forward pass of sample `s`: fills the pre-reset values P and the spikes S, then the
    /// readout m. With a linear readout m always comes from the weighted spike count (so
    /// logits do not depend on what is recorded); the membrane recursion runs for the max
    /// readout and when `recordMembrane` asks for u.
    func forward(sample s: Int, _ ws: SNNWorkspace, recordMembrane: Bool = false) {
        let T = self.T, Hp = self.Hp, Cp = self.Cp
        let I = ws.current.pointer, V = ws.voltage.pointer, P = ws.preReset.pointer, S = ws.spikes.pointer
        let G = ws.surrogate.pointer, surrogate = self.surrogate
        let linear = linearWeights != nil, recursion = !linear || recordMembrane
        // LIF dynamics with delayed reset, one step at a time: the current I_n = x_n W1 (one
        // row, which stays in L1; I_{T-1} is unused), then P_n, v_{n+1} and s_{n+1}; and the
        // weighted spike count z (linear readouts) and/or the spiking units per step (recursion).
        // Only P and S (and, for training, the surrogate surr(v_n - 1)) are kept for the
        // backward pass.
        let stepBase = s * T
        var v = V  // the current voltage row (two rows, alternating)
        v.update(repeating: 0, count: Hp)
        S.update(repeating: 0, count: Hp)
        let z = ws.spikeCount.pointer, r = linearWeights?.pointer
        z.update(repeating: 0, count: Hp)
        let list = ws.spikeList.pointer, ptr = ws.spikePtr.pointer
        ptr[0] = 0; ptr[1] = 0
        var count = 0
        if Hp == lanes {
            // one vector of hidden units (e.g. the 250 Hz study's 5): v_n, s_n and z stay in
            // registers from step to step (the loop below passes them through memory, whose
            // store-to-load latency, ~7 cycles, then sits on the critical path of every step);
            // a few events per step, summed inline with two accumulators. The same operations
            // in the same order as the loop below: bit-identical results.
            var vn = Vec(), spike = Vec(), zAcc = Vec()
            for n in 0..<(T - 1) {
                let first = Int(data.stepPtr[stepBase + n]), last = Int(data.stepPtr[stepBase + n + 1])
                var a0 = Vec(), a1 = Vec()
                var e = first
                while e + 1 < last {
                    a0 += loadVec(w1.pointer + Int(data.stepEvents[e]) * lanes)
                    a1 += loadVec(w1.pointer + Int(data.stepEvents[e + 1]) * lanes)
                    e += 2
                }
                if e < last { a0 += loadVec(w1.pointer + Int(data.stepEvents[e]) * lanes) }
                let p = aH * vn + (a0 + a1)
                storeVec(p, P + n * Hp)
                if surrogate { storeVec(sigmoidSurrogate(vn - 1, beta: beta), G + n * Hp) }
                let fire = vn .> 1
                let next = Vec(repeating: 0).replacing(with: 1, where: fire)
                storeVec(next, S + (n + 1) * Hp)
                if linear { zAcc = zAcc.addingProduct(r![n + 1], next) }
                if recursion {
                    var bits = SIMD8<Int32>().replacing(with: laneBits, where: fire).wrappedSum()
                    while bits != 0 {
                        list[count] = UInt16(truncatingIfNeeded: bits.trailingZeroBitCount)
                        count += 1
                        bits &= bits - 1
                    }
                }
                ptr[n + 2] = count
                vn = p * (1 - spike)
                spike = next
            }
            storeVec(zAcc, z)
        } else {
        for n in 0..<(T - 1) {
            let first = Int(data.stepPtr[stepBase + n]), last = Int(data.stepPtr[stepBase + n + 1])
            I.update(repeating: 0, count: Hp)
            addRows(data.stepEvents + first, last - first, from: w1.pointer, stride: Hp, into: I, width: Hp)
            let vNext = v == V ? V + Hp : V
            var k = 0
            while k < Hp {
                let vn = loadVec(v + k), spike = loadVec(S + n * Hp + k)
                let p = aH * vn + loadVec(I + k)
                storeVec(p, P + n * Hp + k)
                if surrogate { storeVec(sigmoidSurrogate(vn - 1, beta: beta), G + n * Hp + k) }
                storeVec(p * (1 - spike), vNext + k)
                let fire = vn .> 1
                let next = Vec(repeating: 0).replacing(with: 1, where: fire)
                storeVec(next, S + (n + 1) * Hp + k)
                if linear {
                    storeVec(loadVec(z + k).addingProduct(r![n + 1], next), z + k)
                }
                if recursion {
                    // spiking lanes as a bitmask, visited lowest first without per-lane branches
                    var bits = SIMD8<Int32>().replacing(with: laneBits, where: fire).wrappedSum()
                    while bits != 0 {
                        list[count] = UInt16(truncatingIfNeeded: k + bits.trailingZeroBitCount)
                        count += 1
                        bits &= bits - 1
                    }
                }
                k += lanes
            }
            ptr[n + 2] = count
            v = vNext
        }
        }
        if recursion {
            // leaky readout u_{n+1} = a_o u_n + s_n W2
            leakyReadout(steps: T, classes: config.nOut, stride: Cp, readout: config.readout, decay: aO,
                         w: w2.pointer, ws) { n in (UnsafePointer(list + ptr[n]), ptr[n + 1] - ptr[n]) }
        }
        if linear {
            // m_c = sum_j z_j W2[j, c]
            for c in 0..<config.nOut {
                var acc = Vec()
                var k = 0
                while k < Hp { acc = acc.addingProduct(loadVec(z + k), loadVec(w2t.pointer + c * Hp + k)); k += lanes }
                ws.m.pointer[c] = Double(acc.sum())
            }
        }
    }

    /// Backward pass of the sample just run forward: accumulates dW2 into `gradW2` (N_h x Cp)
    /// and writes gI (T x Hp) into `gI`. Returns the sample's loss.
    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, gI: UnsafeMutablePointer<Float>,
                  gradW2: UnsafeMutablePointer<Float>) -> Double {
        let T = self.T, Hp = self.Hp, Cp = self.Cp, C = config.nOut
        let loss = crossEntropy(ws.m.pointer, classes: C, label: label, scale: 1 / Double(batch), dm: ws.dm.pointer)
        let dm = ws.dm.pointer, dJ = ws.dJ.pointer, q = ws.temp.pointer
        if let r = linearWeights?.pointer {
            // dJ_n = r_n dm: dW2 = z^T dm, and ds_n = dJ_n W2^T = r_n q with q = W2 dm
            let z = ws.spikeCount.pointer
            for j in 0..<config.nHidden where z[j] != 0 {
                let row = gradW2 + j * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c).addingProduct(z[j], loadVec(dm + c)), row + c); c += lanes }
            }
            var k = 0
            while k < Hp {
                var acc = Vec()
                for c in 0..<C { acc = acc.addingProduct(dm[c], loadVec(w2t.pointer + c * Hp + k)) }
                storeVec(acc, q + k)
                k += lanes
            }
            hiddenBackward(ws, gI: gI) { n, k in r[n] * loadVec(q + k) }
            return loss
        }
        readoutBackward(ws, steps: T, stride: Cp, readout: config.readout, decay: aO, dJ: dJ)
        // dW2 = sum_n s_n^T dJ_n over the hidden spikes
        let list = ws.spikeList.pointer, ptr = ws.spikePtr.pointer
        for n in 0..<(T - 1) {
            for e in ptr[n]..<ptr[n + 1] {
                let row = gradW2 + Int(list[e]) * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c) + loadVec(dJ + n * Cp + c), row + c); c += lanes }
            }
        }
        hiddenBackward(ws, gI: gI) { n, k in
            // ds_n = dJ_n W2^T, two partial sums to halve the dependency chain
            let dJn = dJ + n * Cp
            var ds0 = Vec(), ds1 = Vec()
            var c = 0
            while c + 1 < C {
                ds0 = ds0.addingProduct(dJn[c], loadVec(w2t.pointer + c * Hp + k))
                ds1 = ds1.addingProduct(dJn[c + 1], loadVec(w2t.pointer + (c + 1) * Hp + k))
                c += 2
            }
            if c < C { ds0 = ds0.addingProduct(dJn[c], loadVec(w2t.pointer + c * Hp + k)) }
            return ds0 + ds1
        }
        return loss
    }

    /// The hidden layer in reverse time, given ds(n, k): the readout's gradient of the spikes
    /// s_n in lanes k ..< k + 8. Writes gI (T x Hp).
    @inline(__always)
    func hiddenBackward(_ ws: SNNWorkspace, gI: UnsafeMutablePointer<Float>, ds: (Int, Int) -> Vec) {
        let T = self.T, Hp = self.Hp
        assert(surrogate, "the backward pass needs a forward pass that recorded the surrogate")
        let P = ws.preReset.pointer, S = ws.spikes.pointer, G = ws.surrogate.pointer
        let gv = ws.gv.pointer, gs = ws.gs.pointer
        gv.update(repeating: 0, count: Hp)  // gv_{n+1}
        gs.update(repeating: 0, count: Hp)  // gs_{n+1}
        (gI + (T - 1) * Hp).update(repeating: 0, count: Hp)
        if Hp == lanes {
            // one vector: gv and gs in registers (as in `forward`), the same operations
            var gvNext = Vec(), gsNext = Vec()
            var n = T - 2
            while n >= 0 {
                let o = n * Hp
                let keep = 1 - loadVec(S + o)
                storeVec(gvNext * keep, gI + o)
                let gvNew = aH * gvNext * keep + gsNext * loadVec(G + o)
                gsNext = ds(n, 0) - gvNext * loadVec(P + o)
                gvNext = gvNew
                n -= 1
            }
            return
        }
        var n = T - 2
        while n >= 0 {
            var k = 0
            while k < Hp {
                let o = n * Hp + k
                let keep = 1 - loadVec(S + o)
                let gvNext = loadVec(gv + k), gsNext = loadVec(gs + k)
                storeVec(gvNext * keep, gI + o)
                // surr(v_n - 1), recorded by the forward pass
                storeVec(aH * gvNext * keep + gsNext * loadVec(G + o), gv + k)
                storeVec(ds(n, k) - gvNext * loadVec(P + o), gs + k)
                k += lanes
            }
            n -= 1
        }
    }
}

// MARK: - the membrane-only network, one sample

struct MembraneOnlyKernel: GradientKernel {
    let config: NetConfig
    let data: EventData
    let w: PaddedWeights  // N_in x Cp
    let aO: Float
    /// As for the spiking network: with a mean or sum readout, m = z W with the weighted input
    /// spike count z_i = sum over i's spike times t of r_t, and dW = z^T dm.
    let linearWeights: Scratch<Float>?
    var T: Int { config.steps }
    var Cp: Int { w.stride }
    var linear: Bool { linearWeights != nil }

    init(_ config: NetConfig, _ data: EventData, w: UnsafePointer<Float>) throws {
        self.config = config; self.data = data
        self.w = try PaddedWeights(w, rows: config.nIn, cols: config.nOut, name: "w")
        aO = Float(exp(-config.dt / config.tauOutput))
        linearWeights = try linearReadoutWeights(config.readout, steps: config.steps, decay: exp(-config.dt / config.tauOutput))
    }

    func workspace() throws -> SNNWorkspace {
        try SNNWorkspace(steps: T, hiddenStride: lanes, classStride: Cp, countSize: config.nIn)
    }

    // GradientKernel: dW (N_in x Cp), per sample (linear readouts) or from dJ (max readout)
    var gradients: [(rows: Int, cols: Int, stride: Int)] { [(config.nIn, config.nOut, Cp)] }
    var currentWidth: Int { Cp }
    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, current g: UnsafeMutablePointer<Float>,
                  partials: [UnsafeMutablePointer<Float>]) -> Double {
        backward(label: label, batch: batch, ws, dJ: g, gradW: partials[0])
    }
    func finishChunk(_ samples: ArraySlice<Int>, current g: UnsafePointer<Float>, partials: [UnsafeMutablePointer<Float>]) {
        if !linear { inputWeightGradient(data: data, samples: samples, g: g, width: Cp, into: partials[0]) }
    }

    func forward(sample s: Int, _ ws: SNNWorkspace, recordMembrane: Bool = false) {
        if !linear || recordMembrane {
            let base = s * T
            leakyReadout(steps: T, classes: config.nOut, stride: Cp, readout: config.readout, decay: aO,
                         w: w.pointer, ws) { n in
                let first = Int(data.stepPtr[base + n])
                return (data.stepEvents + first, Int(data.stepPtr[base + n + 1]) - first)
            }
        }
        guard let r = linearWeights?.pointer else { return }
        // z_i = sum of r_t over the steps t at which input i spikes; m = z W
        let nIn = config.nIn, z = ws.spikeCount.pointer, acc = ws.temp.pointer
        acc.update(repeating: 0, count: Cp)
        for i in 0..<nIn {
            var total: Float = 0
            for e in Int(data.inputPtr[s * nIn + i])..<Int(data.inputPtr[s * nIn + i + 1]) { total += r[Int(data.inputEvents[e])] }
            z[i] = total
            if total == 0 { continue }
            var c = 0
            while c < Cp { storeVec(loadVec(acc + c).addingProduct(total, loadVec(w.pointer + i * Cp + c)), acc + c); c += lanes }
        }
        for c in 0..<config.nOut { ws.m.pointer[c] = Double(acc[c]) }
    }

    /// Loss of the sample just run forward. Linear readouts add z^T dm to `gradW` (N_in x Cp);
    /// the max readout writes dJ (T x Cp, the gradient of the input currents) into `dJ`.
    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, dJ: UnsafeMutablePointer<Float>,
                  gradW: UnsafeMutablePointer<Float>) -> Double {
        let loss = crossEntropy(ws.m.pointer, classes: config.nOut, label: label, scale: 1 / Double(batch),
                                dm: ws.dm.pointer)
        if linear {
            let z = ws.spikeCount.pointer, dm = ws.dm.pointer
            for i in 0..<config.nIn where z[i] != 0 {
                let row = gradW + i * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c).addingProduct(z[i], loadVec(dm + c)), row + c); c += lanes }
            }
        } else {
            readoutBackward(ws, steps: T, stride: Cp, readout: config.readout, decay: aO, dJ: dJ)
        }
        return loss
    }
}

// MARK: - batch drivers

/// A weight gradient assembled from per-chunk partials (chunks x rows x stride floats).
struct PartialSums {
    let partials: Scratch<Float>
    let rows: Int, cols: Int, stride: Int
    let out: UnsafeMutablePointer<Float>
}

/// Sums the partials of every gradient over the chunks, in chunk order, in double precision.
/// Serial on the calling thread: the work is small (chunks x weights, ~0.2 M additions for
/// the tutorial network), and a parallel region here measured no faster (A/B 0.99x).
func reducePartials(_ sums: [PartialSums], chunks: Int) throws {
    for job in sums {
        let size = job.rows * job.stride
        let total = try Scratch<Double>(size, what: "gradient reduction")
        total.zero()
        for chunk in 0..<chunks {
            let part = job.partials.pointer + chunk * size
            for e in 0..<size { total.pointer[e] += Double(part[e]) }
        }
        for i in 0..<job.rows {
            for j in 0..<job.cols { job.out[i * job.cols + j] = Float(total.pointer[i * job.stride + j]) }
        }
    }
}

/// The input-weight gradient of one chunk: adds to `partial` (N_in x width), for each input i,
/// the sum of the per-step current gradients g (T x width per sample) over the steps at which i
/// spikes, over the chunk's samples.
func inputWeightGradient(data: EventData, samples: ArraySlice<Int>, g: UnsafePointer<Float>, width: Int,
                         into partial: UnsafeMutablePointer<Float>) {
    let T = data.steps
    // sample by sample and column tile by column tile, so that the tile of g stays in L1
    for (slot, s) in samples.enumerated() {
        for col in Swift.stride(from: 0, to: width, by: columnTile) {
            let tile = Swift.min(columnTile, width - col)
            for i in 0..<data.nIn {
                let first = Int(data.inputPtr[s * data.nIn + i]), last = Int(data.inputPtr[s * data.nIn + i + 1])
                addRows(data.inputEvents + first, last - first, from: g + slot * T * width + col, stride: width,
                        into: partial + i * width + col, width: tile)
            }
        }
    }
}

/// A network whose loss and gradients the batch driver can compute: per sample a forward and
/// a backward pass (which may add to the gradient partials and fills a T x `currentWidth`
/// buffer of current gradients), then `finishChunk` with that one sample (the input-weight
/// event sums), while its current gradients are still in cache. (It once ran once per chunk
/// over a chunk-sized buffer; the event sums add sample by sample either way, so the results
/// are the same.)
protocol GradientKernel {
    var config: NetConfig { get }
    var gradients: [(rows: Int, cols: Int, stride: Int)] { get }
    var currentWidth: Int { get }
    func workspace() throws -> SNNWorkspace
    func forward(sample s: Int, _ ws: SNNWorkspace, recordMembrane: Bool)
    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, current g: UnsafeMutablePointer<Float>,
                  partials: [UnsafeMutablePointer<Float>]) -> Double
    func finishChunk(_ samples: ArraySlice<Int>, current g: UnsafePointer<Float>, partials: [UnsafeMutablePointer<Float>])
}

/// Mean loss over the batch and the gradients (written to `outputs`, one per
/// `kernel.gradients`): fixed chunks of `chunkSize` samples run in parallel, each into its own
/// partials, which are then summed in chunk order, so the result does not depend on threads.
func lossAndGradients<K: GradientKernel>(_ kernel: K, _ data: EventData, samples: [Int],
                                         labels: UnsafePointer<Int64>, into outputs: [UnsafeMutablePointer<Float>],
                                         logits: UnsafeMutablePointer<Float>?, threads: Int) throws -> Double {
    let batch = samples.count, C = kernel.config.nOut, T = kernel.config.steps
    let chunks = (batch + chunkSize - 1) / chunkSize
    let shapes = kernel.gradients
    let partials = try shapes.map {
        try Scratch<Float>(try checkedProduct(chunks, $0.rows, $0.stride, what: "gradient partials"), what: "gradient partials")
    }
    let losses = try Scratch<Double>(batch, what: "losses")
    let currentSize = try checkedProduct(T, kernel.currentWidth, what: "workspace")
    let failures = try TaskFailures(chunks)
    try parallelFor(chunks, threads: threads, makeContext: {
        (try kernel.workspace(), try Scratch<Float>(currentSize, what: "workspace"))
    }) { ctx, chunk in
        let (ws, current) = ctx
        let range = (chunk * chunkSize)..<Swift.min(batch, (chunk + 1) * chunkSize)
        guard samples[range].allSatisfy(data.validateSample) else { failures.fail(chunk); return }
        let chunkPartials = zip(partials, shapes).map { partial, shape -> UnsafeMutablePointer<Float> in
            let slice = partial.pointer + chunk * shape.rows * shape.stride
            slice.update(repeating: 0, count: shape.rows * shape.stride)
            return slice
        }
        for b in range {
            kernel.forward(sample: samples[b], ws, recordMembrane: false)
            if let logits { for c in 0..<C { logits[b * C + c] = Float(ws.m.pointer[c]) } }
            losses.pointer[b] = kernel.backward(label: Int(labels[b]), batch: batch, ws,
                                                current: current.pointer, partials: chunkPartials)
            // the input-weight sums of this sample right away: its T x width current gradients
            // (e.g. 41 KB for the tutorial, 416 KB at T = 1000) are still in L1/L2, where a
            // chunk's eight (up to 3.3 MB) were not
            kernel.finishChunk(samples[b...b], current: current.pointer, partials: chunkPartials)
        }
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
    try reducePartials(zip(zip(partials, shapes), outputs).map { item, out in
        PartialSums(partials: item.0, rows: item.1.rows, cols: item.1.cols, stride: item.1.stride, out: out)
    }, chunks: chunks)
    var total = 0.0
    for b in 0..<batch { total += losses.pointer[b] }
    return total / Double(batch)
}

public struct ForwardOutputs {
    public var logits: UnsafeMutablePointer<Float>
    public var hiddenSpikes: UnsafeMutablePointer<UInt8>?
    public var outputMembrane: UnsafeMutablePointer<Float>?
    public init(logits: UnsafeMutablePointer<Float>, hiddenSpikes: UnsafeMutablePointer<UInt8>? = nil,
                outputMembrane: UnsafeMutablePointer<Float>? = nil) {
        self.logits = logits; self.hiddenSpikes = hiddenSpikes; self.outputMembrane = outputMembrane
    }
}

func writeRecordings(_ ws: SNNWorkspace, b: Int, T: Int, C: Int, Cp: Int, H: Int, Hp: Int, _ out: ForwardOutputs) {
    for c in 0..<C { out.logits[b * C + c] = Float(ws.m.pointer[c]) }
    if let mem = out.outputMembrane {
        for n in 0..<T { for c in 0..<C { mem[(b * T + n) * C + c] = ws.membrane.pointer[n * Cp + c] } }
    }
    if let hs = out.hiddenSpikes {
        for n in 0..<T { for j in 0..<H { hs[(b * T + n) * H + j] = ws.spikes.pointer[n * Hp + j] > 0 ? 1 : 0 } }
    }
}

/// Forward pass of the spiking network over a batch of samples of `data`.
public func snnForward(_ config: NetConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                       w1: UnsafePointer<Float>, w2: UnsafePointer<Float>, outputs: ForwardOutputs, threads: Int) throws {
    try config.validate(hidden: true)
    try config.checkData(data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    _ = try checkedProduct(batch, config.steps, Swift.max(config.nHidden, config.nOut), what: "recordings")
    let kernel = try SNNKernel(config, data, w1: w1, w2: w2)
    let failures = try TaskFailures(batch)
    try parallelFor(batch, threads: threads, makeContext: kernel.workspace) { ws, b in
        guard data.validateSample(samples[b]) else { failures.fail(b); return }
        kernel.forward(sample: samples[b], ws, recordMembrane: outputs.outputMembrane != nil)
        writeRecordings(ws, b: b, T: config.steps, C: config.nOut, Cp: kernel.Cp, H: config.nHidden, Hp: kernel.Hp, outputs)
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
}

/// Validates labels (int64 in [0, C)).
func checkLabels(_ labels: UnsafePointer<Int64>, batch: Int, classes: Int) throws {
    for b in 0..<batch {
        try require(labels[b] >= 0 && labels[b] < Int64(classes),
                    "labels[\(b)] = \(labels[b]) is out of range [0, \(classes))")
    }
}

/// Loss (mean cross-entropy over the batch) and gradients of the spiking network.
public func snnLossGrad(_ config: NetConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                        labels: UnsafePointer<Int64>, w1: UnsafePointer<Float>, w2: UnsafePointer<Float>,
                        gradW1: UnsafeMutablePointer<Float>, gradW2: UnsafeMutablePointer<Float>,
                        logits: UnsafeMutablePointer<Float>?, threads: Int) throws -> Double {
    try config.validate(hidden: true)
    try config.checkData(data)
    let samples = try data.batchSamples(index, batch: batch)
    try checkLabels(labels, batch: batch, classes: config.nOut)
    var kernel = try SNNKernel(config, data, w1: w1, w2: w2)
    kernel.surrogate = true
    return try lossAndGradients(kernel, data, samples: samples,
                                labels: labels, into: [gradW1, gradW2], logits: logits,
                                threads: try resolveThreads(threads))
}

/// Forward pass of the membrane-only network.
public func membraneOnlyForward(_ config: NetConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                                w: UnsafePointer<Float>, logits: UnsafeMutablePointer<Float>,
                                outputMembrane: UnsafeMutablePointer<Float>?, threads: Int) throws {
    try config.validate(hidden: false)
    try config.checkData(data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    _ = try checkedProduct(batch, config.steps, config.nOut, what: "recordings")
    let kernel = try MembraneOnlyKernel(config, data, w: w)
    let outputs = ForwardOutputs(logits: logits, outputMembrane: outputMembrane)
    let failures = try TaskFailures(batch)
    try parallelFor(batch, threads: threads, makeContext: kernel.workspace) { ws, b in
        guard data.validateSample(samples[b]) else { failures.fail(b); return }
        kernel.forward(sample: samples[b], ws, recordMembrane: outputMembrane != nil)
        writeRecordings(ws, b: b, T: config.steps, C: config.nOut, Cp: kernel.Cp, H: 0, Hp: lanes, outputs)
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
}

/// Loss and gradient of the membrane-only network.
public func membraneOnlyLossGrad(_ config: NetConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                                 labels: UnsafePointer<Int64>, w: UnsafePointer<Float>,
                                 gradW: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>?,
                                 threads: Int) throws -> Double {
    try config.validate(hidden: false)
    try config.checkData(data)
    let samples = try data.batchSamples(index, batch: batch)
    try checkLabels(labels, batch: batch, classes: config.nOut)
    return try lossAndGradients(try MembraneOnlyKernel(config, data, w: w), data, samples: samples,
                                labels: labels, into: [gradW], logits: logits,
                                threads: try resolveThreads(threads))
}
