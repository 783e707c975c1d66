// e-prop (MODEL.md section 5; Bellec et al. 2020): a recurrent LIF layer with a leaky readout,
// trained online with eligibility traces and a broadcast learning signal.
//
// Per sample, steps n = 0 ..< T (MODEL's t = n + 1), all state 0 before step 0:
//   v_n   = alpha v_{n-1} + x_n Win + z_{n-1} Wrec - v_th z_{n-1}       (reset by subtraction)
//   z_n   = H(v_n - v_th),  psi_n = (gamma / v_th) max(0, 1 - |v_n - v_th| / v_th)
//   y_n   = kappa y_{n-1} + z_n Wout + b
//   xbar_n = alpha xbar_{n-1} + x_n,  zbar_n = alpha zbar_{n-1} + z_n   (presynaptic traces)
//   ebar_in[i, j]  = kappa ebar_in[i, j]  + psi_nj xbar_ni
//   ebar_rec[i, j] = kappa ebar_rec[i, j] + psi_nj zbar_{n-1, i}
// In the learning window (the last `window` steps), with err_n = (softmax(y_n) - onehot) or
// (y_n - onehot), divided by window * batch:
//   L_n = feedback err_n,  dW += L_n * ebar (per column j),  dWout[j, k] += zout_nj err_nk,
//   db += bbar_n err_n, with zout = kappa zout + z and bbar = kappa bbar + 1.
// Firing-rate regulariser 0.5 reg_c mean_j (f_j - f_target)^2, f_j = spikes / (T dt) [Hz]: after
// the sample, dW += reg_c (f_j - f_target) / (N_h T dt batch) * E with E = sum_n e_n.
//
// Weights are stored [presynaptic, postsynaptic] (Win: N_in x N_h, Wrec: N_h x N_h,
// Wout: N_h x C, feedback: N_h x C). Memory per sample does not depend on T: the traces are
// matrices of the weights' shapes, plus a few vectors per step of a block of at most
// `EPropKernel.maxBlock` steps. The forward pass runs step by step; the traces and gradients
// are advanced once per block (see `blockBackward`, `flushInputs`, `flushRecurrent`,
// `flushReadout`): exactly the recursions above, summed over the block with backward
// recursions inside it, with work per presynaptic spike instead of per synapse and step (one
// row addition for the gradient, one more for the trace except in the last block). Rows of
// the traces whose presynaptic unit has not spiked yet are zero and skipped. Samples run in
// fixed chunks of `chunkSize`, each into its own gradient partial; partials are summed in
// chunk order, so the result is bit-identical for any number of threads.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum EPropLoss: Int32 {
    case crossEntropy = 0, mse = 1
}

public struct EPropConfig {
    public var nIn: Int, nHidden: Int, nOut: Int, steps: Int, window: Int
    public var dt: Double, tauM: Double, tauOut: Double, vTh: Double, gamma: Double
    public var regC: Double, fTarget: Double
    public var loss: EPropLoss
    public var recurrent: Bool

    public init(nIn: Int, nHidden: Int, nOut: Int, steps: Int, window: Int, dt: Double, tauM: Double,
                tauOut: Double, vTh: Double, gamma: Double, regC: Double = 0, fTarget: Double = 10,
                loss: EPropLoss = .crossEntropy, recurrent: Bool = true) {
        self.nIn = nIn; self.nHidden = nHidden; self.nOut = nOut; self.steps = steps; self.window = window
        self.dt = dt; self.tauM = tauM; self.tauOut = tauOut; self.vTh = vTh; self.gamma = gamma
        self.regC = regC; self.fTarget = fTarget; self.loss = loss; self.recurrent = recurrent
    }

    func validate() throws {
        try requireCount(nIn, "n_in", max: EventData.maxInputs)
        try requireCount(nHidden, "n_hidden", max: 1 << 16)
        try requireCount(nOut, "n_out", max: 1 << 16)
        try requireCount(steps, "steps", max: EventData.maxSteps)
        try requireCount(window, "window", max: steps)
        try requirePositiveFinite(dt, "dt")
        try requirePositiveFinite(tauM, "tau_m")
        try requirePositiveFinite(tauOut, "tau_out")
        try requirePositiveFinite(vTh, "v_th")
        try require(gamma.isFinite && gamma >= 0, "gamma must be finite and >= 0, got \(gamma)")
        try require(regC.isFinite && regC >= 0, "reg_c must be finite and >= 0, got \(regC)")
        try require(fTarget.isFinite, "f_target must be finite, got \(fTarget)")
        _ = try checkedProduct(nIn + nHidden, roundUp(nHidden, lanes), 4, what: "eligibility traces")
    }

    func checkData(_ data: EventData) throws {
        try require(data.steps == steps, "events have \(data.steps) steps, the network expects \(steps)")
        try require(data.nIn == nIn, "events have \(data.nIn) inputs, the network expects n_in = \(nIn)")
    }
}

/// The network's arrays (caller's memory, float32, finite).
public struct EPropWeights {
    public var wIn: UnsafePointer<Float>, wRec: UnsafePointer<Float>?, wOut: UnsafePointer<Float>
    public var b: UnsafePointer<Float>, feedback: UnsafePointer<Float>?
    public init(wIn: UnsafePointer<Float>, wRec: UnsafePointer<Float>?, wOut: UnsafePointer<Float>,
                b: UnsafePointer<Float>, feedback: UnsafePointer<Float>?) {
        self.wIn = wIn; self.wRec = wRec; self.wOut = wOut; self.b = b; self.feedback = feedback
    }
}

