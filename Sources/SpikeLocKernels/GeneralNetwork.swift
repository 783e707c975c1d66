// The general network (MODEL.md sections 4, 5 and 7): inputs -> hidden LIF layers l = 0 ..< L
// (each optionally recurrent) -> a readout head; every research variant, trainable delays on
// the first weight matrix, and e-prop's network for its BPTT view. L = 0 is the membrane-only
// network (the readout reads the inputs). The default two-layer network keeps its tuned fast
// path (Network.swift); this kernel is served by the same batch driver (`lossAndGradients`).
//
// Per sample: layer l's current is I_n = (the rows of W_l of the units of layer l - 1 that
// spike at step n; input events, delayed, for l = 0) + (the rows of Wrec_l of its own units
// spiking at step n), all event sums over spike lists (`addRows`). Backward per layer, top
// down: ds of the top layer = D (dJ W_out^T) (+ the rate penalty), LIF adjoints
// (LIFLayer.swift) give gI; dW_l and dWrec_l sum gI rows over spike lists, ds of the layer below
// is gI W_l^T, and the first layer's gI gives dW_0 and the delay gradient (Delays.swift).
// Dale's law: W_eff = |W| sign per row (sign 0: the row is free); dW = dW_eff sign sgn(W).
// The reference is python/spikeloc/reference/general.py.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum RateKind: Int32 {
    case none = 0, upper = 1, target = 2
}

/// The shape and options of a general network; weights and per-neuron arrays are passed in
/// `NetworkParameters`.
public struct NetworkSpec {
    public var nIn: Int, nOut: Int
    /// Data steps T (the kernel runs T + 1 with the e-prop timing).
    public var steps: Int
    public var dt: Double
    /// Hidden layer sizes and their recurrence flags (same count).
    public var hidden: [Int] = [], recurrent: [Bool] = []
    /// Time constants (s) where `NetworkParameters.tau` has no per-neuron array.
    public var tauHidden: [Double] = [], tauOutput: Double = 0.02
    public var reset: ResetKind = .delayed, surrogate: SurrogateKind = .sigmoid
    /// Scale of the surrogate.
    public var beta = 5.0
    public var detachReset = false
    /// Adaptive threshold of the hidden layers: tau_a (s; 0 = off) and beta_a.
    public var adaptTau = 0.0, adaptStrength = 0.0
    public var head: Head = .mean
    /// The window head: the last `window` recorded steps and the per-step loss.
    public var window = 0, windowLoss: WindowLoss = .crossEntropy
    public var timing: Timing = .seeds
    /// A readout bias b (C).
    public var bias = false
    /// Delays of the first weight matrix, in [0, maxDelay] steps.
    public var delays: DelayKind = .none, maxDelay = 0
    /// Rate penalty on every hidden layer: c and r_max (upper) or f_target (target), Hz.
    public var rate: RateKind = .none, rateC = 0.0, rateRef = 100.0
    /// Dropout of the top layer's spikes on their way to the readout (loss and gradients only).
    public var dropout = 0.0, dropoutSeed: UInt64 = 0

    public init(nIn: Int, nOut: Int, steps: Int, dt: Double) {
        self.nIn = nIn; self.nOut = nOut; self.steps = steps; self.dt = dt
    }

    var layers: Int { hidden.count }
    var kernelSteps: Int { steps + (timing == .eprop ? 1 : 0) }
    /// Rows and columns of weight matrix l (l = L: the readout).
    func shape(_ l: Int) -> (rows: Int, cols: Int) {
        (l == 0 ? nIn : hidden[l - 1], l == layers ? nOut : hidden[l])
    }

    func validate() throws {
        try requireCount(nIn, "n_in", max: EventData.maxInputs)
        try requireCount(nOut, "n_out", max: 1 << 16)
        try requireCount(steps, "steps", max: EventData.maxSteps)
        try requirePositiveFinite(dt, "dt")
        try require(hidden.count <= 64, "n_layers must be in [0, 64], got \(hidden.count)")
        try require(recurrent.count == hidden.count && tauHidden.count == hidden.count,
                    "one recurrence flag and one time constant per hidden layer")
        for (l, n) in hidden.enumerated() {
            try requireCount(n, "hidden[\(l)]", max: 1 << 16)
            try requirePositiveFinite(tauHidden[l], "tau_hidden[\(l)]")
        }
        try requirePositiveFinite(tauOutput, "tau_output")
        try requirePositiveFinite(beta, "beta")
        try require(adaptTau == 0 || (adaptTau.isFinite && adaptTau > 0),
                    "adapt_tau must be 0 (off) or a positive finite number, got \(adaptTau)")
        try require(adaptStrength.isFinite && adaptStrength >= 0,
                    "adapt_strength must be a finite number >= 0, got \(adaptStrength)")
        if head == .window { try requireCount(window, "window", max: steps) }
        try require(head != .spikeCount || timing == .seeds, "the spike-count readout needs the seeds' timing (timing 0)")
        try require(timing == .seeds || !hidden.isEmpty, "the e-prop timing needs a hidden layer")
        if delays != .none {
            try requireCount(maxDelay, "max_delay", min: 0, max: EventData.maxSteps)
        }
        try require(rateC.isFinite && rateC >= 0, "rate_c must be a finite number >= 0, got \(rateC)")
        if rate == .upper { try requirePositiveFinite(rateRef, "rate_ref (r_max)") }
        if rate == .target { try require(rateRef.isFinite, "rate_ref (f_target) must be finite, got \(rateRef)") }
        try require(dropout.isFinite && dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got \(dropout)")
        for l in 0...layers {
            let (r, c) = shape(l)
            _ = try checkedProduct(r, c, what: "w\(l + 1)")
        }
    }
}

/// The arrays of a general network (borrowed for a call). Weights are [presynaptic,
/// postsynaptic]: w[l] has the shape `spec.shape(l)`, wRec[l] N_l x N_l (nil if not recurrent).
public struct NetworkParameters {
    public var w: [UnsafePointer<Float>]
    public var wRec: [UnsafePointer<Float>?]
    public var b: UnsafePointer<Float>?
    /// N_in (per input) or N_in x (columns of w[0]) (per synapse), in steps.
    public var delays: UnsafePointer<Float>?
    /// Per-neuron time constants (s) of each hidden layer and the output, nil = the spec's scalar.
    public var tau: [UnsafePointer<Float>?]
    /// Dale's law: a sign (+1, -1, or 0 = free) per row of w[l] / wRec[l]; nil = none.
    public var sign: [UnsafePointer<Float>?], signRec: [UnsafePointer<Float>?]

