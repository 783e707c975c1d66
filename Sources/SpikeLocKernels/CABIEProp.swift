// The C ABI of the e-prop network (spikeloc.h, section "e-prop"). Every entry point catches
// every error (see CABI.swift); nothing here may trap.
import CSpikeLoc

func epropConfig(_ c: UnsafePointer<spk_eprop_config>?) throws -> EPropConfig {
    let c = try unwrap(c, "config").pointee
    guard let loss = EPropLoss(rawValue: c.loss) else {
        throw KernelError.value("loss must be 0 (cross-entropy) or 1 (mse), got \(c.loss)")
    }
    for (value, name) in [(c.n_in, "n_in"), (c.n_hidden, "n_hidden"), (c.n_out, "n_out"), (c.steps, "steps"),
                          (c.window, "window")] {
        try require(value >= 1 && value <= Int64(Int32.max), "\(name) must be in [1, \(Int32.max)], got \(value)")
    }
    return EPropConfig(nIn: Int(c.n_in), nHidden: Int(c.n_hidden), nOut: Int(c.n_out), steps: Int(c.steps),
                       window: Int(c.window), dt: c.dt, tauM: c.tau_m, tauOut: c.tau_out, vTh: c.v_th,
                       gamma: c.gamma, regC: c.reg_c, fTarget: c.f_target, loss: loss, recurrent: c.recurrent != 0)
}

func epropWeights(_ config: EPropConfig, wIn: UnsafePointer<Float>?, wRec: UnsafePointer<Float>?,
                  wOut: UnsafePointer<Float>?, b: UnsafePointer<Float>?, feedback: UnsafePointer<Float>?) throws -> EPropWeights {
    EPropWeights(wIn: try unwrap(wIn, "w_in"), wRec: config.recurrent ? try unwrap(wRec, "w_rec") : nil,
                 wOut: try unwrap(wOut, "w_out"), b: try unwrap(b, "b"), feedback: feedback)
}

@_cdecl("spk_eprop_forward")
public func spk_eprop_forward(_ config: UnsafePointer<spk_eprop_config>?, _ x: UnsafePointer<spk_events>?,
                              _ index: UnsafePointer<Int64>?, _ batch: Int64, _ labels: UnsafePointer<Int64>?,
                              _ wIn: UnsafePointer<Float>?, _ wRec: UnsafePointer<Float>?,
                              _ wOut: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?,
                              _ feedback: UnsafePointer<Float>?, _ logits: UnsafeMutablePointer<Float>?,
                              _ voltage: UnsafeMutablePointer<Float>?, _ spikes: UnsafeMutablePointer<UInt8>?,
                              _ psi: UnsafeMutablePointer<Float>?, _ learningSignal: UnsafeMutablePointer<Float>?,
                              _ readout: UnsafeMutablePointer<Float>?, _ threads: Int32) -> Int32 {
    guarded {
        let c = try epropConfig(config)
        try epropForward(c, try eventData(x), index: index, batch: Int(batch), labels: labels,
                         weights: try epropWeights(c, wIn: wIn, wRec: wRec, wOut: wOut, b: b, feedback: feedback),
                         logits: try unwrap(logits, "logits"),
                         recordings: EPropRecordings(voltage: voltage, spikes: spikes, psi: psi,
                                                     learningSignal: learningSignal, readout: readout),
                         threads: Int(threads))
    }
}

@_cdecl("spk_eprop_loss_grad")
public func spk_eprop_loss_grad(_ config: UnsafePointer<spk_eprop_config>?, _ x: UnsafePointer<spk_events>?,
                                _ index: UnsafePointer<Int64>?, _ batch: Int64, _ labels: UnsafePointer<Int64>?,
                                _ wIn: UnsafePointer<Float>?, _ wRec: UnsafePointer<Float>?,
                                _ wOut: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?,
                                _ feedback: UnsafePointer<Float>?, _ maskIn: UnsafePointer<UInt8>?,
                                _ maskRec: UnsafePointer<UInt8>?, _ maskOut: UnsafePointer<UInt8>?,
                                _ loss: UnsafeMutablePointer<Double>?, _ gradIn: UnsafeMutablePointer<Float>?,
                                _ gradRec: UnsafeMutablePointer<Float>?, _ gradOut: UnsafeMutablePointer<Float>?,
                                _ gradB: UnsafeMutablePointer<Float>?, _ logits: UnsafeMutablePointer<Float>?,
                                _ threads: Int32) -> Int32 {
    guarded {
        let c = try epropConfig(config)
        let lossOut = try unwrap(loss, "loss")
        let grads = EPropGradients(wIn: try unwrap(gradIn, "grad_w_in"),
                                   wRec: c.recurrent ? try unwrap(gradRec, "grad_w_rec") : nil,
                                   wOut: try unwrap(gradOut, "grad_w_out"), b: try unwrap(gradB, "grad_b"))
        lossOut.pointee = try epropLossGrad(
            c, try eventData(x), index: index, batch: Int(batch), labels: try unwrap(labels, "labels"),
            weights: try epropWeights(c, wIn: wIn, wRec: wRec, wOut: wOut, b: b, feedback: try unwrap(feedback, "feedback")),
            masks: EPropMasks(wIn: maskIn, wRec: c.recurrent ? maskRec : nil, wOut: maskOut),
            gradients: grads, logits: logits, threads: Int(threads))
    }
}
