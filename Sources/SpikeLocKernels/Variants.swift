// Research variants of the spiking network (MODEL.md section 4) in one general kernel:
// resets (delayed, same-step, subtractive), surrogates (sigmoid, fast sigmoid, arctan,
// piecewise linear), per-neuron time constants with their gradients, an adaptive threshold,
// Dale's law, spiking output units read out by spike count, the hidden firing-rate
// regulariser and dropout on hidden spikes. The default network keeps its tuned fast path
// (Network.swift); this kernel is served by the same batch driver (`lossAndGradients`).
//
// LIF layer (hidden; and the output layer of the spike-count readout, without adaptation),
// per-neuron decay a, theta_n = 1 + beta_a b_n, v_0 = b_0 = 0, for n = 0 .. T-1:
//   delayed:      s_{n+1} = H(v_n - theta_n) (s_0 = 0),  v_{n+1} = (a v_n + I_n)(1 - s_n)
//   same-step:    s_n = H(v_n - theta_n),                 v_{n+1} = (a v_n + I_n)(1 - s_n)
//   subtractive:  s_n = H(v_n - theta_n),                 v_{n+1} = a v_n + I_n - s_n theta_n
//   b_{n+1} = rho b_n + (1 - rho) s_n                      (v, b updated for n <= T-2)
// Backward (sg_n = surr(v_n - theta_n), primes = step n+1, all zero at n = T):
//   delayed:     gs_n = ds_n - gv' P_n + gb'(1 - rho); gv_n = gs' sg_n + gv' a (1 - s_n)
//                gb_n = -beta_a gs' sg_n + rho gb';    gI_n = gv'(1 - s_n); ga += gv' v_n (1 - s_n)
//   same-step:   as delayed with gs_n in place of gs' in gv_n and gb_n
//   subtractive: gs_n = ds_n - gv' theta_n + gb'(1 - rho); gv_n = gs_n sg_n + gv' a
//                gb_n = -beta_a (gs_n sg_n + gv' s_n) + rho gb'; gI_n = gv'; ga += gv' v_n
// dL/dtau_j = dL/da_j a_j dt / tau_j^2. The reference is python/spikeloc/reference/variants.py.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ResetKind: Int32 {
    case delayed = 0, sameStep = 1, subtractive = 2
}

public enum SurrogateKind: Int32 {
    case sigmoid = 0, fastSigmoid = 1, arctan = 2, piecewiseLinear = 3
}

/// Options of the general network; every default is the plain network of Network.swift.
/// Arrays are borrowed for the duration of a call.
public struct VariantOptions {
    public var reset: ResetKind = .delayed
    public var surrogate: SurrogateKind = .sigmoid
    /// Spiking output units whose spike counts are the logits (NetConfig.readout is ignored).
    public var spikeCount = false
    /// Adaptive threshold: time constant tau_a (s; 0 = off) and strength beta_a.
    public var adaptTau = 0.0, adaptStrength = 0.0
    /// Per-neuron time constants (s): N_h and C floats, nil = the config's scalar.
    public var tauHidden: UnsafePointer<Float>? = nil, tauOutput: UnsafePointer<Float>? = nil
    /// Dale's law: a sign (+1 or -1) per presynaptic unit (N_in for w1, N_h for w2), nil = none.
    public var signW1: UnsafePointer<Float>? = nil, signW2: UnsafePointer<Float>? = nil
    /// Firing-rate regulariser c (0 = off) and r_max (Hz).
    public var rateC = 0.0, rateMax = 100.0
    /// Dropout probability of hidden spikes (loss and gradients only) and its seed.
    public var dropout = 0.0, dropoutSeed: UInt64 = 0
    public init() {}

