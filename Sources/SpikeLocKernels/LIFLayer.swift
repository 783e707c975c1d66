// One LIF layer of the general network (MODEL.md sections 4 and 7): every reset, surrogate,
// per-neuron decay, adaptive threshold and, optionally, recurrent weights. The hidden layers
// and the spiking output units of the general kernel (GeneralNetwork.swift) all run this.
//
// Per-neuron decay a, theta_n = 1 + beta_a b_n, v_0 = b_0 = 0, for n = 0 .. T-1:
//   delayed:      s_{n+1} = H(v_n - theta_n) (s_0 = 0),  v_{n+1} = (a v_n + I_n)(1 - s_n)
//   same-step:    s_n = H(v_n - theta_n),                 v_{n+1} = (a v_n + I_n)(1 - s_n)
//   subtractive:  s_n = H(v_n - theta_n),                 v_{n+1} = a v_n + I_n - s_n theta_n
//   zero:         s_n = H(v_n - theta_n),                 v_{n+1} = a v_n (1 - s_n) + I_n
//   b_{n+1} = rho b_n + (1 - rho) s_n                      (v, b updated for n <= T-2)
// The current I_n comes from the layer below and, in a recurrent layer, from s_n Wrec (the
// spike recorded at step n drives step n + 1), so each step first settles s_n, then asks for
// I_n, then updates v and b. P_n is what the reset factor (1 - s_n) multiplies: a v_n + I_n
// (delayed, same-step; subtractive keeps it too), a v_n (zero).
// Backward (sg_n = surr(v_n - theta_n), primes = step n+1, all zero at n = T; r_n = gI_n Wrec^T):
//   delayed:     gs_n = ds_n + r_n - gv' P_n + gb'(1 - rho); gv_n = gs' sg_n + gv' a (1 - s_n)
//                gb_n = -beta_a gs' sg_n + rho gb';    gI_n = gv'(1 - s_n); ga += gv' v_n (1 - s_n)
//   same-step:   as delayed with gs_n in place of gs' in gv_n and gb_n
//   subtractive: gs_n = ds_n + r_n - gv' theta_n + gb'(1 - rho); gv_n = gs_n sg_n + gv' a
//                gb_n = -beta_a (gs_n sg_n + gv' s_n) + rho gb'; gI_n = gv'; ga += gv' v_n
//   zero:        as same-step (P_n = a v_n) with gI_n = gv'
// A detached reset drops the terms -gv' P_n, -gv' theta_n and -beta_a gv' s_n (e-prop's
// choice). The reference is python/spikeloc/reference/variants.py (lif_forward, lif_backward).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Spikes of a layer as lists per step: the units that spike at step n are
/// `units[start[n] ..< start[n + 1]]`, in increasing order. Filled by `LIFParams.forward`.
struct SpikeLists {
    let units: UnsafeMutablePointer<UInt16>   // capacity steps x units
    let start: UnsafeMutablePointer<Int>      // steps + 1
    @inline(__always) func at(_ n: Int) -> (list: UnsafePointer<UInt16>, count: Int) {
        (UnsafePointer(units + start[n]), start[n + 1] - start[n])
    }
}

/// Sums over a layer's settled spikes that the forward pass keeps besides (or instead of) the
/// spike lists: counts = sum_n s_n, and the weighted counts z = sum_n zWeights[n] D_n s_n and
/// y = sum_n yWeights[n] D_n s_n of the linear readouts (D: the dropout rows, or 1). Rows of
/// `width` floats, zeroed by the forward pass.
struct SpikeTally {
    var counts: UnsafeMutablePointer<Float>? = nil
    var z: UnsafeMutablePointer<Float>? = nil, y: UnsafeMutablePointer<Float>? = nil
    var zWeights: UnsafePointer<Float>? = nil, yWeights: UnsafePointer<Float>? = nil
    var dropout: UnsafePointer<Float>? = nil
}

/// Memory of one LIF layer for one sample: V, S, P, A and the current adjoints gI (steps x
/// width; gI has `padding` more rows, kept at zero, for lagged reads), the direct spike
/// gradient ds (steps x width), the spike lists, and scratch rows.
final class LayerBuffers {
    let V: Scratch<Float>, S: Scratch<Float>, P: Scratch<Float>, A: Scratch<Float>
    let gI: Scratch<Float>, ds: Scratch<Float>, rows: Scratch<Float>
    let units: Scratch<UInt16>, start: Scratch<Int>
    let width: Int