/// Optional per-step recordings of a forward pass (batch x T x N_h, or batch x T x C).
public struct EPropRecordings {
    public var voltage: UnsafeMutablePointer<Float>?, spikes: UnsafeMutablePointer<UInt8>?
    public var psi: UnsafeMutablePointer<Float>?, learningSignal: UnsafeMutablePointer<Float>?
    public var readout: UnsafeMutablePointer<Float>?
    public init(voltage: UnsafeMutablePointer<Float>? = nil, spikes: UnsafeMutablePointer<UInt8>? = nil,
                psi: UnsafeMutablePointer<Float>? = nil, learningSignal: UnsafeMutablePointer<Float>? = nil,
                readout: UnsafeMutablePointer<Float>? = nil) {
        self.voltage = voltage; self.spikes = spikes; self.psi = psi
        self.learningSignal = learningSignal; self.readout = readout
    }
    var any: Bool { voltage != nil || spikes != nil || psi != nil || learningSignal != nil || readout != nil }
}

/// Per-worker state of one sample: vectors, the presynaptic traces and the eligibility traces.
final class EPropWorkspace {
    let v: Scratch<Float>, z: Scratch<Float>, current: Scratch<Float>, psi: Scratch<Float>
    let signal: Scratch<Float>, zbar: Scratch<Float>, zout: Scratch<Float>, count: Scratch<Float>
    let xbar: Scratch<Float>, y: Scratch<Float>, err: Scratch<Float>, temp: Scratch<Float>
    let ySum: Scratch<Double>
    let spikeList: Scratch<UInt16>
    let ebarIn: Scratch<Float>, ebarRec: Scratch<Float>?, sumIn: Scratch<Float>?, sumRec: Scratch<Float>?
    let activeIn: Scratch<Int32>, activeRec: Scratch<Int32>, flagIn: Scratch<UInt8>, flagRec: Scratch<UInt8>
    // block-wise eligibility (see EPropKernel.blockBackward): rows u = 1 ... K of a block hold
    // psi^u and L^u during the forward steps, then (backward recursions, in place) F^u and
    // G^u, with the virtual rows F^0, G^0 at u = 0; Q (the regulariser's rows), S2 = kappa
    // Lbar^1, and the cursor of every input into its event list
    let psiBlock: Scratch<Float>, signalBlock: Scratch<Float>, regBlock: Scratch<Float>, blockS2: Scratch<Float>
    let cursor: Scratch<Int>
    // readout gradient per block: errors, spike lists and spike counts of the block's steps,
    // the backward-filtered errors R and E0
    let errBlock: Scratch<Float>, spikesBlock: Scratch<UInt16>, spikeCounts: Scratch<Int>
    let readoutR: Scratch<Float>, readoutE0: Scratch<Float>
    // recurrent rows per block: carried spikes of the previous block's last step, and each
    // unit's events (block steps r) in the block
    let carry: Scratch<UInt16>, recEventCount: Scratch<Int>, recEvents: Scratch<UInt16>
    var carryCount = 0

    init(_ c: EPropConfig, gradient: Bool, block K: Int) throws {
        let Hp = roundUp(c.nHidden, lanes), Cp = roundUp(c.nOut, lanes), Ip = roundUp(c.nIn, lanes)
        func vec(_ n: Int) throws -> Scratch<Float> { try Scratch<Float>(n, what: "e-prop workspace") }
        v = try vec(Hp); z = try vec(Hp); current = try vec(Hp); psi = try vec(Hp)
        signal = try vec(Hp); zbar = try vec(Hp); zout = try vec(Hp); count = try vec(Hp)
        xbar = try vec(Ip); y = try vec(Cp); err = try vec(Cp); temp = try vec(Cp)
        ySum = try Scratch<Double>(Cp, what: "e-prop workspace")
        spikeList = try Scratch<UInt16>(Hp, what: "e-prop workspace")
        let traceIn = try checkedProduct(gradient ? c.nIn : 0, Hp, what: "eligibility traces")
        let traceRec = try checkedProduct(gradient && c.recurrent ? c.nHidden : 0, Hp, what: "eligibility traces")
        ebarIn = try vec(traceIn)
        ebarRec = traceRec > 0 ? try vec(traceRec) : nil
        let reg = gradient && c.regC > 0
        sumIn = reg ? try vec(traceIn) : nil
        sumRec = reg && traceRec > 0 ? try vec(traceRec) : nil
        activeIn = try Scratch<Int32>(c.nIn, what: "e-prop workspace")
        activeRec = try Scratch<Int32>(c.nHidden, what: "e-prop workspace")
        flagIn = try Scratch<UInt8>(c.nIn, what: "e-prop workspace")
        flagRec = try Scratch<UInt8>(c.nHidden, what: "e-prop workspace")
        let kb = gradient ? K : 0
        psiBlock = try vec((kb + 1) * Hp); signalBlock = try vec((kb + 1) * Hp)
        regBlock = try vec(reg ? (kb + 1) * Hp : 0); blockS2 = try vec(Hp)
        cursor = try Scratch<Int>(gradient ? c.nIn : 0, what: "e-prop workspace")
        errBlock = try vec(kb * Cp); readoutR = try vec(kb * Cp); readoutE0 = try vec(Cp)
        spikesBlock = try Scratch<UInt16>(kb * Hp, what: "e-prop workspace")
        spikeCounts = try Scratch<Int>(kb, what: "e-prop workspace")
        carry = try Scratch<UInt16>(Hp, what: "e-prop workspace")
        recEventCount = try Scratch<Int>(c.nHidden, what: "e-prop workspace")
        recEvents = try Scratch<UInt16>(try checkedProduct(c.nHidden, kb, what: "e-prop workspace"), what: "e-prop workspace")
        err.zero(); temp.zero()
    }
}

/// Pointers of one sample's gradient partials (rows x padded columns).
struct EPropPartials {
    var wIn: UnsafeMutablePointer<Float>, wRec: UnsafeMutablePointer<Float>?
    var wOut: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
}

