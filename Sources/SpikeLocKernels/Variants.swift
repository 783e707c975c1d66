// Research variants of the spiking network (MODEL.md section 4): resets (delayed, same-step,
// subtractive, zero), surrogates (sigmoid, fast sigmoid, arctan, piecewise linear), per-neuron time
// constants with their gradients, an adaptive threshold, Dale's law, spiking output units read
// out by spike count, the hidden firing-rate regulariser and dropout on hidden spikes. They are
// the general network (GeneralNetwork.swift) with one feed-forward hidden layer; this file
// holds their options and the typed API of that two-layer case. The default network keeps its
// tuned fast path (Network.swift).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ResetKind: Int32 {
    case delayed = 0, sameStep = 1, subtractive = 2, zero = 3
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

/// Dale's signs: +1 or -1 per row (and 0, a free row, where `free`).
func checkSigns(_ sign: UnsafePointer<Float>, _ n: Int, _ name: String, free: Bool = false) throws {
    for i in 0..<n {
        try require(sign[i] == 1 || sign[i] == -1 || (free && sign[i] == 0),
                    "\(name)[\(i)] must be +1 or -1\(free ? " (or 0: unconstrained)" : ""), got \(sign[i])")
    }
}

/// Dale's law: W_eff = |W| * sign (a sign per row; sign 0 leaves the row as it is), or nil
/// (use W itself) without signs.
func daleEffective(_ w: UnsafePointer<Float>, rows: Int, cols: Int, sign: UnsafePointer<Float>?,
                   name: String) throws -> Scratch<Float>? {
    guard let sign else { return nil }
    let out = try Scratch<Float>(try checkedProduct(rows, cols, what: name), what: name)
    for i in 0..<rows {
        for j in 0..<cols {
            let x = w[i * cols + j]
            out.pointer[i * cols + j] = sign[i] == 0 ? x : Swift.abs(x) * sign[i]
        }
    }
    return out
}

/// dW = dW_eff * sign * sgn(W), sgn(0) = 0 (a weight at exactly 0 stays culled), in place;
/// rows with sign 0 keep dW_eff.
func daleGradient(_ g: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, rows: Int, cols: Int,
                  sign: UnsafePointer<Float>?) {
    guard let sign else { return }
    for i in 0..<rows where sign[i] != 0 {
        for j in 0..<cols {
            let x = w[i * cols + j]
            let sgn: Float = x > 0 ? 1 : (x < 0 ? -1 : 0)
            g[i * cols + j] *= sign[i] * sgn
        }
    }
}

/// The general network of a variant configuration: one feed-forward hidden layer.
func variantNetwork(_ config: NetConfig, _ options: VariantOptions, w1: UnsafePointer<Float>,
                    w2: UnsafePointer<Float>) -> (NetworkSpec, NetworkParameters) {
    var spec = NetworkSpec(nIn: config.nIn, nOut: config.nOut, steps: config.steps, dt: config.dt)
    spec.hidden = [config.nHidden]; spec.recurrent = [false]
    spec.tauHidden = [config.tauHidden]; spec.tauOutput = config.tauOutput
    spec.reset = options.reset; spec.surrogate = options.surrogate; spec.beta = config.beta
    spec.adaptTau = options.adaptTau; spec.adaptStrength = options.adaptStrength
    spec.head = options.spikeCount ? .spikeCount : Head(rawValue: config.readout.rawValue)!
    if options.rateC > 0 { spec.rate = .upper; spec.rateC = options.rateC; spec.rateRef = options.rateMax }
    spec.dropout = options.dropout; spec.dropoutSeed = options.dropoutSeed
    let params = NetworkParameters(w: [w1, w2], wRec: [nil], tau: [options.tauHidden, options.tauOutput],
                                   sign: [options.signW1, options.signW2], signRec: [nil])
    return (spec, params)
}

/// Forward pass of the general network (no dropout). `outputMembrane` records u (membrane
/// readouts) or the output LIF voltages (spike-count readout).
public func variantForward(_ config: NetConfig, _ options: VariantOptions, _ data: EventData,
                           index: UnsafePointer<Int64>?, batch: Int, w1: UnsafePointer<Float>,
                           w2: UnsafePointer<Float>, outputs: ForwardOutputs, threads: Int) throws {
    try config.validate(hidden: true)
    try options.validate(config)
    let (spec, params) = variantNetwork(config, options, w1: w1, w2: w2)
    try networkForward(spec, params, data, index: index, batch: batch,
                       outputs: NetworkOutputs(logits: outputs.logits, hiddenSpikes: outputs.hiddenSpikes,
                                               outputMembrane: outputs.outputMembrane),
                       threads: threads)
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
    let (spec, params) = variantNetwork(config, options, w1: w1, w2: w2)
    let grads = NetworkGradients(w: [gradients.w1, gradients.w2], wRec: [nil],
                                 tau: [gradients.tauHidden, gradients.tauOutput])
    return try networkLossGrad(spec, params, data, index: index, batch: batch, labels: labels, gradients: grads,
                               logits: logits, threads: threads)
}