    func validate(_ config: NetConfig) throws {
        try require(adaptTau == 0 || (adaptTau.isFinite && adaptTau > 0),
                    "adapt_tau must be 0 (off) or a positive finite number, got \(adaptTau)")
        try require(adaptStrength.isFinite && adaptStrength >= 0,
                    "adapt_strength must be a finite number >= 0, got \(adaptStrength)")
        try require(rateC.isFinite && rateC >= 0, "rate_c must be a finite number >= 0, got \(rateC)")
        if rateC > 0 { try requirePositiveFinite(rateMax, "rate_max") }
        try require(dropout.isFinite && dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got \(dropout)")
        if let t = tauHidden { try checkTaus(t, config.nHidden, "tau_hidden") }
        if let t = tauOutput { try checkTaus(t, config.nOut, "tau_output") }
        if let s = signW1 { try checkSigns(s, config.nIn, "sign_w1") }
        if let s = signW2 { try checkSigns(s, config.nHidden, "sign_w2") }
    }
}

func checkTaus(_ tau: UnsafePointer<Float>, _ n: Int, _ name: String) throws {
    for j in 0..<n {
        try require(tau[j].isFinite && tau[j] > 0, "\(name)[\(j)] must be a positive finite number, got \(tau[j])")
    }
}

func checkSigns(_ sign: UnsafePointer<Float>, _ n: Int, _ name: String) throws {
    for i in 0..<n { try require(sign[i] == 1 || sign[i] == -1, "\(name)[\(i)] must be +1 or -1, got \(sign[i])") }
}

/// Dale's law: W_eff = |W| * sign (a sign per row), or W itself without signs.
func daleEffective(_ w: UnsafePointer<Float>, rows: Int, cols: Int, sign: UnsafePointer<Float>?,
                   name: String) throws -> Scratch<Float>? {
    guard let sign else { return nil }
    let out = try Scratch<Float>(try checkedProduct(rows, cols, what: name), what: name)
    for i in 0..<rows { for j in 0..<cols { out.pointer[i * cols + j] = Swift.abs(w[i * cols + j]) * sign[i] } }
    return out
}

/// dW = dW_eff * sign * sgn(W), sgn(0) = 0 (a weight at exactly 0 stays culled), in place.
func daleGradient(_ g: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, rows: Int, cols: Int,
                  sign: UnsafePointer<Float>?) {
    guard let sign else { return }
    for i in 0..<rows {
        for j in 0..<cols {
            let x = w[i * cols + j]
            let sgn: Float = x > 0 ? 1 : (x < 0 ? -1 : 0)
            g[i * cols + j] *= sign[i] * sgn
        }
    }
}

/// The surrogate derivative of H at x, scale beta.
@inline(__always) func surrogateVec(_ x: Vec, _ kind: SurrogateKind, beta: Float) -> Vec {
    switch kind {
    case .sigmoid: return sigmoidSurrogate(x, beta: beta)
    case .fastSigmoid:
        let d = 1 + beta * abs(x)
        return 1 / (d * d)
    case .arctan:
        let y = (Float.pi * beta / 2) * x
        return (beta / 2) / (1 + y * y)
    case .piecewiseLinear:
        let t = 1 - abs(x)
        return beta * t.replacing(with: 0, where: t .< 0)
    }
}

/// Constants of one LIF layer: `width` padded lanes, per-lane decay (0 in padding lanes).
struct LIFParams {
    let width: Int
    let decay: Scratch<Float>
    let tau: [Double]
    let reset: ResetKind, surrogate: SurrogateKind, beta: Float
    let rho: Float, strength: Float

    init(width: Int, count: Int, tau: UnsafePointer<Float>?, scalarTau: Double, dt: Double, reset: ResetKind,
         surrogate: SurrogateKind, beta: Double, adaptTau: Double, adaptStrength: Double) throws {
        self.width = width
        decay = try Scratch<Float>(width, what: "decays")
        decay.zero()
        var taus = [Double](repeating: scalarTau, count: count)
        if let tau { for j in 0..<count { taus[j] = Double(tau[j]) } }
        for j in 0..<count { decay.pointer[j] = Float(exp(-dt / taus[j])) }
        self.tau = taus
        self.reset = reset; self.surrogate = surrogate; self.beta = Float(beta)
        if adaptTau > 0 {
            rho = Float(exp(-dt / adaptTau)); strength = Float(adaptStrength)
        } else {
            rho = 0; strength = 0
        }
    }