struct EPropKernel {
    let config: EPropConfig
    let data: EventData
    let wIn: PaddedWeights      // N_in x Hp
    let wRec: PaddedWeights?    // N_h x Hp
    let wOut: PaddedWeights     // N_h x Cp
    let b: PaddedWeights        // 1 x Cp
    let feedbackT: PaddedWeights?  // C x Hp (feedback transposed)
    let alpha: Float, kappa: Float, vTh: Float, psiScale: Float
    /// Steps per block of the eligibility traces (at most `maxBlock`, the blocks of a sample as
    /// even as possible), and the powers alpha^u, kappa^u (u = 0 ... block; values below the
    /// smallest normal float are 0, so that no subnormal enters the vector loops).
    let block: Int
    let powers: Scratch<Float>   // 2 rows of block + 1: alpha^u, kappa^u
    /// 0 for the C classes, -1e30 for the padding lanes up to Cp (the softmax's mask)
    let classPad: Scratch<Float>
    /// Longest block: its per-step rows (2 x (block + 1) x Hp floats) are the only memory that
    /// grows with T, up to T = maxBlock.
    static let maxBlock = 128
    var T: Int { config.steps }
    var Hp: Int { wIn.stride }
    var Cp: Int { wOut.stride }

    init(_ config: EPropConfig, _ data: EventData, _ w: EPropWeights) throws {
        self.config = config; self.data = data
        let H = config.nHidden, C = config.nOut
        wIn = try PaddedWeights(w.wIn, rows: config.nIn, cols: H, name: "w_in")
        if config.recurrent {
            wRec = try PaddedWeights(try unwrap(w.wRec, "w_rec"), rows: H, cols: H, name: "w_rec")
        } else {
            wRec = nil
        }
        wOut = try PaddedWeights(w.wOut, rows: H, cols: C, name: "w_out")
        b = try PaddedWeights(w.b, rows: 1, cols: C, name: "b")
        feedbackT = try w.feedback.map { try PaddedWeights($0, rows: H, cols: C, name: "feedback", transpose: true) }
        alpha = Float(exp(-config.dt / config.tauM))
        kappa = Float(exp(-config.dt / config.tauOut))
        vTh = Float(config.vTh)
        psiScale = Float(config.gamma / config.vTh)
        let blocks = (config.steps + EPropKernel.maxBlock - 1) / EPropKernel.maxBlock
        block = Swift.max(1, (config.steps + blocks - 1) / blocks)
        powers = try Scratch<Float>(2 * (block + 1), what: "e-prop powers")
        let a = exp(-config.dt / config.tauM), k = exp(-config.dt / config.tauOut)
        classPad = try Scratch<Float>(roundUp(C, lanes), what: "e-prop workspace")
        for c in 0..<roundUp(C, lanes) { classPad.pointer[c] = c < C ? 0 : -1e30 }
        func normal(_ x: Double) -> Float { x < Double(Float.leastNormalMagnitude) ? 0 : Float(x) }
        for u in 0...block {
            powers.pointer[u] = normal(pow(a, Double(u)))
            powers.pointer[(block + 1) + u] = normal(pow(k, Double(u)))
        }
    }

    func workspace(gradient: Bool) throws -> EPropWorkspace {
        try EPropWorkspace(config, gradient: gradient, block: block)
    }

