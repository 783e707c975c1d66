// The readout and loss heads of the general network (MODEL.md sections 2, 4, 5, 7), one home
// for the leaky readout of the research variants, the deep and recurrent networks and e-prop's
// BPTT view.
//
// Readout current J_n (from the top layer, or the inputs without hidden layers) plus a bias b.
// Membrane: R_0 = 0, R_m = a_o R_{m-1} + J_{m-lag} + b for m = 1 .. T_k - 1, read at the T
// recorded steps m = o .. o + T - 1:
//   seeds timing: lag 1, o = 0, T_k = T (R is u of MODEL.md section 2);
//   e-prop timing: lag 0, o = 1, T_k = T + 1 (the readout sees the spikes of its own step, as
//   y_n = kappa y_{n-1} + z_n W + b; the hidden spikes s_{n+1} are e-prop's z_n).
// Heads: the mean, 0.01 x sum or max of the recorded R with cross-entropy; the spike count of a
// LIF output layer driven by J + b (seeds timing) with cross-entropy; or the per-step loss
// (cross-entropy or 0.5 |R - onehot|^2) averaged over the last `window` recorded steps, whose
// logits are the mean of R over the window.
// Backward: dR from the head, gR_m = dR_m + a_o gR_{m+1}, dJ_{m-lag} = gR_m, db = sum gR_m,
// dL/da_o = sum_m gR_m R_{m-1} (m >= 1).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Head: Int32 {
    case mean = 0, sum = 1, max = 2, spikeCount = 3, window = 4
}

public enum WindowLoss: Int32 {
    case crossEntropy = 0, mse = 1
}

public enum Timing: Int32 {
    case seeds = 0, eprop = 1
}

/// Per-worker memory of the readout: R, dR and dJ (kernel steps x Cp; dJ with `padding` more
/// zero rows for lagged reads), one current row, and the output layer of the spike count.
final class ReadoutBuffers {
    let R: Scratch<Float>, dR: Scratch<Float>, dJ: Scratch<Float>, J: Scratch<Float>
    let logits: Scratch<Double>
    let spiking: LayerBuffers?

    init(steps: Int, stride Cp: Int, padding: Int, spiking: Bool) throws {
        let size = try checkedProduct(steps, Cp, what: "workspace")
        R = try Scratch(size, what: "workspace"); dR = try Scratch(size, what: "workspace")
        dJ = try Scratch(try checkedProduct(steps + padding, Cp, what: "workspace"), what: "workspace")
        dJ.zero()
        J = try Scratch(Cp, what: "workspace")
        logits = try Scratch(Cp, what: "workspace")
        self.spiking = spiking ? try LayerBuffers(steps: steps, width: Cp) : nil
    }
}

struct ReadoutHead {
    let head: Head, timing: Timing
    let window: Int, windowLoss: WindowLoss
    let classes: Int, stride: Int
    /// Data steps T and kernel steps T_k.
    let steps: Int, kernelSteps: Int
    /// The readout's decay (and the spiking output units of the spike count).
    let output: LIFParams
    let bias: PaddedWeights?
    /// Linear heads (mean and sum, one decay for all classes): the logits are linear in the
    /// currents, m = sum_n profile[n] J_n + (sum_n profile[n]) b, so dJ_n = profile[n] dm (the
    /// gradient is rank one in time) and sum_m gR_m R_{m-1} = dm (sum_n decayProfile[n] J_n +
    /// (sum_n decayProfile[n]) b). With rho_m = w_m + a_o rho_{m+1} (w_m the head's weight of
    /// R_m: 1/T or 0.01 at the recorded steps) and sigma_m = rho_{m+1} + a_o sigma_{m+1}:
    /// profile[m - lag] = rho_m, decayProfile[m - lag] = sigma_m (m >= 1), in double. The
    /// kernel then needs neither J_n nor R during training: per hidden unit the weighted spike
    /// counts z_j = sum_n profile[n] s_nj and y_j = sum_n decayProfile[n] s_nj suffice.
    let profile: Scratch<Float>?, decayProfile: Scratch<Float>?
    /// sum_n profile[n] and sum_n decayProfile[n] (the bias's weights).
    let profileSum: Float, decayProfileSum: Float

    var lag: Int { timing == .seeds ? 1 : 0 }
    var offset: Int { timing == .seeds ? 0 : 1 }
    var linear: Bool { profile != nil }