    /// One sample's forward pass: V, S, P, A (T x width) from the currents that `current(n, I)`
    /// writes into I (one row) for n <= T-2. P_{T-1} is set to 0.
    @inline(__always)
    func forward(steps T: Int, V: UnsafeMutablePointer<Float>, S: UnsafeMutablePointer<Float>,
                 P: UnsafeMutablePointer<Float>, A: UnsafeMutablePointer<Float>, I: UnsafeMutablePointer<Float>,
                 current: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let W = width, a = decay.pointer
        V.update(repeating: 0, count: W)
        A.update(repeating: 0, count: W)
        if reset == .delayed { S.update(repeating: 0, count: W) }
        (P + (T - 1) * W).update(repeating: 0, count: W)
        for n in 0..<T {
            let last = n == T - 1
            if !last { current(n, I) }
            var k = 0
            while k < W {
                let o = n * W + k
                let v = loadVec(V + o), b = loadVec(A + o)
                let theta = 1 + strength * b
                let q = Vec(repeating: 0).replacing(with: 1, where: v .> theta)
                let s: Vec
                if reset == .delayed {
                    if !last { storeVec(q, S + o + W) }
                    s = loadVec(S + o)
                } else {
                    storeVec(q, S + o)
                    s = q
                }
                if !last {
                    let p = loadVec(a + k) * v + loadVec(I + k)
                    storeVec(p, P + o)
                    storeVec(reset == .subtractive ? p - s * theta : p * (1 - s), V + o + W)
                    storeVec(rho * b + (1 - rho) * s, A + o + W)
                }
                k += lanes
            }
        }
    }

    /// One sample's backward pass given ds(n, k), the direct gradient of s_n in lanes k ..< k+8.
    /// Writes gI (T x width), adds dL/da to `ga` (width); gv, gb, gs are scratch rows.
    @inline(__always)
    func backward(steps T: Int, V: UnsafePointer<Float>, S: UnsafePointer<Float>, P: UnsafePointer<Float>,
                  A: UnsafePointer<Float>, gv: UnsafeMutablePointer<Float>, gb: UnsafeMutablePointer<Float>,
                  gs: UnsafeMutablePointer<Float>, ga: UnsafeMutablePointer<Float>, gI: UnsafeMutablePointer<Float>,
                  ds: (Int, Int) -> Vec) {
        let W = width, a = decay.pointer
        gv.update(repeating: 0, count: W); gb.update(repeating: 0, count: W); gs.update(repeating: 0, count: W)
        var n = T - 1
        while n >= 0 {
            var k = 0
            while k < W {
                let o = n * W + k
                let v = loadVec(V + o), s = loadVec(S + o)
                let theta = 1 + strength * loadVec(A + o)
                let sg = surrogateVec(v - theta, surrogate, beta: beta)
                let gv1 = loadVec(gv + k), gb1 = loadVec(gb + k), gs1 = loadVec(gs + k)
                let d = ds(n, k)
                let gsn: Vec, gvn: Vec, gbn: Vec
                if reset == .subtractive {
                    gsn = d - gv1 * theta + gb1 * (1 - rho)
                    gvn = gsn * sg + gv1 * loadVec(a + k)
                    gbn = -strength * (gsn * sg + gv1 * s) + rho * gb1
                    storeVec(gv1, gI + o)
                    storeVec(loadVec(ga + k) + gv1 * v, ga + k)
                } else {
                    gsn = d - gv1 * loadVec(P + o) + gb1 * (1 - rho)
                    let through = reset == .delayed ? gs1 : gsn
                    let keep = 1 - s
                    gvn = through * sg + gv1 * loadVec(a + k) * keep
                    gbn = -strength * through * sg + rho * gb1
                    storeVec(gv1 * keep, gI + o)
                    storeVec(loadVec(ga + k) + gv1 * v * keep, ga + k)
                }
                storeVec(gvn, gv + k); storeVec(gbn, gb + k); storeVec(gsn, gs + k)
                k += lanes
            }
            n -= 1
        }
    }
}

/// Per-worker memory of the general kernel beyond SNNWorkspace (hidden rows Hp, class rows Cp).
final class VariantBuffers {
    let V: Scratch<Float>, S: Scratch<Float>, P: Scratch<Float>, A: Scratch<Float>, D: Scratch<Float>
    let Vo: Scratch<Float>, So: Scratch<Float>, Po: Scratch<Float>, Ao: Scratch<Float>
    let rows: Scratch<Float>, reg: Scratch<Float>