    public init(w: [UnsafePointer<Float>], wRec: [UnsafePointer<Float>?], b: UnsafePointer<Float>? = nil,
                delays: UnsafePointer<Float>? = nil, tau: [UnsafePointer<Float>?],
                sign: [UnsafePointer<Float>?], signRec: [UnsafePointer<Float>?]) {
        self.w = w; self.wRec = wRec; self.b = b; self.delays = delays; self.tau = tau
        self.sign = sign; self.signRec = signRec
    }

    func validate(_ spec: NetworkSpec) throws {
        let L = spec.layers
        try require(w.count == L + 1 && wRec.count == L && tau.count == L + 1 && sign.count == L + 1
                    && signRec.count == L, "parameter lists do not match the number of layers")
        for l in 0..<L {
            try require((wRec[l] != nil) == spec.recurrent[l],
                        "w_rec[\(l)] must be given exactly for recurrent layers")
        }
        try require((b != nil) == spec.bias, "b must be given exactly when the spec has a bias")
        if let b { for c in 0..<spec.nOut { try require(b[c].isFinite, "b[\(c)] is not finite (\(b[c]))") } }
        for l in 0...L {
            let n = l == L ? spec.nOut : spec.hidden[l]
            if let t = tau[l] { try checkTaus(t, n, l == L ? "tau_output" : "tau_hidden\(l + 1)") }
            if let s = sign[l] { try checkSigns(s, spec.shape(l).rows, "sign_w\(l + 1)", free: true) }
            if l < L, let s = signRec[l] { try checkSigns(s, spec.hidden[l], "sign_rec\(l + 1)", free: true) }
        }
        try require((delays != nil) == (spec.delays != .none), "delays must be given exactly when the spec has delays")
        if let d = delays {
            let count = spec.delays == .perInput ? spec.nIn : try checkedProduct(spec.nIn, spec.shape(0).cols, what: "delays")
            for e in 0..<count {
                try require(d[e].isFinite && d[e] >= 0 && d[e] <= Float(spec.maxDelay),
                            "delays[\(e)] must be in [0, max_delay = \(spec.maxDelay)], got \(d[e])")
            }
        }
    }
}

/// Gradient outputs, shaped like the parameters; optional entries may be nil.
public struct NetworkGradients {
    public var w: [UnsafeMutablePointer<Float>]
    public var wRec: [UnsafeMutablePointer<Float>?]
    public var b: UnsafeMutablePointer<Float>?
    public var delays: UnsafeMutablePointer<Float>?
    /// dL/dtau (1/s) of each hidden layer and the output; nil entries are not computed.
    public var tau: [UnsafeMutablePointer<Float>?]

    public init(w: [UnsafeMutablePointer<Float>], wRec: [UnsafeMutablePointer<Float>?],
                b: UnsafeMutablePointer<Float>? = nil, delays: UnsafeMutablePointer<Float>? = nil,
                tau: [UnsafeMutablePointer<Float>?]) {
        self.w = w; self.wRec = wRec; self.b = b; self.delays = delays; self.tau = tau
    }
}

/// Recordings of `networkForward`: logits (B x C), hidden spikes (B x T x sum of the layer
/// sizes, layer after layer) and the output membrane (B x T x C: R, or the voltages of the
/// spiking output units) at the T recorded steps; the recordings may be nil.
public typealias NetworkOutputs = ForwardOutputs

/// Per-worker memory of the general kernel.
final class GeneralBuffers {
    let layers: [LayerBuffers]
    let readout: ReadoutBuffers
    let dropout: Scratch<Float>
    /// The state of the delayed input rows (nil without delays).
    let delays: DelayState?
    /// Per layer: the rate penalty's spike gradient and the spike counts; for a linear head the
    /// top layer's weighted counts z and y (see `ReadoutHead.profile`) and z W_out, y W_out.
    let reg: [Scratch<Float>], counts: [Scratch<Float>]
    let z: Scratch<Float>, y: Scratch<Float>, jz: Scratch<Float>, jy: Scratch<Float>
    /// The sample of the last forward pass (its input events feed the first layer's gradient),
    /// and whether that pass listed the top layer's spikes and ran the readout recursion.
    var sample = 0, recursion = true