    init(head: Head, timing: Timing, window: Int, windowLoss: WindowLoss, classes: Int, stride: Int, steps: Int,
         kernelSteps: Int, output: LIFParams, bias: PaddedWeights?) throws {
        self.head = head; self.timing = timing; self.window = window; self.windowLoss = windowLoss
        self.classes = classes; self.stride = stride; self.steps = steps; self.kernelSteps = kernelSteps
        self.output = output; self.bias = bias
        let a = output.decay.pointer
        let uniform = (0..<classes).allSatisfy { a[$0] == a[0] }
        guard uniform, head == .mean || head == .sum else {
            profile = nil; decayProfile = nil; profileSum = 0; decayProfileSum = 0
            return
        }
        let weight = head == .mean ? 1 / Double(steps) : 0.01, o = timing == .seeds ? 0 : 1
        let lag = timing == .seeds ? 1 : 0, decay = Double(a[0])
        let p = try Scratch<Float>(kernelSteps, what: "readout profile")
        let q = try Scratch<Float>(kernelSteps, what: "readout profile")
        p.zero(); q.zero()
        var rho = 0.0, sigma = 0.0, sums = (0.0, 0.0)
        var m = kernelSteps - 1
        while m >= 1 {
            sigma = rho + decay * sigma  // sigma_m from rho_{m+1}
            rho = (m >= o && m < o + steps ? weight : 0) + decay * rho
            p.pointer[m - lag] = Float(rho); q.pointer[m - lag] = Float(sigma)
            sums.0 += Double(p.pointer[m - lag]); sums.1 += Double(q.pointer[m - lag])
            m -= 1
        }
        profile = p; decayProfile = q
        profileSum = Float(sums.0); decayProfileSum = Float(sums.1)
    }

    /// Logits of a linear head from jz = sum_n profile[n] J_n (Cp lanes): m = jz + b sum(profile).
    func linearLogits(_ jz: UnsafePointer<Float>, m: UnsafeMutablePointer<Double>) {
        for c in 0..<classes { m[c] = Double(jz[c] + (bias.map { $0.pointer[c] * profileSum } ?? 0)) }
    }

    /// Backward pass of a linear head: the loss, dm, and dL/db, dL/da_o from jy =
    /// sum_n decayProfile[n] J_n (Cp lanes).
    func linearBackward(label: Int, batch: Int, m: UnsafePointer<Double>, dm: UnsafeMutablePointer<Float>,
                        jy: UnsafePointer<Float>, gradBias: UnsafeMutablePointer<Float>,
                        gradDecay: UnsafeMutablePointer<Float>) -> Double {
        let loss = crossEntropy(m, classes: classes, label: label, scale: 1 / Double(batch), dm: dm)
        var c = 0
        while c < stride {
            let g = loadVec(dm + c)
            var r = loadVec(jy + c)
            if let bias { r += decayProfileSum * loadVec(bias.pointer + c) }
            storeVec(loadVec(gradDecay + c) + g * r, gradDecay + c)
            if bias != nil { storeVec(loadVec(gradBias + c) + profileSum * g, gradBias + c) }
            c += lanes
        }
        return loss
    }

    /// Forward pass of one sample: `current(n, J)` writes J_n (without the bias) into J.
    /// Writes the logits (double, C) into `m` and keeps R (or the output layer) in `b`; for the
    /// max head the kernel step of each class's first maximum goes into `argmax`.
    @inline(__always)
    func forward(_ b: ReadoutBuffers, m: UnsafeMutablePointer<Double>, argmax: UnsafeMutablePointer<Float>,
                 current: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let Cp = stride, C = classes, T = steps, Tk = kernelSteps, o = offset
        if let spiking = b.spiking {
            output.forward(steps: Tk, V: spiking.V.pointer, S: spiking.S.pointer, P: spiking.P.pointer,
                           A: spiking.A.pointer, I: spiking.current) { n, I in
                current(n, I)
                if let bias { addVec(bias.pointer, into: I, width: Cp) }
            }
            for c in 0..<C {
                var count = 0.0
                for n in 0..<Tk { count += Double(spiking.S.pointer[n * Cp + c]) }
                m[c] = count
            }
            return
        }
        let R = b.R.pointer, a = output.decay.pointer, J = b.J.pointer
        R.update(repeating: 0, count: Cp)
        for r in 1..<Swift.max(Tk, 1) {
            current(r - lag, J)
            if let bias { addVec(bias.pointer, into: J, width: Cp) }
            var c = 0
            while c < Cp {
                storeVec(loadVec(a + c) * loadVec(R + (r - 1) * Cp + c) + loadVec(J + c), R + r * Cp + c)
                c += lanes
            }
        }
        switch head {
        case .mean, .sum:
            for c in 0..<C {
                var total = 0.0
                for n in o..<(o + T) { total += Double(R[n * Cp + c]) }
                m[c] = head == .mean ? total / Double(T) : 0.01 * total
            }
        case .max:
            for c in 0..<C {
                var best = R[o * Cp + c], at = o
                for n in (o + 1)..<(o + T) where R[n * Cp + c] > best { best = R[n * Cp + c]; at = n }
                m[c] = Double(best); argmax[c] = Float(at)
            }
        case .window:
            for c in 0..<C {
                var total = 0.0
                for n in (o + T - window)..<(o + T) { total += Double(R[n * Cp + c]) }
                m[c] = total / Double(window)
            }
        case .spikeCount:
            break  // handled above
        }
    }

