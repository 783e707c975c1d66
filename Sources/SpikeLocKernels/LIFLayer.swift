// One LIF layer of the general network (MODEL.md sections 4 and 7): every reset, surrogate,
// per-neuron decay, adaptive threshold and, optionally, recurrent weights. The hidden layers
// and the spiking output units of the general kernel (GeneralNetwork.swift) all run this.
//
// Per-neuron decay a, theta_n = 1 + beta_a b_n, v_0 = b_0 = 0, for n = 0 .. T-1:
//   delayed:      s_{n+1} = H(v_n - theta_n) (s_0 = 0),  v_{n+1} = (a v_n + I_n)(1 - s_n)
//   same-step:    s_n = H(v_n - theta_n),                 v_{n+1} = (a v_n + I_n)(1 - s_n)
//   subtractive:  s_n = H(v_n - theta_n),                 v_{n+1} = a v_n + I_n - s_n theta_n
//   b_{n+1} = rho b_n + (1 - rho) s_n                      (v, b updated for n <= T-2)
// The current I_n comes from the layer below and, in a recurrent layer, from s_n Wrec (the
// spike recorded at step n drives step n + 1), so each step first settles s_n, then asks for
// I_n, then updates v and b.
// Backward (sg_n = surr(v_n - theta_n), primes = step n+1, all zero at n = T; r_n = gI_n Wrec^T):
//   delayed:     gs_n = ds_n + r_n - gv' P_n + gb'(1 - rho); gv_n = gs' sg_n + gv' a (1 - s_n)
//                gb_n = -beta_a gs' sg_n + rho gb';    gI_n = gv'(1 - s_n); ga += gv' v_n (1 - s_n)
//   same-step:   as delayed with gs_n in place of gs' in gv_n and gb_n
//   subtractive: gs_n = ds_n + r_n - gv' theta_n + gb'(1 - rho); gv_n = gs_n sg_n + gv' a
//                gb_n = -beta_a (gs_n sg_n + gv' s_n) + rho gb'; gI_n = gv'; ga += gv' v_n
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
    /// settled first (and listed in `spikes`, if given), then `current(n, I)` writes the
    /// current I_n into the row I (n <= T-2), then v and b advance. P_{T-1} is set to 0.
    @inline(__always)
    func forward(steps T: Int, V: UnsafeMutablePointer<Float>, S: UnsafeMutablePointer<Float>,
                 P: UnsafeMutablePointer<Float>, A: UnsafeMutablePointer<Float>, I: UnsafeMutablePointer<Float>,
                 spikes: SpikeLists? = nil, current: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let W = width, a = decay.pointer
        V.update(repeating: 0, count: W)
        A.update(repeating: 0, count: W)
        if reset == .delayed { S.update(repeating: 0, count: W) }
        (P + (T - 1) * W).update(repeating: 0, count: W)
        var listed = 0
        spikes?.start[0] = 0
        for n in 0..<T {
            let last = n == T - 1
            var k = 0
            while k < W {
                let o = n * W + k
                let theta = 1 + strength * loadVec(A + o)
                let fire = loadVec(V + o) .> theta
                let q = Vec(repeating: 0).replacing(with: 1, where: fire)
                if reset == .delayed {
                    if !last { storeVec(q, S + o + W) }
                } else {
                    storeVec(q, S + o)
                }
                if let spikes {
                    // the units spiking at step n as a bitmask, visited lowest first
                    let s = reset == .delayed ? loadVec(S + o) .> 0 : fire
                    var bits = SIMD8<Int32>().replacing(with: laneBits, where: s).wrappedSum()
                    while bits != 0 {
                        spikes.units[listed] = UInt16(truncatingIfNeeded: k + bits.trailingZeroBitCount)
                        listed += 1
                        bits &= bits - 1
                    }
                }
                k += lanes
            }
            spikes?.start[n + 1] = listed
            if last { break }
            current(n, I)
            k = 0
            while k < W {
                let o = n * W + k
                let v = loadVec(V + o), b = loadVec(A + o), s = loadVec(S + o)
                let theta = 1 + strength * b
                let p = loadVec(a + k) * v + loadVec(I + k)
                storeVec(p, P + o)
                storeVec(reset == .subtractive ? p - s * theta : p * (1 - s), V + o + W)
                storeVec(rho * b + (1 - rho) * s, A + o + W)
                k += lanes
            }
        }
    }

    /// One sample's backward pass given ds (T x width, the direct gradient of the spikes).
    /// Writes gI (T x width) and adds dL/da to `ga` (width); gv, gb, gs are scratch rows. In a
    /// recurrent layer `feedback(n, gI_n, r)` writes r_n = gI_n Wrec^T (width) into r.
    @inline(__always)
    func backward(steps T: Int, V: UnsafePointer<Float>, S: UnsafePointer<Float>, P: UnsafePointer<Float>,
                  A: UnsafePointer<Float>, ds: UnsafePointer<Float>, gv: UnsafeMutablePointer<Float>,
                  gb: UnsafeMutablePointer<Float>, gs: UnsafeMutablePointer<Float>, ga: UnsafeMutablePointer<Float>,
                  gI: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>,
                  feedback: ((Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)? = nil) {
        let W = width, a = decay.pointer
        let resetPath: Float = detachReset ? 0 : 1
        gv.update(repeating: 0, count: W); gb.update(repeating: 0, count: W); gs.update(repeating: 0, count: W)
        var n = T - 1
        while n >= 0 {
            // gI_n depends on step n + 1 only; the feedback r_n needs all of it
            var k = 0
            while k < W {
                let o = n * W + k
                let gv1 = loadVec(gv + k), v = loadVec(V + o)
                if reset == .subtractive {
                    storeVec(gv1, gI + o)
                    storeVec(loadVec(ga + k) + gv1 * v, ga + k)
                } else {
                    let keep = 1 - loadVec(S + o)
                    storeVec(gv1 * keep, gI + o)
                    storeVec(loadVec(ga + k) + gv1 * v * keep, ga + k)
                }
                k += lanes
            }
            if let feedback { feedback(n, UnsafePointer(gI + n * W), r) }
            k = 0
            while k < W {
                let o = n * W + k
                let v = loadVec(V + o), s = loadVec(S + o)
                let theta = 1 + strength * loadVec(A + o)
                let sg = surrogateVec(v - theta, surrogate, beta: beta)
                let gv1 = loadVec(gv + k), gb1 = loadVec(gb + k), gs1 = loadVec(gs + k)
                var d = loadVec(ds + o)
                if feedback != nil { d += loadVec(r + k) }
                let gsn: Vec, gvn: Vec, gbn: Vec
                if reset == .subtractive {
                    gsn = d - resetPath * gv1 * theta + gb1 * (1 - rho)
                    gvn = gsn * sg + gv1 * loadVec(a + k)
                    gbn = -strength * (gsn * sg + resetPath * gv1 * s) + rho * gb1
                } else {
                    gsn = d - resetPath * gv1 * loadVec(P + o) + gb1 * (1 - rho)
                    let through = reset == .delayed ? gs1 : gsn
                    gvn = through * sg + gv1 * loadVec(a + k) * (1 - s)
                    gbn = -strength * through * sg + rho * gb1
                }
                storeVec(gvn, gv + k); storeVec(gbn, gb + k); storeVec(gsn, gs + k)
                k += lanes
            }
            n -= 1
        }
    }
}