    init(_ k: GeneralKernel) throws {
        let Tk = k.spec.kernelSteps, pad = k.projection.maxLag + 1
        layers = try k.widths.enumerated().map { l, width in
            try LayerBuffers(steps: Tk, width: width, padding: l == 0 ? pad : 0)
        }
        readout = try ReadoutBuffers(steps: Tk, stride: k.Cp, padding: k.spec.layers == 0 ? pad : 0,
                                     spiking: k.spec.head == .spikeCount)
        dropout = try Scratch(k.dropping ? try checkedProduct(Tk, k.widths.last ?? 0, what: "workspace") : 1,
                              what: "workspace")
        delays = k.projection.kind == .none ? nil : try DelayState(k.projection, steps: k.spec.steps)
        reg = try k.widths.map { try Scratch<Float>($0, what: "workspace") }
        counts = try k.widths.map { try Scratch<Float>($0, what: "workspace") }
        let top = k.widths.last ?? lanes
        z = try Scratch(top, what: "workspace"); y = try Scratch(top, what: "workspace")
        jz = try Scratch(k.Cp, what: "workspace"); jy = try Scratch(k.Cp, what: "workspace")
    }
}

/// One weight matrix's effective weights (Dale's law applied), padded, and optionally its
/// transpose (rows = columns of W, padded to the width of the layer below) for ds = g W^T.
private func effectivePadded(_ w: UnsafePointer<Float>, rows: Int, cols: Int, sign: UnsafePointer<Float>?,
                             name: String, transpose: Bool) throws -> (PaddedWeights, PaddedWeights?) {
    let e = try daleEffective(w, rows: rows, cols: cols, sign: sign, name: name)
    let p = e.map { UnsafePointer($0.pointer) } ?? w
    return (try PaddedWeights(p, rows: rows, cols: cols, name: name),
            transpose ? try PaddedWeights(p, rows: rows, cols: cols, name: name, transpose: true) : nil)
}

struct GeneralKernel: GradientKernel {
    let spec: NetworkSpec
    let config: NetConfig
    let data: EventData
    let training: Bool
    let projection: InputProjection
    let layers: [LIFParams]
    let widths: [Int]
    /// W_l (l >= 1) and W_l^T (rows N_l, width of layer l - 1), index l; nil at 0.
    let forwardW: [PaddedWeights?], backwardW: [PaddedWeights?]
    /// Wrec_l and Wrec_l^T.
    let rec: [PaddedWeights?], recT: [PaddedWeights?]
    /// W_out (N_L x Cp) and W_out^T (C x width of the top layer); nil without hidden layers.
    let out: PaddedWeights?, outT: PaddedWeights?
    let head: ReadoutHead
    let Cp: Int
    /// Indices of the gradient partials (see `gradients`).
    let slotW: [Int], slotRec: [Int?], slotB: Int, slotDecay: [Int]

    var L: Int { spec.layers }
    var Tk: Int { spec.kernelSteps }
    var dropping: Bool { training && spec.dropout > 0 && L > 0 }