    init(steps T: Int, width: Int, padding: Int = 0) throws {
        self.width = width
        let size = try checkedProduct(T, width, what: "workspace")
        V = try Scratch(size, what: "workspace"); S = try Scratch(size, what: "workspace")
        P = try Scratch(size, what: "workspace"); A = try Scratch(size, what: "workspace")
        ds = try Scratch(size, what: "workspace")
        gI = try Scratch(try checkedProduct(T + padding, width, what: "workspace"), what: "workspace")
        gI.zero()
        rows = try Scratch(5 * width, what: "workspace")  // gv, gb, gs, the current, r
        units = try Scratch(size, what: "workspace"); start = try Scratch(T + 1, what: "workspace")
    }
    var gv: UnsafeMutablePointer<Float> { rows.pointer }
    var gb: UnsafeMutablePointer<Float> { rows.pointer + width }
    var gs: UnsafeMutablePointer<Float> { rows.pointer + 2 * width }
    var current: UnsafeMutablePointer<Float> { rows.pointer + 3 * width }
    var feedback: UnsafeMutablePointer<Float> { rows.pointer + 4 * width }
    var spikes: SpikeLists { SpikeLists(units: units.pointer, start: start.pointer) }
}

/// The surrogate derivative of H, scale beta, as a type, so that the backward loop is
/// specialized (and the derivative inlined) once per kind instead of switching per vector.
protocol Surrogate { static func derivative(_ x: Vec, beta: Float) -> Vec }

