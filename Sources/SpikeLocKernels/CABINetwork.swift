// The C ABI of the general network (spikeloc.h, "the general network"): the config struct, the
// layout of the flat parameter and sign vectors, and the entry points. Nothing here may trap.
import CSpikeLoc

func networkSpec(_ p: UnsafePointer<spk_network>?) throws -> NetworkSpec {
    let raw = try unwrap(p, "net").pointee
    try require(raw.n_layers >= 0 && raw.n_layers <= 64, "net.n_layers must be in [0, 64], got \(raw.n_layers)")
    let L = Int(raw.n_layers)
    var spec = NetworkSpec(nIn: Int(raw.n_in), nOut: Int(raw.n_out), steps: Int(raw.steps), dt: raw.dt)
    if L > 0 {
        let sizes = try unwrap(raw.hidden, "net.hidden"), flags = try unwrap(raw.recurrent, "net.recurrent")
        for l in 0..<L {
            try require(flags[l] == 0 || flags[l] == 1, "net.recurrent[\(l)] must be 0 or 1, got \(flags[l])")
            try require(sizes[l] >= 1 && sizes[l] <= 1 << 16, "net.hidden[\(l)] must be in [1, 65536], got \(sizes[l])")
            spec.hidden.append(Int(sizes[l])); spec.recurrent.append(flags[l] == 1)
        }
    }
    func code<E: RawRepresentable>(_ value: Int32, _ name: String, _ choices: String) throws -> E where E.RawValue == Int32 {
        guard let e = E(rawValue: value) else { throw KernelError.value("net.\(name) must be \(choices), got \(value)") }
        return e
    }
    spec.reset = try code(raw.reset, "reset", "0 (delayed), 1 (same step), 2 (subtractive) or 3 (zero)")
    spec.surrogate = try code(raw.surrogate, "surrogate", "0 (sigmoid), 1 (fast sigmoid), 2 (arctan) or 3 (piecewise linear)")
    spec.head = try code(raw.readout, "readout", "0 (mean), 1 (sum), 2 (max), 3 (spike count) or 4 (window)")
    spec.windowLoss = try code(raw.window_loss, "window_loss", "0 (cross-entropy) or 1 (mse)")
    spec.timing = try code(raw.timing, "timing", "0 (seeds) or 1 (e-prop)")
    spec.delays = try code(raw.delays, "delays", "0 (none), 1 (per input) or 2 (per synapse)")
    spec.rate = try code(raw.rate, "rate", "0 (none), 1 (upper) or 2 (target)")
    spec.beta = raw.beta
    spec.detachReset = raw.detach_reset != 0
    spec.adaptTau = raw.adapt_tau; spec.adaptStrength = raw.adapt_strength
    try require(raw.window >= 0 && raw.window <= Int64(EventData.maxSteps), "net.window must be in [0, 65535], got \(raw.window)")
    spec.window = Int(raw.window)
    spec.bias = raw.bias != 0
    try require(raw.max_delay >= 0 && raw.max_delay <= Int64(EventData.maxSteps),
                "net.max_delay must be in [0, 65535], got \(raw.max_delay)")
    spec.maxDelay = Int(raw.max_delay)
    spec.rateC = raw.rate_c; spec.rateRef = raw.rate_ref
    spec.dropout = raw.dropout; spec.dropoutSeed = raw.dropout_seed
    // the time constants are per neuron in the parameter vector; these scalars are never read
    spec.tauHidden = [Double](repeating: 1, count: L); spec.tauOutput = 1
    try spec.validate()
    return spec
}

/// Offsets of the blocks of the flat parameter vector (spikeloc.h) and of the sign vector.
struct ParameterLayout {
    var w: [Int] = [], wRec: [Int?] = [], b: Int? = nil, delays: Int? = nil, tau: [Int] = []
    var sign: [Int] = [], signRec: [Int?] = []
    var count = 0, signCount = 0

    init(_ spec: NetworkSpec) throws {
        let L = spec.layers
        func take(_ rows: Int, _ cols: Int) throws -> Int {
            let start = count
            let (sum, overflow) = count.addingReportingOverflow(try checkedProduct(rows, cols, what: "parameters"))
            try require(!overflow && sum <= 1 << 40, "the network has too many parameters")
            count = sum
            return start
        }
        func takeSigns(_ rows: Int) -> Int { defer { signCount += rows }; return signCount }
        for l in 0...L {
            let (r, c) = spec.shape(l)
            w.append(try take(r, c)); sign.append(takeSigns(r))
            if l < L {
                if spec.recurrent[l] {
                    wRec.append(try take(c, c)); signRec.append(takeSigns(c))
                } else {
                    wRec.append(nil); signRec.append(nil)
                }
            }
        }
        if spec.bias { b = try take(1, spec.nOut) }
        switch spec.delays {
        case .none: break
        case .perInput: delays = try take(spec.nIn, 1)
        case .perSynapse: delays = try take(spec.nIn, spec.shape(0).cols)
        }
        for l in 0..<L { tau.append(try take(1, spec.hidden[l])) }
        tau.append(try take(1, spec.nOut))
    }