    init(_ spec: NetworkSpec, _ params: NetworkParameters, _ data: EventData, training: Bool) throws {
        self.spec = spec; self.data = data; self.training = training
        let L = spec.layers
        config = NetConfig(nIn: spec.nIn, nHidden: spec.hidden.first ?? 1, nOut: spec.nOut, steps: spec.steps,
                           dt: spec.dt, tauHidden: spec.tauHidden.first ?? spec.tauOutput, tauOutput: spec.tauOutput)
        let (r0, c0) = spec.shape(0)
        let e0 = try daleEffective(params.w[0], rows: r0, cols: c0, sign: params.sign[0], name: "w1")
        projection = try InputProjection(e0.map { UnsafePointer($0.pointer) } ?? params.w[0], nIn: r0, cols: c0,
                                         kind: spec.delays, delays: params.delays, name: "w1")
        var fw: [PaddedWeights?] = [nil], bw: [PaddedWeights?] = [nil], rc: [PaddedWeights?] = [], rcT: [PaddedWeights?] = []
        var lif: [LIFParams] = [], widths: [Int] = []
        for l in 0..<L {
            let n = spec.hidden[l], width = roundUp(n, lanes)
            widths.append(width)
            lif.append(try LIFParams(width: width, count: n, tau: params.tau[l], scalarTau: spec.tauHidden[l],
                                     dt: spec.dt, reset: spec.reset, surrogate: spec.surrogate, beta: spec.beta,
                                     adaptTau: spec.adaptTau, adaptStrength: spec.adaptStrength,
                                     detachReset: spec.detachReset))
            if l > 0 {
                let (r, c) = spec.shape(l)
                let (p, t) = try effectivePadded(params.w[l], rows: r, cols: c, sign: params.sign[l],
                                                 name: "w\(l + 1)", transpose: true)
                fw.append(p); bw.append(t)
            }
            if let wr = params.wRec[l] {
                let (p, t) = try effectivePadded(wr, rows: n, cols: n, sign: params.signRec[l],
                                                 name: "w_rec\(l + 1)", transpose: true)
                rc.append(p); rcT.append(t)
            } else {
                rc.append(nil); rcT.append(nil)
            }
        }
        forwardW = fw; backwardW = bw; rec = rc; recT = rcT; layers = lif; self.widths = widths
        Cp = roundUp(spec.nOut, lanes)
        if L > 0 {
            let (p, t) = try effectivePadded(params.w[L], rows: spec.hidden[L - 1], cols: spec.nOut,
                                             sign: params.sign[L], name: "w\(L + 1)", transpose: true)
            out = p; outT = t
        } else {
            out = nil; outT = nil
        }
        let output = try LIFParams(width: Cp, count: spec.nOut, tau: params.tau[L], scalarTau: spec.tauOutput,
                                   dt: spec.dt, reset: spec.reset, surrogate: spec.surrogate, beta: spec.beta,
                                   adaptTau: 0, adaptStrength: 0, detachReset: spec.detachReset)
        let bias = try params.b.map { try PaddedWeights($0, rows: 1, cols: spec.nOut, name: "b") }
        head = try ReadoutHead(head: spec.head, timing: spec.timing, window: spec.window, windowLoss: spec.windowLoss,
                           classes: spec.nOut, stride: Cp, steps: spec.steps, kernelSteps: spec.kernelSteps,
                           output: output, bias: bias)
        // gradient partials: G of the first matrix, W_l (l >= 1), Wrec_l, W_out, b, then decays
        var shapes: [(rows: Int, cols: Int, stride: Int)] = [(projection.gradientRows, c0, projection.width)]
        var slotW = [0], slotRec: [Int?] = []
        for l in 0..<L {
            if l > 0 { slotW.append(shapes.count); shapes.append((spec.hidden[l - 1], spec.hidden[l], widths[l])) }
            if spec.recurrent[l] {
                slotRec.append(shapes.count); shapes.append((spec.hidden[l], spec.hidden[l], widths[l]))
            } else {
                slotRec.append(nil)
            }
        }
        if L > 0 { slotW.append(shapes.count); shapes.append((spec.hidden[L - 1], spec.nOut, Cp)) }
        slotB = shapes.count; shapes.append((1, spec.nOut, Cp))
        var slotDecay: [Int] = []
        for l in 0..<L { slotDecay.append(shapes.count); shapes.append((1, spec.hidden[l], widths[l])) }
        slotDecay.append(shapes.count); shapes.append((1, spec.nOut, Cp))
        self.slotW = slotW; self.slotRec = slotRec; self.slotDecay = slotDecay
        gradients = shapes
    }

    // GradientKernel
    let gradients: [(rows: Int, cols: Int, stride: Int)]
    var currentWidth: Int { lanes }  // the input-weight sums run per sample, in `backward`
    func finishChunk(_ samples: ArraySlice<Int>, current g: UnsafePointer<Float>, partials: [UnsafeMutablePointer<Float>]) {}

    func workspace() throws -> SNNWorkspace {
        let ws = try SNNWorkspace(steps: 1, hiddenStride: lanes, classStride: Cp)
        ws.extra = try GeneralBuffers(self)
        return ws
    }

    /// I += the rows of layer l's input weights for step n (l = 0: the inputs, delayed; called
    /// for each step once, in order).
    @inline(__always)
    func addInput(_ l: Int, step n: Int, sample s: Int, _ b: GeneralBuffers, into I: UnsafeMutablePointer<Float>,
                  width: Int) {
        if l == 0 {
            let rows: UnsafePointer<UInt16>, count: Int
            if let state = b.delays {
                (rows, count) = projection.rows(step: n, data, state)
            } else {
                let first = Int(data.stepPtr[s * data.steps + n])
                (rows, count) = (data.stepEvents + first, Int(data.stepPtr[s * data.steps + n + 1]) - first)
            }
            addRows(rows, count, from: projection.weights.pointer, stride: width, into: I, width: width)
        } else {
            let (list, count) = b.layers[l - 1].spikes.at(n)
            addRows(list, count, from: forwardW[l]!.pointer, stride: width, into: I, width: width)
        }
    }

    /// Forward pass of sample s. With a linear head (`ReadoutHead.linear`) the logits come from
    /// the top layer's weighted spike counts, so training needs neither its spike lists nor the
    /// readout recursion; `recordMembrane` runs the recursion too (same logits).
    func forward(sample s: Int, _ ws: SNNWorkspace, recordMembrane: Bool) {
        forwardSample(s, ws, recordMembrane: recordMembrane)
    }

    func backward(label: Int, batch: Int, _ ws: SNNWorkspace, current _: UnsafeMutablePointer<Float>,
                  partials: [UnsafeMutablePointer<Float>]) -> Double {
        backwardSample(label: label, batch: batch, ws, partials: partials)
    }