    init(steps T: Int, Hp: Int, Cp: Int) throws {
        let th = try checkedProduct(T, Hp, what: "workspace"), tc = try checkedProduct(T, Cp, what: "workspace")
        V = try Scratch(th, what: "workspace"); S = try Scratch(th, what: "workspace")
        P = try Scratch(th, what: "workspace"); A = try Scratch(th, what: "workspace")
        D = try Scratch(th, what: "workspace")
        Vo = try Scratch(tc, what: "workspace"); So = try Scratch(tc, what: "workspace")
        Po = try Scratch(tc, what: "workspace"); Ao = try Scratch(tc, what: "workspace")
        let width = Swift.max(Hp, Cp)
        rows = try Scratch(4 * width, what: "workspace")  // gv, gb, gs, current
        reg = try Scratch(Hp, what: "workspace")
    }
    var gv: UnsafeMutablePointer<Float> { rows.pointer }
    var gb: UnsafeMutablePointer<Float> { rows.pointer + rows.count / 4 }
    var gs: UnsafeMutablePointer<Float> { rows.pointer + rows.count / 2 }
    var current: UnsafeMutablePointer<Float> { rows.pointer + 3 * rows.count / 4 }
}

struct VariantKernel: GradientKernel {
    let config: NetConfig
    let options: VariantOptions
    let data: EventData
    let w1: PaddedWeights, w2: PaddedWeights, w2t: PaddedWeights  // effective (signed) weights
    let hidden: LIFParams, output: LIFParams
    let training: Bool
    var T: Int { config.steps }
    var Hp: Int { w1.stride }
    var Cp: Int { w2.stride }

    /// `training`: apply dropout (loss and gradients); the forward pass of evaluation has none.
    init(_ config: NetConfig, _ options: VariantOptions, _ data: EventData, w1 raw1: UnsafePointer<Float>,
         w2 raw2: UnsafePointer<Float>, training: Bool) throws {
        self.config = config; self.options = options; self.data = data; self.training = training
        let e1 = try daleEffective(raw1, rows: config.nIn, cols: config.nHidden, sign: options.signW1, name: "w1")
        let e2 = try daleEffective(raw2, rows: config.nHidden, cols: config.nOut, sign: options.signW2, name: "w2")
        let p1 = e1.map { UnsafePointer($0.pointer) } ?? raw1, p2 = e2.map { UnsafePointer($0.pointer) } ?? raw2
        w1 = try PaddedWeights(p1, rows: config.nIn, cols: config.nHidden, name: "w1")
        w2 = try PaddedWeights(p2, rows: config.nHidden, cols: config.nOut, name: "w2")
        w2t = try PaddedWeights(p2, rows: config.nHidden, cols: config.nOut, name: "w2", transpose: true)
        hidden = try LIFParams(width: w1.stride, count: config.nHidden, tau: options.tauHidden,
                               scalarTau: config.tauHidden, dt: config.dt, reset: options.reset,
                               surrogate: options.surrogate, beta: config.beta, adaptTau: options.adaptTau,
                               adaptStrength: options.adaptStrength)
        output = try LIFParams(width: w2.stride, count: config.nOut, tau: options.tauOutput,
                               scalarTau: config.tauOutput, dt: config.dt, reset: options.reset,
                               surrogate: options.surrogate, beta: config.beta, adaptTau: 0, adaptStrength: 0)
    }

    func workspace() throws -> SNNWorkspace {
        let ws = try SNNWorkspace(steps: T, hiddenStride: Hp, classStride: Cp)
        ws.extra = try VariantBuffers(steps: T, Hp: Hp, Cp: Cp)
        return ws
    }

    // GradientKernel: dW1_eff (N_in x Hp) from gI, dW2_eff (N_h x Cp), dL/da_h, dL/da_o
    var gradients: [(rows: Int, cols: Int, stride: Int)] {
        [(config.nIn, config.nHidden, Hp), (config.nHidden, config.nOut, Cp), (1, config.nHidden, Hp), (1, config.nOut, Cp)]
    }
    var currentWidth: Int { Hp }
    func finishChunk(_ samples: ArraySlice<Int>, current g: UnsafePointer<Float>, partials: [UnsafeMutablePointer<Float>]) {
        inputWeightGradient(data: data, samples: samples, g: g, width: Hp, into: partials[0])
    }