    /// Runs sample `s` (batch slot `slot`). With `label`, returns the sample's loss divided by
    /// `batch` (learning-signal and loss terms use the batch mean); with `partials`, adds the
    /// sample's e-prop gradients to them; with recordings, writes them at slot `slot`.
    /// Writes the logits (mean readout over the window) into ws.ySum (Cp doubles).
    func run(sample s: Int, slot: Int, label: Int?, batch: Int, _ ws: EPropWorkspace,
             partials: EPropPartials?, rec: EPropRecordings) -> Double {
        let T = self.T, Hp = self.Hp, Cp = self.Cp, H = config.nHidden, C = config.nOut, nIn = config.nIn
        let window = config.window, firstWindowStep = T - window
        let gradient = partials != nil
        let scale = Float(1 / (Double(window) * Double(batch)))
        let v = ws.v.pointer, z = ws.z.pointer, I = ws.current.pointer, psi = ws.psi.pointer
        let L = ws.signal.pointer, zbar = ws.zbar.pointer, zout = ws.zout.pointer, count = ws.count.pointer
        let xbar = ws.xbar.pointer, y = ws.y.pointer, err = ws.err.pointer, J = ws.temp.pointer
        let ySum = ws.ySum.pointer, list = ws.spikeList.pointer
        for p in [v, z, I, psi, L, zbar, zout, count] { p.update(repeating: 0, count: Hp) }
        xbar.update(repeating: 0, count: roundUp(nIn, lanes))
        y.update(repeating: 0, count: Cp)
        ySum.update(repeating: 0, count: Cp)
        let ebarIn = ws.ebarIn.pointer
        let sumIn = ws.sumIn?.pointer, sumRec = ws.sumRec?.pointer
        let activeIn = ws.activeIn.pointer, activeRec = ws.activeRec.pointer
        let flagIn = ws.flagIn.pointer, flagRec = ws.flagRec.pointer
        var nActiveIn = 0, nActiveRec = 0
        if gradient {
            flagIn.update(repeating: 0, count: nIn)
            flagRec.update(repeating: 0, count: H)
            for i in 0..<nIn { ws.cursor.pointer[i] = Int(data.inputPtr[s * nIn + i]) }
            ws.carryCount = 0
        }
        var blockStart = 0, blockLearns = false
        var spikes = 0  // length of `list`: the units that spiked at the previous step
        var bbar: Float = 0
        var loss = 0.0
        let stepBase = s * T
        let feedback = feedbackT?.pointer
        let wantSignal = rec.learningSignal != nil || gradient
        // raw pointers for the step loop (no reference counting inside it)
        let wInP = wIn.pointer, wRecP = wRec?.pointer, wOutP = wOut.pointer, bP = b.pointer
        let alpha = self.alpha, kappa = self.kappa, vTh = self.vTh, psiScale = self.psiScale
        let invVTh = 1 / vTh
        let bitOfLane = laneBits  // a local: the global's lazy-initialisation check stays out of the loop
        let psiBlock = ws.psiBlock.pointer, signalBlock = ws.signalBlock.pointer

        for n in 0..<T {
            // with gradients, psi and L go straight into row u + 1 of the block (u = n - blockStart)
            let psiRow = gradient ? psiBlock + (n - blockStart + 1) * Hp : psi
            let signalRow = gradient ? signalBlock + (n - blockStart + 1) * Hp : L
            // input current x_n Win + z_{n-1} Wrec (event sums)
            let first = Int(data.stepPtr[stepBase + n]), last = Int(data.stepPtr[stepBase + n + 1])
            // (I is 0 here: zeroed at the start and by the membrane loop that consumed it)
            addRows(data.stepEvents + first, last - first, from: wInP, stride: Hp, into: I, width: Hp)
            if let wRecP, spikes > 0 {
                addRows(UnsafePointer(list), spikes, from: wRecP, stride: Hp, into: I, width: Hp)
            }
            // membrane, spikes, pseudo-derivative (padding lanes: v = 0 < v_th, psi = 0)
            spikes = 0
            var k = 0
            while k < Hp {
                let vv = alpha * loadVec(v + k) + loadVec(I + k) - vTh * loadVec(z + k)
                storeVec(Vec(), I + k)
                let fire = vv .> vTh
                let zz = Vec(repeating: 0).replacing(with: 1, where: fire)
                let dist = abs(vv - vTh) * invVTh
                let ps = psiScale * (Vec(repeating: 1) - dist).replacing(with: 0, where: dist .> 1)
                storeVec(vv, v + k); storeVec(zz, z + k); storeVec(ps, psiRow + k)
                if any(fire) {  // most tiles have no spike
                    storeVec(loadVec(count + k) + zz, count + k)
                    var bits = SIMD8<Int32>().replacing(with: bitOfLane, where: fire).wrappedSum()
                    while bits != 0 {
                        list[spikes] = UInt16(truncatingIfNeeded: k + bits.trailingZeroBitCount)
                        spikes += 1
                        bits &= bits - 1
                    }
                }
                k += lanes
            }
            // readout y_n = kappa y_{n-1} + z_n Wout + b
            if spikes > 0 { addRows(UnsafePointer(list), spikes, from: wOutP, stride: Cp, into: J, width: Cp) }
            var c = 0
            while c < Cp {
                storeVec(kappa * loadVec(y + c) + loadVec(J + c) + loadVec(bP + c), y + c)
                storeVec(Vec(), J + c)  // J is 0 again for the next step
                c += lanes
            }
            let inWindow = n >= firstWindowStep
            if inWindow {
                for c in 0..<C { ySum[c] += Double(y[c]) }
                if let label {
                    loss += stepLoss(y: y, label: label, err: err, scale: scale)
                    if let feedback, wantSignal {
                        // L_j = sum_k feedback[j, k] err_k, four tiles at a time (independent chains)
                        var k = 0
                        while k + 32 <= Hp {
                            var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
                            for c in 0..<C {
                                let e = err[c], f = feedback + c * Hp + k
                                a0 = a0.addingProduct(e, loadVec(f)); a1 = a1.addingProduct(e, loadVec(f + 8))
                                a2 = a2.addingProduct(e, loadVec(f + 16)); a3 = a3.addingProduct(e, loadVec(f + 24))
                            }
                            storeVec(a0, signalRow + k); storeVec(a1, signalRow + k + 8)
                            storeVec(a2, signalRow + k + 16); storeVec(a3, signalRow + k + 24)
                            k += 32
                        }
                        while k < Hp {
                            var acc = Vec()
                            for c in 0..<C { acc = acc.addingProduct(err[c], loadVec(feedback + c * Hp + k)) }
                            storeVec(acc, signalRow + k)
                            k += lanes
                        }
                    }
                }
            }
            if rec.any {
                record(n: n, slot: slot, ws, psi: psiRow, signal: signalRow, inWindow: inWindow && label != nil, rec)
            }
            guard let partials else {
                continue
            }
            // inputs spiking for the first time join the active rows (xbar = 0 before)
            for e in first..<(nActiveIn < nIn ? last : first) {
                let input = Int(data.stepEvents[e])
                if flagIn[input] == 0 {
                    flagIn[input] = 1
                    activeIn[nActiveIn] = Int32(input)
                    nActiveIn += 1
                    // (with one block, the traces are neither read nor written: see blockRow)
                    if T > block { (ebarIn + input * Hp).update(repeating: 0, count: Hp) }
                    if let sumIn { (sumIn + input * Hp).update(repeating: 0, count: Hp) }
                }
            }
            let learn = inWindow && label != nil
            // psi and L of this step are in the block; the block is flushed into the eligibility
            // traces (and the gradient) after `block` steps and at the end
            let u = n - blockStart
            (ws.spikesBlock.pointer + u * Hp).update(from: list, count: spikes)
            ws.spikeCounts.pointer[u] = spikes
            if learn {
                (ws.errBlock.pointer + u * Cp).update(from: err, count: Cp)
                blockLearns = true
            } else {
                signalRow.update(repeating: 0, count: Hp)
                (ws.errBlock.pointer + u * Cp).update(repeating: 0, count: Cp)
            }
            if u + 1 == block || n == T - 1 {
                let final = n == T - 1  // the traces after the last block are not needed
                blockBackward(length: u + 1, learns: blockLearns, final: final, ws)
                flushInputs(sample: s, start: blockStart, length: u + 1, learns: blockLearns, final: final, ws,
                            active: UnsafePointer(activeIn), count: nActiveIn, grad: partials.wIn)
                if let gRec = partials.wRec {
                    flushRecurrent(start: blockStart, length: u + 1, learns: blockLearns, final: final, ws,
                                   active: activeRec, count: &nActiveRec, grad: gRec)
                }
                bbar = flushReadout(length: u + 1, learns: blockLearns, ws, bbar: bbar,
                                    gradOut: partials.wOut, gradB: partials.b)
                blockStart = n + 1
                blockLearns = false
            }
        }
        for c in 0..<C { ySum[c] /= Double(window) }
        if label != nil && config.regC > 0 {
            // firing-rate regulariser: f_j [Hz], loss 0.5 reg_c mean_j (f_j - f_target)^2
            let duration = Double(T) * config.dt
            var penalty = 0.0
            let regSignal = L  // reused: the per-unit factor of E
            regSignal.update(repeating: 0, count: Hp)
            for j in 0..<H {
                let deviation = Double(count[j]) / duration - config.fTarget
                penalty += deviation * deviation
                regSignal[j] = Float(config.regC * deviation / (Double(H) * duration * Double(batch)))
            }
            loss += 0.5 * config.regC * penalty / Double(H) / Double(batch)
            if let partials, let sumIn {
                for a in 0..<nActiveIn {
                    let input = Int(activeIn[a])
                    addProductRow(partials.wIn + input * Hp, regSignal, sumIn + input * Hp)
                }
                if let sumRec, let gRec = partials.wRec {
                    for a in 0..<nActiveRec {
                        let unit = Int(activeRec[a])
                        addProductRow(gRec + unit * Hp, regSignal, sumRec + unit * Hp)
                    }
                }
            }
        }
        return loss
    }