    /// Backward pass of the sample just run forward: writes dJ (kernel steps x Cp, zero where
    /// J is not read) into `b.dJ`, adds dL/db to `gradBias` and dL/da_o to `gradDecay`, and
    /// returns the sample's loss (cross-entropy terms scaled by 1 / batch in the gradients).
    @inline(__always)
    func backward(_ b: ReadoutBuffers, label: Int, batch: Int, m: UnsafePointer<Double>,
                  dm: UnsafeMutablePointer<Float>, argmax: UnsafePointer<Float>,
                  gradBias: UnsafeMutablePointer<Float>, gradDecay: UnsafeMutablePointer<Float>) -> Double {
        let Cp = stride, C = classes, T = steps, Tk = kernelSteps, o = offset
        let dJ = b.dJ.pointer, dR = b.dR.pointer
        if let spiking = b.spiking {
            // m_c = sum_n s^o_{n,c}: every output spike gets dm
            let loss = crossEntropy(m, classes: C, label: label, scale: 1 / Double(batch), dm: dm)
            for n in 0..<Tk { (spiking.ds.pointer + n * Cp).update(from: dm, count: Cp) }
            output.backward(steps: Tk, V: spiking.V.pointer, S: spiking.S.pointer, P: spiking.P.pointer,
                            A: spiking.A.pointer, ds: spiking.ds.pointer, gv: spiking.gv, gb: spiking.gb,
                            gs: spiking.gs, ga: gradDecay, gI: dJ, r: spiking.feedback)
            if bias != nil { for n in 0..<(Tk - 1) { addVec(dJ + n * Cp, into: gradBias, width: Cp) } }
            return loss
        }
        dR.update(repeating: 0, count: Tk * Cp)
        var loss = 0.0
        switch head {
        case .mean, .sum, .max:
            loss = crossEntropy(m, classes: C, label: label, scale: 1 / Double(batch), dm: dm)
            var c = 0
            while c < Cp {
                let g = loadVec(dm + c)
                if head == .max {
                    let peak = loadVec(argmax + c)
                    for n in o..<(o + T) { storeVec(Vec().replacing(with: g, where: peak .== Float(n)), dR + n * Cp + c) }
                } else {
                    let constant: Vec = head == .mean ? g / Float(T) : 0.01 * g
                    for n in o..<(o + T) { storeVec(constant, dR + n * Cp + c) }
                }
                c += lanes
            }
        case .window:
            let R = b.R.pointer, row = b.logits.pointer
            let scale = 1 / (Double(window) * Double(batch))
            for n in (o + T - window)..<(o + T) {
                if windowLoss == .crossEntropy {
                    for c in 0..<C { row[c] = Double(R[n * Cp + c]) }
                    loss += crossEntropy(row, classes: C, label: label, scale: scale, dm: dR + n * Cp) / Double(window)
                } else {
                    var step = 0.0
                    for c in 0..<C {
                        let error = Double(R[n * Cp + c]) - (c == label ? 1 : 0)
                        step += 0.5 * error * error
                        dR[n * Cp + c] = Float(error * scale)
                    }
                    loss += step / Double(window)
                }
            }
        case .spikeCount:
            break
        }
        // gR_m = dR_m + a_o gR_{m+1}; dJ_{m-lag} = gR_m; db += gR_m; da_o += gR_m R_{m-1}
        let R = b.R.pointer, a = output.decay.pointer
        (dJ + (Tk - 1) * Cp).update(repeating: 0, count: Cp)
        dJ.update(repeating: 0, count: Cp)
        var c = 0
        while c < Cp {
            let decay = loadVec(a + c)
            var g = loadVec(dR + (Tk - 1) * Cp + c), gaSum = Vec(), gbSum = Vec()
            var r = Tk - 1
            while r >= 1 {
                storeVec(g, dJ + (r - lag) * Cp + c)
                gaSum = gaSum.addingProduct(g, loadVec(R + (r - 1) * Cp + c))
                gbSum += g
                g = loadVec(dR + (r - 1) * Cp + c) + decay * g
                r -= 1
            }
            storeVec(loadVec(gradDecay + c) + gaSum, gradDecay + c)
            if bias != nil { storeVec(loadVec(gradBias + c) + gbSum, gradBias + c) }
            c += lanes
        }
        return loss
    }
}

/// out[0 ..< width] += v[0 ..< width] (width a multiple of 8).
@inline(__always) func addVec(_ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, width: Int) {
    var k = 0
    while k < width { storeVec(loadVec(out + k) + loadVec(v + k), out + k); k += lanes }
}
