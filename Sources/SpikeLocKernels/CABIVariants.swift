// The C ABI of the research variants (spikeloc.h, "research variants"). Nothing here may trap.
import CSpikeLoc

func variantConfig(_ c: UnsafePointer<spk_net_config>?, _ o: UnsafePointer<spk_variant_options>?) throws
    -> (NetConfig, VariantOptions) {
    let raw = try unwrap(c, "config").pointee
    let spikeCount = raw.readout == SPK_READOUT_SPIKE_COUNT
    guard spikeCount || Readout(rawValue: raw.readout) != nil else {
        throw KernelError.value("readout must be 0 (mean), 1 (sum), 2 (max) or 3 (spike count), got \(raw.readout)")
    }
    let config = NetConfig(nIn: Int(raw.n_in), nHidden: Int(raw.n_hidden), nOut: Int(raw.n_out), steps: Int(raw.steps),
                           dt: raw.dt, tauHidden: raw.tau_hidden, tauOutput: raw.tau_output,
                           readout: Readout(rawValue: raw.readout) ?? .mean, beta: raw.beta)
    let p = try unwrap(o, "options").pointee
    var options = VariantOptions()
    guard let reset = ResetKind(rawValue: p.reset) else {
        throw KernelError.value("options.reset must be 0 (delayed), 1 (same step), 2 (subtractive) or 3 (zero), got \(p.reset)")
    }
    guard let surrogate = SurrogateKind(rawValue: p.surrogate) else {
        throw KernelError.value("options.surrogate must be 0 (sigmoid), 1 (fast sigmoid), 2 (arctan) or 3 (piecewise linear), got \(p.surrogate)")
    }
    options.reset = reset; options.surrogate = surrogate; options.spikeCount = spikeCount
    options.adaptTau = p.adapt_tau; options.adaptStrength = p.adapt_strength
    options.tauHidden = p.tau_hidden; options.tauOutput = p.tau_output
    options.signW1 = p.sign_w1; options.signW2 = p.sign_w2
    options.rateC = p.rate_c; options.rateMax = p.rate_max
    options.dropout = p.dropout; options.dropoutSeed = p.dropout_seed
    // sizes first: the option arrays are read with the config's sizes
    try config.validate(hidden: true)
    return (config, options)
}

@_cdecl("spk_variant_forward")
public func spk_variant_forward(_ config: UnsafePointer<spk_net_config>?, _ options: UnsafePointer<spk_variant_options>?,
                                _ x: UnsafePointer<spk_events>?, _ index: UnsafePointer<Int64>?, _ batch: Int64,
                                _ w1: UnsafePointer<Float>?, _ w2: UnsafePointer<Float>?,
                                _ logits: UnsafeMutablePointer<Float>?, _ hiddenSpikes: UnsafeMutablePointer<UInt8>?,
                                _ outputMembrane: UnsafeMutablePointer<Float>?, _ threads: Int32) -> Int32 {
    guarded {
        let (c, o) = try variantConfig(config, options)
        try variantForward(c, o, try eventData(x), index: index, batch: Int(batch),
                           w1: try unwrap(w1, "w1"), w2: try unwrap(w2, "w2"),
                           outputs: ForwardOutputs(logits: try unwrap(logits, "logits"), hiddenSpikes: hiddenSpikes,
                                                   outputMembrane: outputMembrane),
                           threads: Int(threads))
    }
}

@_cdecl("spk_variant_loss_grad")
public func spk_variant_loss_grad(_ config: UnsafePointer<spk_net_config>?, _ options: UnsafePointer<spk_variant_options>?,
                                  _ x: UnsafePointer<spk_events>?, _ index: UnsafePointer<Int64>?, _ batch: Int64,
                                  _ labels: UnsafePointer<Int64>?, _ w1: UnsafePointer<Float>?,
                                  _ w2: UnsafePointer<Float>?, _ loss: UnsafeMutablePointer<Double>?,
                                  _ gradW1: UnsafeMutablePointer<Float>?, _ gradW2: UnsafeMutablePointer<Float>?,
                                  _ gradTauHidden: UnsafeMutablePointer<Float>?, _ gradTauOutput: UnsafeMutablePointer<Float>?,
                                  _ logits: UnsafeMutablePointer<Float>?, _ threads: Int32) -> Int32 {
    guarded {
        let (c, o) = try variantConfig(config, options)
        let lossOut = try unwrap(loss, "loss")
        let grads = VariantGradients(w1: try unwrap(gradW1, "grad_w1"), w2: try unwrap(gradW2, "grad_w2"),
                                     tauHidden: gradTauHidden, tauOutput: gradTauOutput)
        lossOut.pointee = try variantLossGrad(c, o, try eventData(x), index: index, batch: Int(batch),
                                              labels: try unwrap(labels, "labels"), w1: try unwrap(w1, "w1"),
                                              w2: try unwrap(w2, "w2"), gradients: grads, logits: logits,
                                              threads: Int(threads))
    }
}