    /// Backward recursions over a block of K steps (block step u = 1 ... K is step start + u - 1),
    /// in place: from psi^u (psiBlock row u) and L^u (signalBlock row u),
    ///   Lbar^u = L^u + kappa Lbar^{u+1},           S2 = kappa Lbar^1 = sum_u kappa^u L^u,
    ///   G^u = psi^u Lbar^u + alpha G^{u+1}         (into signalBlock row u),
    ///   F^u = kappa^{K-u} psi^u + alpha F^{u+1}    (into psiBlock row u; not for the final block),
    ///   Q^u = psi^u + alpha Q^{u+1}                (regBlock row u, with the regulariser),
    /// all 0 at u = K + 1, and the virtual rows G^0 = alpha G^1, F^0 = alpha F^1, Q^0 = alpha Q^1.
    /// A presynaptic row whose trace obeys xbar^u = alpha^u X0 + sum over its events r <= u of
    /// alpha^(u-r) then gets (see `blockRow`)
    ///   grad += S2 ebar + X0 G^0 + sum_r G^r,   ebar <- kappa^K ebar + X0 F^0 + sum_r F^r,
    ///   E += X0 Q^0 + sum_r Q^r:
    /// exactly the per-step recursions of the header, summed over the block (expand
    /// ebar^u = kappa^u ebar^0 + sum_{m <= u} kappa^(u-m) psi^m xbar^m and exchange the sums).
    /// Only decaying factors appear, so blocks can be long; the work per presynaptic spike is one
    /// row addition for the gradient (BPTT's cost) and one for the trace, except in the final block.
    func blockBackward(length K: Int, learns: Bool, final: Bool, _ ws: EPropWorkspace) {
        let Hp = self.Hp, alpha = self.alpha, kappa = self.kappa
        let kappaPow = powers.pointer + (block + 1)
        let F = ws.psiBlock.pointer, G = ws.signalBlock.pointer, S2 = ws.blockS2.pointer
        let Q: UnsafeMutablePointer<Float>? = ws.sumIn != nil ? ws.regBlock.pointer : nil
        let needF = !final
        var k = 0
        while k < Hp {
            var lbar = Vec(), g = Vec(), f = Vec(), q = Vec()
            var u = K
            while u >= 1 {
                let o = u * Hp + k
                let ps = loadVec(F + o)
                if learns {
                    lbar = loadVec(G + o).addingProduct(kappa, lbar)
                    g = (alpha * g).addingProduct(ps, lbar)
                    storeVec(g, G + o)
                }
                if needF {
                    f = (alpha * f).addingProduct(kappaPow[K - u], ps)
                    storeVec(f, F + o)
                }
                if let Q {
                    q = ps.addingProduct(alpha, q)
                    storeVec(q, Q + o)
                }
                u -= 1
            }
            storeVec(alpha * g, G + k); storeVec(alpha * f, F + k)
            if let Q { storeVec(alpha * q, Q + k) }
            storeVec(kappa * lbar, S2 + k)
            k += lanes
        }
    }