enum SigmoidDerivative: Surrogate {
    @inline(__always) static func derivative(_ x: Vec, beta: Float) -> Vec { sigmoidSurrogate(x, beta: beta) }
}
enum FastSigmoidDerivative: Surrogate {
    @inline(__always) static func derivative(_ x: Vec, beta: Float) -> Vec {
        let d = 1 + beta * abs(x)
        return 1 / (d * d)
    }
}
enum ArctanDerivative: Surrogate {
    @inline(__always) static func derivative(_ x: Vec, beta: Float) -> Vec {
        let y = (Float.pi * beta / 2) * x
        return (beta / 2) / (1 + y * y)
    }
}
enum PiecewiseLinearDerivative: Surrogate {
    @inline(__always) static func derivative(_ x: Vec, beta: Float) -> Vec {
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
    let detachReset: Bool

    init(width: Int, count: Int, tau: UnsafePointer<Float>?, scalarTau: Double, dt: Double, reset: ResetKind,
         surrogate: SurrogateKind, beta: Double, adaptTau: Double, adaptStrength: Double,
         detachReset: Bool = false) throws {
        self.width = width
        decay = try Scratch<Float>(width, what: "decays")
        decay.zero()
        var taus = [Double](repeating: scalarTau, count: count)
        if let tau { for j in 0..<count { taus[j] = Double(tau[j]) } }
        for j in 0..<count { decay.pointer[j] = Float(exp(-dt / taus[j])) }
        self.tau = taus
        self.reset = reset; self.surrogate = surrogate; self.beta = Float(beta)
        self.detachReset = detachReset
        if adaptTau > 0 {
            rho = Float(exp(-dt / adaptTau)); strength = Float(adaptStrength)
        } else {
            rho = 0; strength = 0
        }
    }

    /// dL/dtau_j = dL/da_j a_j dt / tau_j^2 from dL/da (float), for the first `count` units.
    func tauGradient(_ da: UnsafePointer<Float>, dt: Double, count: Int, into out: UnsafeMutablePointer<Float>) {
        for j in 0..<count {
            out[j] = Float(Double(da[j]) * exp(-dt / tau[j]) * dt / (tau[j] * tau[j]))
        }
    }

    /// One sample's forward pass: V, S, P, A (T x width). At each step n the spikes s_n are
    /// already settled (and listed in `spikes`, if given); `current(n, I)` writes the current
    /// I_n into the row I (n <= T-2), then one pass over the units advances v and b and settles
    /// s_{n+1} (from v_n with the delayed reset, from v_{n+1} otherwise). P_{T-1} is set to 0.
    /// Without adaptation (beta_a = 0) b is not kept: theta = 1 and A is not written.
    @inline(__always)
    func forward(steps T: Int, V: UnsafeMutablePointer<Float>, S: UnsafeMutablePointer<Float>,
                 P: UnsafeMutablePointer<Float>, A: UnsafeMutablePointer<Float>, I: UnsafeMutablePointer<Float>,
                 spikes: SpikeLists? = nil, tally: SpikeTally = SpikeTally(),
                 current: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let W = width, a = decay.pointer, adaptive = strength != 0
        let bitOfLane = laneBits  // a global: read once, not at every step
        tally.counts?.update(repeating: 0, count: W)
        tally.z?.update(repeating: 0, count: W)
        tally.y?.update(repeating: 0, count: W)
        V.update(repeating: 0, count: W)
        S.update(repeating: 0, count: W)   // s_0 = H(0 - 1) = 0 with every reset
        if adaptive { A.update(repeating: 0, count: W) }
        (P + (T - 1) * W).update(repeating: 0, count: W)
        var listed = 0
        spikes?.start[0] = 0
        spikes?.start[1] = 0
        for n in 0..<(T - 1) {
            current(n, I)
            var k = 0
            while k < W {
                let o = n * W + k
                let v = loadVec(V + o), s = loadVec(S + o)
                let b = adaptive ? loadVec(A + o) : Vec()
                let theta = adaptive ? 1 + strength * b : Vec(repeating: 1)
                let vNext: Vec
                if reset == .zero {
                    let p = loadVec(a + k) * v
                    storeVec(p, P + o)
                    vNext = p * (1 - s) + loadVec(I + k)
                } else {
                    let p = loadVec(a + k) * v + loadVec(I + k)
                    storeVec(p, P + o)
                    vNext = reset == .subtractive ? p - s * theta : p * (1 - s)
                }
                storeVec(vNext, V + o + W)
                let fire: SIMDMask<SIMD8<Int32>>
                if adaptive {
                    let bNext = rho * b + (1 - rho) * s
                    storeVec(bNext, A + o + W)
                    fire = reset == .delayed ? v .> theta : vNext .> 1 + strength * bNext
                } else {
                    fire = reset == .delayed ? v .> 1 : vNext .> 1
                }
                let q = Vec(repeating: 0).replacing(with: 1, where: fire)
                storeVec(q, S + o + W)
                if let counts = tally.counts { storeVec(loadVec(counts + k) + q, counts + k) }
                if let z = tally.z {
                    let d = tally.dropout.map { q * loadVec($0 + o + W) } ?? q
                    storeVec(loadVec(z + k).addingProduct(tally.zWeights![n + 1], d), z + k)
                    if let y = tally.y { storeVec(loadVec(y + k).addingProduct(tally.yWeights![n + 1], d), y + k) }
                }
                if let spikes, any(fire) {
                    // the units spiking at step n + 1 as a bitmask, visited lowest first
                    var bits = SIMD8<Int32>().replacing(with: bitOfLane, where: fire).wrappedSum()
                    while bits != 0 {
                        spikes.units[listed] = UInt16(truncatingIfNeeded: k + bits.trailingZeroBitCount)
                        listed += 1
                        bits &= bits - 1
                    }
                }
                k += lanes
            }
            spikes?.start[n + 2] = listed
        }
    }

    /// One sample's backward pass given ds (T x width, the direct gradient of the spikes).
    /// Writes gI (T x width) and adds dL/da to `ga` (width); gv, gb, gs are scratch rows. In a
    /// recurrent layer `feedback(n, gI_n, r)` writes r_n = gI_n Wrec^T (width) into r, which
    /// needs all of gI_n before the rest of step n: two passes per step instead of one.
    func backward(steps T: Int, V: UnsafePointer<Float>, S: UnsafePointer<Float>, P: UnsafePointer<Float>,
                  A: UnsafePointer<Float>, ds: UnsafePointer<Float>, gv: UnsafeMutablePointer<Float>,
                  gb: UnsafeMutablePointer<Float>, gs: UnsafeMutablePointer<Float>, ga: UnsafeMutablePointer<Float>,
                  gI: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>,
                  feedback: ((Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)? = nil) {
        switch surrogate {
        case .sigmoid:
            backward(SigmoidDerivative.self, T, V, S, P, A, ds, gv, gb, gs, ga, gI, r, feedback)
        case .fastSigmoid:
            backward(FastSigmoidDerivative.self, T, V, S, P, A, ds, gv, gb, gs, ga, gI, r, feedback)
        case .arctan:
            backward(ArctanDerivative.self, T, V, S, P, A, ds, gv, gb, gs, ga, gI, r, feedback)
        case .piecewiseLinear:
            backward(PiecewiseLinearDerivative.self, T, V, S, P, A, ds, gv, gb, gs, ga, gI, r, feedback)
        }
    }

    private func backward<F: Surrogate>(
        _: F.Type, _ T: Int, _ V: UnsafePointer<Float>, _ S: UnsafePointer<Float>, _ P: UnsafePointer<Float>,
        _ A: UnsafePointer<Float>, _ ds: UnsafePointer<Float>, _ gv: UnsafeMutablePointer<Float>,
        _ gb: UnsafeMutablePointer<Float>, _ gs: UnsafeMutablePointer<Float>, _ ga: UnsafeMutablePointer<Float>,
        _ gI: UnsafeMutablePointer<Float>, _ r: UnsafeMutablePointer<Float>,
        _ feedback: ((Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)?
    ) {
        let W = width, a = decay.pointer, adaptive = strength != 0
        let resetPath: Float = detachReset ? 0 : 1
        gv.update(repeating: 0, count: W); gb.update(repeating: 0, count: W); gs.update(repeating: 0, count: W)
        /// gI_n and dL/da from gv_{n+1}, lanes k ..< k + 8.
        @inline(__always) func current(_ o: Int, _ k: Int) {
            let gv1 = loadVec(gv + k), v = loadVec(V + o)
            if reset == .subtractive {
                storeVec(gv1, gI + o)
                storeVec(loadVec(ga + k) + gv1 * v, ga + k)
            } else {
                let keep = 1 - loadVec(S + o)
                storeVec(reset == .zero ? gv1 : gv1 * keep, gI + o)
                storeVec(loadVec(ga + k) + gv1 * v * keep, ga + k)
            }
        }
        /// gs_n, gv_n, gb_n from the step n + 1 values, lanes k ..< k + 8.
        @inline(__always) func state(_ o: Int, _ k: Int, _ d: Vec) {
            let v = loadVec(V + o), s = loadVec(S + o)
            let theta = adaptive ? 1 + strength * loadVec(A + o) : Vec(repeating: 1)
            let sg = F.derivative(v - theta, beta: beta)
            let gv1 = loadVec(gv + k), gs1 = loadVec(gs + k)
            let gb1 = adaptive ? loadVec(gb + k) : Vec()
            let gsn: Vec, gvn: Vec
            if reset == .subtractive {
                gsn = d - resetPath * gv1 * theta + gb1 * (1 - rho)
                gvn = gsn * sg + gv1 * loadVec(a + k)
                if adaptive { storeVec(-strength * (gsn * sg + resetPath * gv1 * s) + rho * gb1, gb + k) }
            } else {
                gsn = d - resetPath * gv1 * loadVec(P + o) + gb1 * (1 - rho)
                let through = reset == .delayed ? gs1 : gsn
                gvn = through * sg + gv1 * loadVec(a + k) * (1 - s)
                if adaptive { storeVec(-strength * through * sg + rho * gb1, gb + k) }
            }
            storeVec(gvn, gv + k); storeVec(gsn, gs + k)
        }
        var n = T - 1
        while n >= 0 {
            var k = 0
            if let feedback {
                while k < W { current(n * W + k, k); k += lanes }
                feedback(n, UnsafePointer(gI + n * W), r)
                k = 0
                while k < W { state(n * W + k, k, loadVec(ds + n * W + k) + loadVec(r + k)); k += lanes }
            } else {
                while k < W {
                    current(n * W + k, k)
                    state(n * W + k, k, loadVec(ds + n * W + k))
                    k += lanes
                }
            }
            n -= 1
        }
    }
}