    var dropping: Bool { training && options.dropout > 0 }

    /// J_n = (s_n * D_n) W2_eff into `J` (Cp lanes).
    @inline(__always)
    func readoutCurrent(_ n: Int, _ b: VariantBuffers, _ J: UnsafeMutablePointer<Float>) {
        J.update(repeating: 0, count: Cp)
        let S = b.S.pointer + n * Hp, D = b.D.pointer + n * Hp
        for j in 0..<config.nHidden where S[j] != 0 {
            let d = dropping ? D[j] : 1
            if d == 0 { continue }
            let row = w2.pointer + j * Cp
            var c = 0
            while c < Cp { storeVec(loadVec(J + c).addingProduct(d, loadVec(row + c)), J + c); c += lanes }
        }
    }

    func forward(sample s: Int, _ ws: SNNWorkspace, recordMembrane: Bool) {
        let b = unsafeDowncast(ws.extra!, to: VariantBuffers.self)
        let T = self.T, Hp = self.Hp, Cp = self.Cp, C = config.nOut
        if dropping {
            let p = options.dropout, scale = Float(1 / (1 - p))
            let key = CounterRNG.key(seed: options.dropoutSeed, index: UInt64(s))
            let D = b.D.pointer, H = config.nHidden
            for n in 0..<T {
                for j in 0..<Hp {
                    D[n * Hp + j] = j < H && CounterRNG.uniform53(key: key, word: UInt64(n * H + j)) >= p ? scale : 0
                }
            }
        }
        let stepBase = s * T
        hidden.forward(steps: T, V: b.V.pointer, S: b.S.pointer, P: b.P.pointer, A: b.A.pointer, I: ws.current.pointer) { n, I in
            let first = Int(data.stepPtr[stepBase + n]), last = Int(data.stepPtr[stepBase + n + 1])
            I.update(repeating: 0, count: Hp)
            addRows(data.stepEvents + first, last - first, from: w1.pointer, stride: Hp, into: I, width: Hp)
        }
        let m = ws.m.pointer
        if options.spikeCount {
            output.forward(steps: T, V: b.Vo.pointer, S: b.So.pointer, P: b.Po.pointer, A: b.Ao.pointer,
                           I: b.current) { n, J in readoutCurrent(n, b, J) }
            for c in 0..<C {
                var count = 0.0
                for n in 0..<T { count += Double(b.So.pointer[n * Cp + c]) }
                m[c] = count
            }
            return
        }
        // leaky readout u_{n+1} = a_o u_n + J_n, aggregated in double
        let U = ws.membrane.pointer, aO = output.decay.pointer, J = b.current
        U.update(repeating: 0, count: Cp)
        for n in 0..<(T - 1) {
            readoutCurrent(n, b, J)
            var c = 0
            while c < Cp {
                storeVec(loadVec(aO + c) * loadVec(U + n * Cp + c) + loadVec(J + c), U + (n + 1) * Cp + c)
                c += lanes
            }
        }
        let argmax = ws.argmax.pointer
        for c in 0..<C {
            switch config.readout {
            case .mean, .sum:
                var total = 0.0
                for n in 0..<T { total += Double(U[n * Cp + c]) }
                m[c] = config.readout == .mean ? total / Double(T) : 0.01 * total
            case .max:
                var best = U[c], at = 0
                for n in 1..<T where U[n * Cp + c] > best { best = U[n * Cp + c]; at = n }
                m[c] = Double(best); argmax[c] = Float(at)
            }
        }
    }

    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, current gI: UnsafeMutablePointer<Float>,
                  partials: [UnsafeMutablePointer<Float>]) -> Double {
        let b = unsafeDowncast(ws.extra!, to: VariantBuffers.self)
        let T = self.T, Hp = self.Hp, Cp = self.Cp, C = config.nOut, H = config.nHidden
        var loss = crossEntropy(ws.m.pointer, classes: C, label: label, scale: 1 / Double(batch), dm: ws.dm.pointer)
        let dm = ws.dm.pointer, dJ = ws.dJ.pointer
        if options.spikeCount {
            // m_c = sum_n s^o_{n,c}: every output spike gets dm
            output.backward(steps: T, V: b.Vo.pointer, S: b.So.pointer, P: b.Po.pointer, A: b.Ao.pointer,
                            gv: b.gv, gb: b.gb, gs: b.gs, ga: partials[3], gI: dJ) { _, k in loadVec(dm + k) }
        } else {
            let U = ws.membrane.pointer, aO = output.decay.pointer, argmax = ws.argmax.pointer, ga = partials[3]
            (dJ + (T - 1) * Cp).update(repeating: 0, count: Cp)
            var c = 0
            while c < Cp {
                let g = loadVec(dm + c), peak = loadVec(argmax + c), a = loadVec(aO + c)
                let constant: Vec = config.readout == .mean ? g / Float(T) : (config.readout == .sum ? 0.01 * g : Vec())
                @inline(__always) func du(_ n: Int) -> Vec {
                    config.readout == .max ? Vec().replacing(with: g, where: peak .== Float(n)) : constant
                }
                var gu = du(T - 1), gaSum = Vec()
                var n = T - 2
                while n >= 0 {
                    storeVec(gu, dJ + n * Cp + c)                       // dJ_n = gu_{n+1}
                    gaSum = gaSum.addingProduct(gu, loadVec(U + n * Cp + c))
                    gu = du(n) + a * gu
                    n -= 1
                }
                storeVec(loadVec(ga + c) + gaSum, ga + c)
                c += lanes
            }
        }
        // dW2_eff += sum_n (s_n D_n)^T dJ_n (dJ_{T-1} = 0)
        let gradW2 = partials[1]
        for n in 0..<(T - 1) {
            let S = b.S.pointer + n * Hp, D = b.D.pointer + n * Hp
            for j in 0..<H where S[j] != 0 {
                let d = dropping ? D[j] : 1
                if d == 0 { continue }
                let row = gradW2 + j * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c).addingProduct(d, loadVec(dJ + n * Cp + c)), row + c); c += lanes }
            }
        }
        // the firing-rate regulariser: a constant gradient per unit on every spike
        let reg = b.reg.pointer
        reg.update(repeating: 0, count: Hp)
        if options.rateC > 0 {
            let seconds = Double(T) * config.dt, c = options.rateC, rMax = options.rateMax
            var total = 0.0
            for j in 0..<H {
                var count = 0.0
                for n in 0..<T { count += Double(b.S.pointer[n * Hp + j]) }
                let e = Swift.max(0, count / seconds - rMax) / rMax
                total += e * e
                reg[j] = Float(2 * c / Double(H) * e / rMax / seconds / Double(batch))
            }
            loss += c * total / Double(H)
        }
        hidden.backward(steps: T, V: b.V.pointer, S: b.S.pointer, P: b.P.pointer, A: b.A.pointer,
                        gv: b.gv, gb: b.gb, gs: b.gs, ga: partials[2], gI: gI) { n, k in
            // ds_n = D_n (dJ_n W2^T) + the regulariser's gradient
            let dJn = dJ + n * Cp
            var ds0 = Vec(), ds1 = Vec()
            var c = 0
            while c + 1 < C {
                ds0 = ds0.addingProduct(dJn[c], loadVec(w2t.pointer + c * Hp + k))
                ds1 = ds1.addingProduct(dJn[c + 1], loadVec(w2t.pointer + (c + 1) * Hp + k))
                c += 2
            }
            if c < C { ds0 = ds0.addingProduct(dJn[c], loadVec(w2t.pointer + c * Hp + k)) }
            let ds = dropping ? (ds0 + ds1) * loadVec(b.D.pointer + n * Hp + k) : ds0 + ds1
            return ds + loadVec(reg + k)
        }
        return loss
    }
}