    /// The input rows' share of a block (after `blockBackward`): each active input's spikes in
    /// the block are its events (block step r = step - start + 1, read from its event list in
    /// place), its trace before the block X0. The last block takes all remaining events and
    /// leaves the traces as they are.
    func flushInputs(sample s: Int, start: Int, length K: Int, learns: Bool, final: Bool, _ ws: EPropWorkspace,
                     active: UnsafePointer<Int32>, count: Int, grad: UnsafeMutablePointer<Float>) {
        let Hp = self.Hp, nIn = config.nIn
        let alphaPow = powers.pointer, kappaK = powers.pointer[(block + 1) + K]
        let end = start + K
        let xbar = ws.xbar.pointer, cursor = ws.cursor.pointer, ebar = ws.ebarIn.pointer
        let sums = ws.sumIn?.pointer, steps = data.inputEvents
        for a in 0..<count {
            let i = Int(active[a])
            // this input's spikes in the block (its event list is sorted by step)
            let c = cursor[i], last = Int(data.inputPtr[s * nIn + i + 1])
            let X0 = xbar[i]
            var e = c
            if final {
                e = last
            } else {
                // X = alpha^K X0 + sum_r alpha^(K-r), two partial sums (independent chains)
                var x0 = alphaPow[K] * X0, x1: Float = 0
                while e + 1 < last && Int(steps[e + 1]) < end {
                    x0 += alphaPow[end - 1 - Int(steps[e])]
                    x1 += alphaPow[end - 1 - Int(steps[e + 1])]
                    e += 2
                }
                if e < last && Int(steps[e]) < end {
                    x0 += alphaPow[end - 1 - Int(steps[e])]
                    e += 1
                }
                xbar[i] = x0 + x1
            }
            cursor[i] = e
            blockRow(ebar + i * Hp, grad: grad + i * Hp, sum: sums.map { $0 + i * Hp }, X0: X0,
                     events: steps + c, count: e - c, shift: start - 1, learns: learns, final: final,
                     first: start == 0, kappaK: kappaK, ws)
        }
    }

    /// One presynaptic row of a block (after `blockBackward`), its events' block steps
    /// `events[e] - shift`: ``grad += S2 ebar + X0 G^0 + sum_r G^r``, ``ebar <- kappa^K ebar +
    /// X0 F^0 + sum_r F^r`` (not after the final block), ``sum += X0 Q^0 + sum_r Q^r``; the sums
    /// over events are row additions (`addRowsShifted`). In the first block ebar and X0 are 0.
    @inline(__always)
    func blockRow(_ row: UnsafeMutablePointer<Float>, grad g: UnsafeMutablePointer<Float>,
                  sum sr: UnsafeMutablePointer<Float>?, X0: Float, events: UnsafePointer<UInt16>, count: Int,
                  shift: Int, learns: Bool, final: Bool, first: Bool, kappaK: Float, _ ws: EPropWorkspace) {
        let Hp = self.Hp
        let F = ws.psiBlock.pointer, G = ws.signalBlock.pointer, S2 = ws.blockS2.pointer
        if learns {
            if !first {
                var k = 0
                while k < Hp {
                    storeVec(loadVec(g + k).addingProduct(loadVec(S2 + k), loadVec(row + k))
                             .addingProduct(X0, loadVec(G + k)), g + k)
                    k += lanes
                }
            }
            addRowsShifted(events, count, shift: shift, from: G, stride: Hp, into: g, width: Hp)
        }
        if !final {
            if !first {
                var k = 0
                while k < Hp {
                    storeVec((kappaK * loadVec(row + k)).addingProduct(X0, loadVec(F + k)), row + k)
                    k += lanes
                }
            }
            addRowsShifted(events, count, shift: shift, from: F, stride: Hp, into: row, width: Hp)
        }
        if let sr {
            let Q = ws.regBlock.pointer
            if !first {
                var k = 0
                while k < Hp {
                    storeVec(loadVec(sr + k).addingProduct(X0, loadVec(Q + k)), sr + k)
                    k += lanes
                }
            }
            addRowsShifted(events, count, shift: shift, from: Q, stride: Hp, into: sr, width: Hp)
        }
    }

    /// The recurrent rows' share of a block: presynaptic unit i's trace at step n is
    /// zbar_i^{n-1}, so its spike at step m is an event at block step r = m - start + 2 (the
    /// spikes of the previous block's last step at r = 1; those of this block's last step go
    /// to the next block). ws.zbar holds zbar^{start-2}, the row's X0.
    func flushRecurrent(start: Int, length K: Int, learns: Bool, final: Bool, _ ws: EPropWorkspace,
                        active: UnsafeMutablePointer<Int32>, count: inout Int, grad: UnsafeMutablePointer<Float>) {
        let Hp = self.Hp, H = config.nHidden, block = self.block
        let alphaPow = powers.pointer, kappaK = powers.pointer[(block + 1) + K]
        let zpre = ws.zbar.pointer, ebar = ws.ebarRec!.pointer, sums = ws.sumRec?.pointer
        let spikesB = ws.spikesBlock.pointer, counts = ws.spikeCounts.pointer
        let carry = ws.carry.pointer, evCount = ws.recEventCount.pointer, evSlots = ws.recEvents.pointer
        let flag = ws.flagRec.pointer
        evCount.update(repeating: 0, count: H)
        @inline(__always) func add(_ unit: Int, _ r: Int) {
            if flag[unit] == 0 {
                flag[unit] = 1
                active[count] = Int32(unit)
                count += 1
                if T > block { (ebar + unit * Hp).update(repeating: 0, count: Hp) }
                if let sums { (sums + unit * Hp).update(repeating: 0, count: Hp) }
            }
            evSlots[unit * block + evCount[unit]] = UInt16(truncatingIfNeeded: r)
            evCount[unit] += 1
        }
        for q in 0..<ws.carryCount { add(Int(carry[q]), 1) }
        if K >= 2 {
            for u in 0..<(K - 1) {
                for q in 0..<counts[u] { add(Int(spikesB[u * Hp + q]), u + 2) }
            }
        }
        for a in 0..<count {
            let i = Int(active[a])
            let X0 = zpre[i]
            let events = evCount[i], list = evSlots + i * block
            if !final {
                var X = alphaPow[K] * X0
                for e in 0..<events { X += alphaPow[K - Int(list[e])] }
                zpre[i] = X
            }
            blockRow(ebar + i * Hp, grad: grad + i * Hp, sum: sums.map { $0 + i * Hp }, X0: X0,
                     events: UnsafePointer(list), count: events, shift: 0, learns: learns, final: final,
                     first: start == 0, kappaK: kappaK, ws)
        }
        // the spikes of the block's last step start the next block
        ws.carryCount = counts[K - 1]
        carry.update(from: spikesB + (K - 1) * Hp, count: counts[K - 1])
    }