    func parameters(_ p: UnsafePointer<Float>, signs: UnsafePointer<Float>?) -> NetworkParameters {
        NetworkParameters(w: w.map { p + $0 }, wRec: wRec.map { $0.map { p + $0 } }, b: b.map { p + $0 },
                          delays: delays.map { p + $0 }, tau: tau.map { p + $0 },
                          sign: sign.map { o in signs.map { $0 + o } },
                          signRec: signRec.map { o in o.flatMap { o in signs.map { $0 + o } } })
    }

    func gradients(_ g: UnsafeMutablePointer<Float>) -> NetworkGradients {
        NetworkGradients(w: w.map { g + $0 }, wRec: wRec.map { $0.map { g + $0 } }, b: b.map { g + $0 },
                         delays: delays.map { g + $0 }, tau: tau.map { g + $0 })
    }

    func check(params n: Int64, signs: UnsafePointer<Float>?, _ nSigns: Int64) throws {
        try require(n == Int64(count), "n_params must be \(count) for this network, got \(n)")
        if signs != nil { try require(nSigns == Int64(signCount), "n_signs must be \(signCount) for this network, got \(nSigns)") }
    }

    /// Runs `body` on a private copy of the caller's parameters and signs. The kernels check
    /// the parameters (delays in [0, max_delay], finite time constants) and read them again
    /// later; another thread writing to the caller's array in between must not turn a checked
    /// delay into an index out of range. The copy costs one pass over the parameters, little
    /// against a batch's work.
    func withPrivateCopy<R>(_ params: UnsafePointer<Float>?, signs: UnsafePointer<Float>?,
                            _ body: (NetworkParameters) throws -> R) throws -> R {
        let p = try unwrap(params, "params")
        var copy = [Float](UnsafeBufferPointer(start: p, count: count))
        if let signs { copy.append(contentsOf: UnsafeBufferPointer(start: signs, count: signCount)) }
        return try copy.withUnsafeBufferPointer { all in
            guard let base = all.baseAddress else { throw KernelError.value("the network has no parameters") }
            return try body(parameters(base, signs: signs == nil ? nil : base + count))
        }
    }
}

@_cdecl("spk_network_sizes")
public func spk_network_sizes(_ net: UnsafePointer<spk_network>?, _ nParams: UnsafeMutablePointer<Int64>?,
                              _ nSigns: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let layout = try ParameterLayout(try networkSpec(net))
        let n = try unwrap(nParams, "n_params"), s = try unwrap(nSigns, "n_signs")
        n.pointee = Int64(layout.count); s.pointee = Int64(layout.signCount)
    }
}

@_cdecl("spk_network_forward")
public func spk_network_forward(_ net: UnsafePointer<spk_network>?, _ x: UnsafePointer<spk_events>?,
                                _ index: UnsafePointer<Int64>?, _ batch: Int64, _ params: UnsafePointer<Float>?,
                                _ nParams: Int64, _ signs: UnsafePointer<Float>?, _ nSigns: Int64,
                                _ logits: UnsafeMutablePointer<Float>?, _ hiddenSpikes: UnsafeMutablePointer<UInt8>?,
                                _ outputMembrane: UnsafeMutablePointer<Float>?, _ threads: Int32) -> Int32 {
    guarded {
        let spec = try networkSpec(net)
        let layout = try ParameterLayout(spec)
        try layout.check(params: nParams, signs: signs, nSigns)
        let outputs = NetworkOutputs(logits: try unwrap(logits, "logits"), hiddenSpikes: hiddenSpikes,
                                     outputMembrane: outputMembrane)
        try layout.withPrivateCopy(params, signs: signs) { parameters in
            try networkForward(spec, parameters, try eventData(x), index: index, batch: Int(batch),
                               outputs: outputs, threads: Int(threads))
        }
    }
}

@_cdecl("spk_network_loss_grad")
public func spk_network_loss_grad(_ net: UnsafePointer<spk_network>?, _ x: UnsafePointer<spk_events>?,
                                  _ index: UnsafePointer<Int64>?, _ batch: Int64, _ labels: UnsafePointer<Int64>?,
                                  _ params: UnsafePointer<Float>?, _ nParams: Int64, _ signs: UnsafePointer<Float>?,
                                  _ nSigns: Int64, _ loss: UnsafeMutablePointer<Double>?,
                                  _ grads: UnsafeMutablePointer<Float>?, _ logits: UnsafeMutablePointer<Float>?,
                                  _ threads: Int32) -> Int32 {
    guarded {
        let spec = try networkSpec(net)
        let layout = try ParameterLayout(spec)
        try layout.check(params: nParams, signs: signs, nSigns)
        let lossOut = try unwrap(loss, "loss")
        let labels = try unwrap(labels, "labels"), gradients = layout.gradients(try unwrap(grads, "grads"))
        lossOut.pointee = try layout.withPrivateCopy(params, signs: signs) { parameters in
            try networkLossGrad(spec, parameters, try eventData(x), index: index, batch: Int(batch), labels: labels,
                                gradients: gradients, logits: logits, threads: Int(threads))
        }
    }
}