    private func forwardSample(_ s: Int, _ ws: SNNWorkspace, recordMembrane: Bool) {
        let b = unsafeDowncast(ws.extra!, to: GeneralBuffers.self)
        b.sample = s
        let linear = head.linear && L > 0
        b.recursion = !linear || recordMembrane
        if let state = b.delays { projection.start(sample: s, data, state) }
        if dropping {
            let p = spec.dropout, scale = Float(1 / (1 - p))
            let key = CounterRNG.key(seed: spec.dropoutSeed, index: UInt64(s))
            let D = b.dropout.pointer, H = spec.hidden[L - 1], Hp = widths[L - 1]
            for n in 0..<Tk {
                for j in 0..<Hp {
                    D[n * Hp + j] = j < H && CounterRNG.uniform53(key: key, word: UInt64(n * H + j)) >= p ? scale : 0
                }
            }
        }
        for l in 0..<L {
            let lb = b.layers[l], width = widths[l], recurrent = rec[l]
            // the lists feed the recurrent current, the layer above and the readout recursion
            let listed = recurrent != nil || l < L - 1 || b.recursion
            var tally = SpikeTally()
            if spec.rate != .none { tally.counts = b.counts[l].pointer }
            if linear && l == L - 1 {
                tally.z = b.z.pointer; tally.y = b.y.pointer
                tally.zWeights = UnsafePointer(head.profile!.pointer)
                tally.yWeights = UnsafePointer(head.decayProfile!.pointer)
                if dropping { tally.dropout = UnsafePointer(b.dropout.pointer) }
            }
            layers[l].forward(steps: Tk, V: lb.V.pointer, S: lb.S.pointer, P: lb.P.pointer, A: lb.A.pointer,
                              I: lb.current, spikes: listed ? lb.spikes : nil, tally: tally) { n, I in
                I.update(repeating: 0, count: width)
                addInput(l, step: n, sample: s, b, into: I, width: width)
                if let recurrent {
                    let (list, count) = lb.spikes.at(n)
                    addRows(list, count, from: recurrent.pointer, stride: width, into: I, width: width)
                }
            }
        }
        if linear, let out {
            // J summed against the profiles: z W_out and y W_out
            let N = spec.hidden[L - 1]
            combineRows(b.z.pointer, N, from: out.pointer, stride: Cp, into: b.jz.pointer, width: Cp)
            combineRows(b.y.pointer, N, from: out.pointer, stride: Cp, into: b.jy.pointer, width: Cp)
            head.linearLogits(b.jz.pointer, m: ws.m.pointer)
            if !b.recursion { return }
        }
        let m = linear ? b.readout.logits.pointer : ws.m.pointer  // linear: logits from z above
        head.forward(b.readout, m: m, argmax: ws.argmax.pointer) { n, J in
            J.update(repeating: 0, count: Cp)
            guard L > 0, let out else {
                addInput(0, step: n, sample: s, b, into: J, width: Cp)
                return
            }
            let (list, count) = b.layers[L - 1].spikes.at(n)
            if dropping {
                let D = b.dropout.pointer + n * widths[L - 1]
                for e in 0..<count {
                    let j = Int(list[e]), d = D[j]
                    if d == 0 { continue }
                    let row = out.pointer + j * Cp
                    var c = 0
                    while c < Cp { storeVec(loadVec(J + c).addingProduct(d, loadVec(row + c)), J + c); c += lanes }
                }
            } else {
                addRows(list, count, from: out.pointer, stride: Cp, into: J, width: Cp)
            }
        }
    }