    /// The readout's gradient over a block of K steps, event-driven: with
    /// R^u = err^u + kappa R^{u+1} (R^{K+1} = 0) and E0 = sum_u kappa^u err^u,
    ///   sum_u err^u zout_j^u = zout_j^0 E0 + sum over j's spikes at block step s of R^s,
    /// (zout^u = kappa^u zout^0 + sum_{s <= u} kappa^{u-s} z^s), and likewise for the bias with
    /// bbar; then zout and bbar advance to the block's end. Returns the new bbar.
    func flushReadout(length K: Int, learns: Bool, _ ws: EPropWorkspace, bbar: Float,
                      gradOut: UnsafeMutablePointer<Float>, gradB: UnsafeMutablePointer<Float>) -> Float {
        let Cp = self.Cp, Hp = self.Hp, H = config.nHidden, stride = block + 1
        let kappaPow = powers.pointer + stride
        let zout = ws.zout.pointer, errB = ws.errBlock.pointer
        let spikesB = ws.spikesBlock.pointer, counts = ws.spikeCounts.pointer
        if learns {
            let R = ws.readoutR.pointer, E0 = ws.readoutE0.pointer
            var c = 0
            while c < Cp {
                var r = Vec(), e0 = Vec(), total = Vec()
                var u = K
                while u >= 1 {
                    r = loadVec(errB + (u - 1) * Cp + c).addingProduct(kappa, r)
                    storeVec(r, R + (u - 1) * Cp + c)
                    e0 = e0.addingProduct(kappaPow[u], loadVec(errB + (u - 1) * Cp + c))
                    total += r
                    u -= 1
                }
                storeVec(e0, E0 + c)
                storeVec(loadVec(gradB + c).addingProduct(bbar, e0) + total, gradB + c)
                c += lanes
            }
            for j in 0..<H where zout[j] != 0 {
                let row = gradOut + j * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c).addingProduct(zout[j], loadVec(E0 + c)), row + c); c += lanes }
            }
            for u in 1...K {
                let r = R + (u - 1) * Cp
                for q in 0..<counts[u - 1] {
                    let row = gradOut + Int(spikesB[(u - 1) * Hp + q]) * Cp
                    var c = 0
                    while c < Cp { storeVec(loadVec(row + c) + loadVec(r + c), row + c); c += lanes }
                }
            }
        }
        let kappaK = kappaPow[K]
        var k = 0
        while k < Hp { storeVec(kappaK * loadVec(zout + k), zout + k); k += lanes }
        var newBbar = kappaK * bbar
        for u in 1...K {
            let decay = kappaPow[K - u]
            newBbar += decay
            for q in 0..<counts[u - 1] { zout[Int(spikesB[(u - 1) * Hp + q])] += decay }
        }
        return newBbar
    }

    /// Per-step loss of y against `label`, divided by window * batch (`scale`); writes
    /// err = d(loss)/dy (scaled) into `err` (C entries; padding stays 0).
    @inline(__always)
    func stepLoss(y: UnsafePointer<Float>, label: Int, err: UnsafeMutablePointer<Float>, scale: Float) -> Double {
        let C = config.nOut
        switch config.loss {
        case .crossEntropy:
            // softmax over the C lanes, eight at a time (expNonPositive; lanes >= C get
            // -1e30 added and give 0)
            var top = y[0]
            for c in 1..<C { top = Swift.max(top, y[c]) }
            let pad = classPad.pointer
            var sum = Vec()
            var c = 0
            while c < C {
                let e = expNonPositive((loadVec(y + c) - top) + loadVec(pad + c))
                storeVec(e, err + c)
                sum += e
                c += lanes
            }
            let half = sum.lowHalf + sum.highHalf, quarter = half.lowHalf + half.highHalf
            let total = quarter[0] + quarter[1], eLabel = err[label]
            c = 0
            while c < C { storeVec(loadVec(err + c) / total * scale, err + c); c += lanes }
            err[label] = (eLabel / total - 1) * scale
            return (Double(logf(total)) + Double(top) - Double(y[label])) * Double(scale)
        case .mse:
            var total: Float = 0
            for c in 0..<C {
                let d = y[c] - (c == label ? 1 : 0)
                total += d * d
                err[c] = d * scale
            }
            return 0.5 * Double(total) * Double(scale)
        }
    }

    @inline(__always)
    func addProductRow(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) {
        var k = 0
        while k < Hp { storeVec(loadVec(out + k).addingProduct(loadVec(a + k), loadVec(b + k)), out + k); k += lanes }
    }

    func record(n: Int, slot: Int, _ ws: EPropWorkspace, psi: UnsafePointer<Float>, signal: UnsafePointer<Float>,
                inWindow: Bool, _ rec: EPropRecordings) {
        let T = self.T, H = config.nHidden, C = config.nOut
        let row = (slot * T + n) * H
        if let p = rec.voltage { for j in 0..<H { p[row + j] = ws.v.pointer[j] } }
        if let p = rec.spikes { for j in 0..<H { p[row + j] = ws.z.pointer[j] > 0 ? 1 : 0 } }
        if let p = rec.psi { for j in 0..<H { p[row + j] = psi[j] } }
        if let p = rec.learningSignal { for j in 0..<H { p[row + j] = inWindow ? signal[j] : 0 } }
        if let p = rec.readout { for c in 0..<C { p[(slot * T + n) * C + c] = ws.y.pointer[c] } }
    }
}

/// Zeroes gradient entries whose mask byte is 0 (absent synapses).
func applyMask(_ grad: UnsafeMutablePointer<Float>, _ mask: UnsafePointer<UInt8>?, count: Int) {
    guard let mask else { return }
    for e in 0..<count where mask[e] == 0 { grad[e] = 0 }
}