/// dL/dtau_j = dL/da_j a_j dt / tau_j^2 for the taus of `layer`, from dL/da (float).
func tauGradient(_ da: UnsafePointer<Float>, _ layer: LIFParams, dt: Double, count: Int,
                 into out: UnsafeMutablePointer<Float>) {
    for j in 0..<count {
        let tau = layer.tau[j]
        out[j] = Float(Double(da[j]) * exp(-dt / tau) * dt / (tau * tau))
    }
}

/// Forward pass of the general network (no dropout). `outputMembrane` records u (membrane
/// readouts) or the output LIF voltages (spike-count readout).
public func variantForward(_ config: NetConfig, _ options: VariantOptions, _ data: EventData,
                           index: UnsafePointer<Int64>?, batch: Int, w1: UnsafePointer<Float>,
                           w2: UnsafePointer<Float>, outputs: ForwardOutputs, threads: Int) throws {
    try config.validate(hidden: true)
    try options.validate(config)
    try config.checkData(data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    _ = try checkedProduct(batch, config.steps, Swift.max(config.nHidden, config.nOut), what: "recordings")
    let kernel = try VariantKernel(config, options, data, w1: w1, w2: w2, training: false)
    let T = config.steps, C = config.nOut, H = config.nHidden, Hp = kernel.Hp, Cp = kernel.Cp
    let failures = try TaskFailures(batch)
    try parallelFor(batch, threads: threads, makeContext: kernel.workspace) { ws, b in
        guard data.validateSample(samples[b]) else { failures.fail(b); return }
        kernel.forward(sample: samples[b], ws, recordMembrane: true)
        let buffers = unsafeDowncast(ws.extra!, to: VariantBuffers.self)
        for c in 0..<C { outputs.logits[b * C + c] = Float(ws.m.pointer[c]) }
        if let mem = outputs.outputMembrane {
            let U = options.spikeCount ? buffers.Vo.pointer : ws.membrane.pointer
            for n in 0..<T { for c in 0..<C { mem[(b * T + n) * C + c] = U[n * Cp + c] } }
        }
        if let hs = outputs.hiddenSpikes {
            for n in 0..<T { for j in 0..<H { hs[(b * T + n) * H + j] = buffers.S.pointer[n * Hp + j] > 0 ? 1 : 0 } }
        }
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
}

/// Gradient outputs of `variantLossGrad`; the tau gradients are optional.
public struct VariantGradients {
    public var w1: UnsafeMutablePointer<Float>, w2: UnsafeMutablePointer<Float>
    public var tauHidden: UnsafeMutablePointer<Float>?, tauOutput: UnsafeMutablePointer<Float>?
    public init(w1: UnsafeMutablePointer<Float>, w2: UnsafeMutablePointer<Float>,
                tauHidden: UnsafeMutablePointer<Float>? = nil, tauOutput: UnsafeMutablePointer<Float>? = nil) {
        self.w1 = w1; self.w2 = w2; self.tauHidden = tauHidden; self.tauOutput = tauOutput
    }
}

/// Loss (mean cross-entropy plus the rate regulariser) and gradients of the general network:
/// raw weights (Dale's law applied) and, where asked, the time constants.
public func variantLossGrad(_ config: NetConfig, _ options: VariantOptions, _ data: EventData,
                            index: UnsafePointer<Int64>?, batch: Int, labels: UnsafePointer<Int64>,
                            w1: UnsafePointer<Float>, w2: UnsafePointer<Float>, gradients: VariantGradients,
                            logits: UnsafeMutablePointer<Float>?, threads: Int) throws -> Double {
    try config.validate(hidden: true)
    try options.validate(config)
    try config.checkData(data)
    let samples = try data.batchSamples(index, batch: batch)
    try checkLabels(labels, batch: batch, classes: config.nOut)
    let kernel = try VariantKernel(config, options, data, w1: w1, w2: w2, training: true)
    let da = try Scratch<Float>(config.nHidden + config.nOut, what: "decay gradients")
    let loss = try lossAndGradients(kernel, data, samples: samples, labels: labels,
                                    into: [gradients.w1, gradients.w2, da.pointer, da.pointer + config.nHidden],
                                    logits: logits, threads: try resolveThreads(threads))
    daleGradient(gradients.w1, w: w1, rows: config.nIn, cols: config.nHidden, sign: options.signW1)
    daleGradient(gradients.w2, w: w2, rows: config.nHidden, cols: config.nOut, sign: options.signW2)
    if let out = gradients.tauHidden { tauGradient(da.pointer, kernel.hidden, dt: config.dt, count: config.nHidden, into: out) }
    if let out = gradients.tauOutput {
        tauGradient(da.pointer + config.nHidden, kernel.output, dt: config.dt, count: config.nOut, into: out)
    }
    return loss
}