    private func backwardSample(label: Int, batch: Int, _ ws: SNNWorkspace,
                                partials: [UnsafeMutablePointer<Float>]) -> Double {
        let b = unsafeDowncast(ws.extra!, to: GeneralBuffers.self)
        let s = b.sample
        let dm = ws.dm.pointer
        guard L > 0, let outT else {
            let loss = head.backward(b.readout, label: label, batch: batch, m: ws.m.pointer, dm: dm,
                                     argmax: ws.argmax.pointer, gradBias: partials[slotB],
                                     gradDecay: partials[slotDecay[L]])
            projection.accumulate(sample: s, data, gI: b.readout.dJ.pointer, into: partials[slotW[0]])
            return loss
        }
        let top = b.layers[L - 1], Hp = widths[L - 1], N = spec.hidden[L - 1]
        let gradOut = partials[slotW[L]]
        var loss: Double
        if head.linear {
            // dJ_n = profile[n] dm: dW_out = z^T dm, ds_n = profile[n] D_n (dm W_out^T)
            loss = head.linearBackward(label: label, batch: batch, m: ws.m.pointer, dm: dm, jy: b.jy.pointer,
                                       gradBias: partials[slotB], gradDecay: partials[slotDecay[L]])
            let z = b.z.pointer
            for j in 0..<N where z[j] != 0 {
                let row = gradOut + j * Cp
                var c = 0
                while c < Cp { storeVec(loadVec(row + c).addingProduct(z[j], loadVec(dm + c)), row + c); c += lanes }
            }
        } else {
            loss = head.backward(b.readout, label: label, batch: batch, m: ws.m.pointer, dm: dm,
                                 argmax: ws.argmax.pointer, gradBias: partials[slotB],
                                 gradDecay: partials[slotDecay[L]])
            // dW_out += sum_n (s_n D_n)^T dJ_n
            let dJ = b.readout.dJ.pointer
            for n in 0..<Tk {
                let (list, count) = top.spikes.at(n)
                let D = b.dropout.pointer + n * Hp
                for e in 0..<count {
                    let j = Int(list[e]), d: Float = dropping ? D[j] : 1
                    if d == 0 { continue }
                    let row = gradOut + j * Cp
                    var c = 0
                    while c < Cp { storeVec(loadVec(row + c).addingProduct(d, loadVec(dJ + n * Cp + c)), row + c); c += lanes }
                }
            }
        }
        for l in 0..<L { loss += ratePenalty(l, b, batch: batch) }
        // ds of the top layer: D (dJ W_out^T) + the rate penalty
        if let profile = head.profile?.pointer {
            let q = top.feedback
            backProject(dm, count: spec.nOut, outT.pointer, width: Hp, into: q, scale: nil, add: nil)
            let reg = b.reg[L - 1].pointer
            for n in 0..<Tk {
                let ds = top.ds.pointer + n * Hp, D = b.dropout.pointer + n * Hp, r = profile[n]
                var k = 0
                while k < Hp {
                    let d = r * loadVec(q + k)
                    storeVec((dropping ? d * loadVec(D + k) : d) + loadVec(reg + k), ds + k)
                    k += lanes
                }
            }
        } else {
            let dJ = b.readout.dJ.pointer
            for n in 0..<Tk {
                backProject(dJ + n * Cp, count: spec.nOut, outT.pointer, width: Hp, into: top.ds.pointer + n * Hp,
                            scale: dropping ? UnsafePointer(b.dropout.pointer + n * Hp) : nil,
                            add: UnsafePointer(b.reg[L - 1].pointer))
            }
        }
        var l = L - 1
        while l >= 0 {
            let lb = b.layers[l], width = widths[l], count = spec.hidden[l]
            let feedback: ((Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)?
            if let wt = recT[l] {
                feedback = { _, g, r in backProject(g, count: count, wt.pointer, width: width, into: r, scale: nil, add: nil) }
            } else {
                feedback = nil
            }
            layers[l].backward(steps: Tk, V: lb.V.pointer, S: lb.S.pointer, P: lb.P.pointer, A: lb.A.pointer,
                               ds: lb.ds.pointer, gv: lb.gv, gb: lb.gb, gs: lb.gs, ga: partials[slotDecay[l]],
                               gI: lb.gI.pointer, r: lb.feedback, feedback: feedback)
            if let slot = slotRec[l] { addSpikeRows(lb.spikes, steps: Tk, g: lb.gI.pointer, width: width, into: partials[slot]) }
            if l == 0 {
                projection.accumulate(sample: s, data, gI: lb.gI.pointer, into: partials[slotW[0]])
            } else {
                let below = b.layers[l - 1], belowWidth = widths[l - 1]
                addSpikeRows(below.spikes, steps: Tk, g: lb.gI.pointer, width: width, into: partials[slotW[l]])
                for n in 0..<Tk {
                    backProject(lb.gI.pointer + n * width, count: count, backwardW[l]!.pointer, width: belowWidth,
                                into: below.ds.pointer + n * belowWidth, scale: nil,
                                add: UnsafePointer(b.reg[l - 1].pointer))
                }
            }
            l -= 1
        }
        return loss
    }

    /// The rate penalty of layer l for one sample: its loss term, and its constant spike
    /// gradient in b.reg[l] (zero without a penalty).
    func ratePenalty(_ l: Int, _ b: GeneralBuffers, batch: Int) -> Double {
        let reg = b.reg[l].pointer, N = spec.hidden[l]
        reg.update(repeating: 0, count: widths[l])
        guard spec.rate != .none else { return 0 }
        let counts = b.counts[l].pointer  // summed by the forward pass
        let seconds = Double(spec.steps) * spec.dt, c = spec.rateC, ref = spec.rateRef
        var total = 0.0
        for j in 0..<N {
            let r = Double(counts[j]) / seconds
            if spec.rate == .upper {
                let e = Swift.max(0, r - ref) / ref
                total += e * e
                reg[j] = Float(2 * c / Double(N) * e / ref / seconds / Double(batch))
            } else {
                total += 0.5 * (r - ref) * (r - ref)
                reg[j] = Float(c * (r - ref) / (Double(N) * seconds * Double(batch)))
            }
        }
        return c * total / Double(N)
    }
}

/// out[k] = scale[k] sum_c g[c] wt[c, k] + add[k] for k < width (wt: count rows of `width`
/// floats): a back-projection g W^T through the transposed weights.
@inline(__always)
func backProject(_ g: UnsafePointer<Float>, count: Int, _ wt: UnsafePointer<Float>, width: Int,
                 into out: UnsafeMutablePointer<Float>, scale: UnsafePointer<Float>?, add: UnsafePointer<Float>?) {
    combineRows(g, count, from: wt, stride: width, into: out, width: width)
    guard scale != nil || add != nil else { return }
    var k = 0
    while k < width {
        var d = loadVec(out + k)
        if let scale { d = d * loadVec(scale + k) }
        if let add { d = d + loadVec(add + k) }
        storeVec(d, out + k)
        k += lanes
    }
}

/// out[0 ..< width] = sum over c < count of g[c] base[c * stride ..< + width] (width a
/// multiple of 8), rows with g[c] = 0 skipped. As in `addRowsShifted`, column tiles keep 8 or
/// more independent accumulators in registers (64-wide tiles: 8; narrower tiles alternate sets
/// of accumulators between rows), each coefficient is broadcast once per tile, and the order
/// of the sums depends on count and width only.
@inline(__always)
func combineRows(_ g: UnsafePointer<Float>, _ count: Int, from base: UnsafePointer<Float>, stride: Int,
                 into out: UnsafeMutablePointer<Float>, width: Int) {
    var col = 0
    while col + 64 <= width {
        var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec(), a4 = Vec(), a5 = Vec(), a6 = Vec(), a7 = Vec()
        for c in 0..<count {
            let x = g[c]
            if x == 0 { continue }
            let p = base + c * stride + col
            a0 = a0.addingProduct(x, loadVec(p)); a1 = a1.addingProduct(x, loadVec(p + 8))
            a2 = a2.addingProduct(x, loadVec(p + 16)); a3 = a3.addingProduct(x, loadVec(p + 24))
            a4 = a4.addingProduct(x, loadVec(p + 32)); a5 = a5.addingProduct(x, loadVec(p + 40))
            a6 = a6.addingProduct(x, loadVec(p + 48)); a7 = a7.addingProduct(x, loadVec(p + 56))
        }
        storeVec(a0, out + col); storeVec(a1, out + col + 8); storeVec(a2, out + col + 16)
        storeVec(a3, out + col + 24); storeVec(a4, out + col + 32); storeVec(a5, out + col + 40)
        storeVec(a6, out + col + 48); storeVec(a7, out + col + 56)
        col += 64
    }
    while col + 32 <= width {
        var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec(), b0 = Vec(), b1 = Vec(), b2 = Vec(), b3 = Vec()
        var c = 0
        while c + 1 < count {
            let x = g[c], y = g[c + 1], p = base + c * stride + col, q = p + stride
            a0 = a0.addingProduct(x, loadVec(p)); a1 = a1.addingProduct(x, loadVec(p + 8))
            a2 = a2.addingProduct(x, loadVec(p + 16)); a3 = a3.addingProduct(x, loadVec(p + 24))
            b0 = b0.addingProduct(y, loadVec(q)); b1 = b1.addingProduct(y, loadVec(q + 8))
            b2 = b2.addingProduct(y, loadVec(q + 16)); b3 = b3.addingProduct(y, loadVec(q + 24))
            c += 2
        }
        if c < count {
            let x = g[c], p = base + c * stride + col
            a0 = a0.addingProduct(x, loadVec(p)); a1 = a1.addingProduct(x, loadVec(p + 8))
            a2 = a2.addingProduct(x, loadVec(p + 16)); a3 = a3.addingProduct(x, loadVec(p + 24))
        }
        storeVec(a0 + b0, out + col); storeVec(a1 + b1, out + col + 8)
        storeVec(a2 + b2, out + col + 16); storeVec(a3 + b3, out + col + 24)
        col += 32
    }
    while col < width {
        // 16 or 8 columns left: sets of accumulators over rows c mod 4
        let pair = col + 16 <= width
        var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec(), b0 = Vec(), b1 = Vec(), b2 = Vec(), b3 = Vec()
        var c = 0
        while c + 3 < count {
            let p = base + c * stride + col
            a0 = a0.addingProduct(g[c], loadVec(p)); a1 = a1.addingProduct(g[c + 1], loadVec(p + stride))
            a2 = a2.addingProduct(g[c + 2], loadVec(p + 2 * stride)); a3 = a3.addingProduct(g[c + 3], loadVec(p + 3 * stride))
            if pair {
                b0 = b0.addingProduct(g[c], loadVec(p + 8)); b1 = b1.addingProduct(g[c + 1], loadVec(p + stride + 8))
                b2 = b2.addingProduct(g[c + 2], loadVec(p + 2 * stride + 8))
                b3 = b3.addingProduct(g[c + 3], loadVec(p + 3 * stride + 8))
            }
            c += 4
        }
        while c < count {
            let p = base + c * stride + col
            a0 = a0.addingProduct(g[c], loadVec(p))
            if pair { b0 = b0.addingProduct(g[c], loadVec(p + 8)) }
            c += 1
        }
        storeVec((a0 + a1) + (a2 + a3), out + col)
        if pair { storeVec((b0 + b1) + (b2 + b3), out + col + 8) }
        col += pair ? 16 : 8
    }
}

/// G[i] += g_n for every unit i listed at step n (a weight gradient sum_n s_n^T g_n).
@inline(__always)
func addSpikeRows(_ spikes: SpikeLists, steps: Int, g: UnsafePointer<Float>, width: Int,
                  into G: UnsafeMutablePointer<Float>) {
    for n in 0..<steps {
        let (list, count) = spikes.at(n)
        for e in 0..<count { addVec(g + n * width, into: G + Int(list[e]) * width, width: width) }
    }
}

// MARK: - entry points of the typed API

private func prepare(_ spec: NetworkSpec, _ params: NetworkParameters, _ data: EventData) throws {
    try spec.validate()
    try params.validate(spec)
    try require(data.steps == spec.steps, "events have \(data.steps) steps, the network expects \(spec.steps)")
    try require(data.nIn == spec.nIn, "events have \(data.nIn) inputs, the network expects n_in = \(spec.nIn)")
}

/// Forward pass of the general network (no dropout) over a batch of samples of `data`.
public func networkForward(_ spec: NetworkSpec, _ params: NetworkParameters, _ data: EventData,
                           index: UnsafePointer<Int64>?, batch: Int, outputs: NetworkOutputs,
                           threads: Int) throws {
    try prepare(spec, params, data)
    let threads = try resolveThreads(threads)
    let samples = try data.batchSamples(index, batch: batch)
    let units = spec.hidden.reduce(0, +)
    _ = try checkedProduct(batch, spec.steps, Swift.max(units, spec.nOut), what: "recordings")
    let kernel = try GeneralKernel(spec, params, data, training: false)
    let T = spec.steps, C = spec.nOut, Cp = kernel.Cp, o = kernel.head.offset
    let failures = try TaskFailures(batch)
    try parallelFor(batch, threads: threads, makeContext: kernel.workspace) { ws, b in
        guard data.validateSample(samples[b]) else { failures.fail(b); return }
        kernel.forward(sample: samples[b], ws, recordMembrane: true)
        let buffers = unsafeDowncast(ws.extra!, to: GeneralBuffers.self)
        for c in 0..<C { outputs.logits[b * C + c] = Float(ws.m.pointer[c]) }
        if let mem = outputs.outputMembrane {
            let (U, first) = buffers.readout.spiking.map { ($0.V.pointer, 0) } ?? (buffers.readout.R.pointer, o)
            for n in 0..<T { for c in 0..<C { mem[(b * T + n) * C + c] = U[(first + n) * Cp + c] } }
        }
        if let hs = outputs.hiddenSpikes {
            var column = 0
            for (l, layer) in buffers.layers.enumerated() {
                let N = spec.hidden[l], width = kernel.widths[l], S = layer.S.pointer
                for n in 0..<T {
                    let row = hs + (b * T + n) * units + column
                    for j in 0..<N { row[j] = S[(o + n) * width + j] > 0 ? 1 : 0 }
                }
                column += N
            }
        }
    }
    if !failures.failed.isEmpty { throw data.corruption(samples) }
}

/// Loss (mean over the batch, plus the rate penalty) and gradients of the general network:
/// raw weights (Dale's law applied), bias, delays and, where asked, the time constants.
public func networkLossGrad(_ spec: NetworkSpec, _ params: NetworkParameters, _ data: EventData,
                            index: UnsafePointer<Int64>?, batch: Int, labels: UnsafePointer<Int64>,
                            gradients: NetworkGradients, logits: UnsafeMutablePointer<Float>?,
                            threads: Int) throws -> Double {
    try prepare(spec, params, data)
    let L = spec.layers
    try require(gradients.w.count == L + 1 && gradients.wRec.count == L && gradients.tau.count == L + 1,
                "gradient lists do not match the number of layers")
    for l in 0..<L {
        try require(!spec.recurrent[l] || gradients.wRec[l] != nil, "grad_w_rec[\(l)] must be given for a recurrent layer")
    }
    try require(spec.delays == .none || gradients.delays != nil, "grad_delays must be given for a network with delays")
    let samples = try data.batchSamples(index, batch: batch)
    try checkLabels(labels, batch: batch, classes: spec.nOut)
    let kernel = try GeneralKernel(spec, params, data, training: true)
    // where the batch driver writes each partial sum
    let projection = kernel.projection
    let lagged = try Scratch<Float>(try checkedProduct(projection.gradientRows, projection.cols, what: "delay gradients"),
                                    what: "delay gradients")
    let bias = try Scratch<Float>(spec.nOut, what: "bias gradient")
    let decays = try kernel.slotDecay.map { try Scratch<Float>(kernel.gradients[$0].cols, what: "decay gradients") }
    var outputs = [UnsafeMutablePointer<Float>](repeating: bias.pointer, count: kernel.gradients.count)
    outputs[kernel.slotW[0]] = spec.delays == .none ? gradients.w[0] : lagged.pointer
    for l in Swift.stride(from: 1, through: L, by: 1) { outputs[kernel.slotW[l]] = gradients.w[l] }
    for l in 0..<L { if let slot = kernel.slotRec[l] { outputs[slot] = gradients.wRec[l]! } }
    outputs[kernel.slotB] = gradients.b ?? bias.pointer
    for (slot, scratch) in zip(kernel.slotDecay, decays) { outputs[slot] = scratch.pointer }
    let loss = try lossAndGradients(kernel, data, samples: samples, labels: labels, into: outputs, logits: logits,
                                    threads: try resolveThreads(threads))
    if spec.delays != .none {
        projection.finish(lagged.pointer, gradW: gradients.w[0], gradDelays: gradients.delays)
    }
    for l in 0...L {
        let (r, c) = spec.shape(l)
        daleGradient(gradients.w[l], w: params.w[l], rows: r, cols: c, sign: params.sign[l])
        if l < L, let g = gradients.wRec[l], let w = params.wRec[l] {
            daleGradient(g, w: w, rows: spec.hidden[l], cols: spec.hidden[l], sign: params.signRec[l])
        }
    }
    for l in 0...L {
        guard let out = gradients.tau[l] else { continue }
        let layer = l == L ? kernel.head.output : kernel.layers[l]
        layer.tauGradient(decays[l].pointer, dt: spec.dt, count: l == L ? spec.nOut : spec.hidden[l], into: out)
    }
    return loss
}