/// Forward pass of the e-prop network over a batch: logits (batch x C, the readout averaged over
/// the window) and optional recordings. `labels` (optional) give the learning signals recorded in
/// the window (they need `feedback`).
public func epropForward(_ config: EPropConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                         labels: UnsafePointer<Int64>?, weights: EPropWeights, logits: UnsafeMutablePointer<Float>,
                         recordings: EPropRecordings, threads: Int) throws {
    try config.validate()
    try config.checkData(data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    _ = try checkedProduct(batch, config.steps, Swift.max(config.nHidden, config.nOut), what: "recordings")
    if let labels { try checkLabels(labels, batch: batch, classes: config.nOut) }
    if recordings.learningSignal != nil {
        try require(labels != nil, "learning signals need labels")
        _ = try unwrap(weights.feedback, "feedback")
    }
    let kernel = try EPropKernel(config, data, weights)
    let failures = try TaskFailures(batch)
    let C = config.nOut
    try parallelFor(batch, threads: threads, makeContext: { try kernel.workspace(gradient: false) }) { ws, b in
        guard data.validateSample(samples[b]) else { failures.fail(b); return }
        _ = kernel.run(sample: samples[b], slot: b, label: labels.map { Int($0[b]) }, batch: batch, ws,
                       partials: nil, rec: recordings)
        for c in 0..<C { logits[b * C + c] = Float(ws.ySum.pointer[c]) }
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
}

/// Optional connectivity masks (bytes, nonzero = synapse present), shaped like the weights.
public struct EPropMasks {
    public var wIn: UnsafePointer<UInt8>?, wRec: UnsafePointer<UInt8>?, wOut: UnsafePointer<UInt8>?
    public init(wIn: UnsafePointer<UInt8>? = nil, wRec: UnsafePointer<UInt8>? = nil, wOut: UnsafePointer<UInt8>? = nil) {
        self.wIn = wIn; self.wRec = wRec; self.wOut = wOut
    }
}

/// Gradient outputs (shaped like the weights; `wRec` needed with a recurrent layer).
public struct EPropGradients {
    public var wIn: UnsafeMutablePointer<Float>, wRec: UnsafeMutablePointer<Float>?
    public var wOut: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
    public init(wIn: UnsafeMutablePointer<Float>, wRec: UnsafeMutablePointer<Float>?, wOut: UnsafeMutablePointer<Float>,
                b: UnsafeMutablePointer<Float>) {
        self.wIn = wIn; self.wRec = wRec; self.wOut = wOut; self.b = b
    }
}

/// Mean loss over the batch and the e-prop gradients of that mean (masked entries are 0).
public func epropLossGrad(_ config: EPropConfig, _ data: EventData, index: UnsafePointer<Int64>?, batch: Int,
                          labels: UnsafePointer<Int64>, weights: EPropWeights, masks: EPropMasks,
                          gradients: EPropGradients, logits: UnsafeMutablePointer<Float>?, threads: Int) throws -> Double {
    try config.validate()
    try config.checkData(data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    try checkLabels(labels, batch: batch, classes: config.nOut)
    _ = try unwrap(weights.feedback, "feedback")
    let gRecOut: UnsafeMutablePointer<Float>? = config.recurrent ? try unwrap(gradients.wRec, "grad_w_rec") : nil
    let kernel = try EPropKernel(config, data, weights)
    let H = config.nHidden, C = config.nOut, Hp = kernel.Hp, Cp = kernel.Cp
    let chunks = (batch + chunkSize - 1) / chunkSize
    var shapes: [(rows: Int, cols: Int, stride: Int)] = [(config.nIn, H, Hp), (H, C, Cp), (1, C, Cp)]
    if config.recurrent { shapes.append((H, H, Hp)) }
    let partials = try shapes.map {
        try Scratch<Float>(try checkedProduct(chunks, $0.rows, $0.stride, what: "gradient partials"), what: "gradient partials")
    }
    let losses = try Scratch<Double>(batch, what: "losses")
    let failures = try TaskFailures(chunks)
    try parallelFor(chunks, threads: threads, makeContext: { try kernel.workspace(gradient: true) }) { ws, chunk in
        let range = (chunk * chunkSize)..<Swift.min(batch, (chunk + 1) * chunkSize)
        guard samples[range].allSatisfy(data.validateSample) else { failures.fail(chunk); return }
        let slices = zip(partials, shapes).map { partial, shape -> UnsafeMutablePointer<Float> in
            let slice = partial.pointer + chunk * shape.rows * shape.stride
            slice.update(repeating: 0, count: shape.rows * shape.stride)
            return slice
        }
        let p = EPropPartials(wIn: slices[0], wRec: config.recurrent ? slices[3] : nil, wOut: slices[1], b: slices[2])
        for b in range {
            losses.pointer[b] = kernel.run(sample: samples[b], slot: b, label: Int(labels[b]), batch: batch, ws,
                                           partials: p, rec: EPropRecordings())
            if let logits { for c in 0..<C { logits[b * C + c] = Float(ws.ySum.pointer[c]) } }
        }
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
    var outputs = [gradients.wIn, gradients.wOut, gradients.b]
    if let gRecOut { outputs.append(gRecOut) }
    try reducePartials(zip(zip(partials, shapes), outputs).map { item, out in
        PartialSums(partials: item.0, rows: item.1.rows, cols: item.1.cols, stride: item.1.stride, out: out)
    }, chunks: chunks)
    applyMask(gradients.wIn, masks.wIn, count: config.nIn * H)
    applyMask(gradients.wOut, masks.wOut, count: H * C)
    if let gRecOut { applyMask(gRecOut, masks.wRec, count: H * H) }
    var total = 0.0
    for b in 0..<batch { total += losses.pointer[b] }
    return total
}
