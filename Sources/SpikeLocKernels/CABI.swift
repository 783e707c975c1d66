// The C ABI (Sources/CSpikeLoc/include/spikeloc.h): argument checks, status codes and the
// last-error message. Every entry point catches every error; nothing here may trap.
import CSpikeLoc

/// Runs `body`, turning a thrown error into a status code and the thread's last-error message.
@inline(__always) func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return SPK_OK
    } catch let error as KernelError {
        spk_set_error(error.message)
        return error.kind.rawValue
    } catch {
        spk_set_error("\(error)")
        return SPK_ERR_VALUE
    }
}

@inline(__always) func unwrap<T>(_ p: T?, _ name: String) throws -> T {
    guard let p else { throw KernelError.null(name) }
    return p
}

@_cdecl("spk_abi_version") public func spk_abi_version() -> Int32 { SPK_ABI_VERSION }

@_cdecl("spk_default_threads") public func spk_default_threads() -> Int32 { Int32(clamping: onlineCPUs()) }

@_cdecl("spk_kernel_variant") public func spk_kernel_variant() -> UnsafePointer<CChar> {
    UnsafeRawPointer(buildVariant.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: - random numbers

@_cdecl("spk_uniform53")
public func spk_uniform53(_ seed: UInt64, _ firstIndex: Int64, _ word: UInt64, _ n: Int64,
                          _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded {
        try require(n >= 0, "n must be >= 0, got \(n)")
        // the last stream is first_index + n - 1 (SPK_SET_INDEX = INT64_MAX itself is valid)
        try require(firstIndex >= 0 && (n == 0 || firstIndex <= Int64.max - (n - 1)),
                    "first_index must be >= 0 and first_index + n - 1 must not overflow")
        let out = try unwrap(out, "out")
        for b in 0..<Int(n) {
            out[b] = CounterRNG.uniform53(key: CounterRNG.key(seed: seed, index: UInt64(firstIndex) + UInt64(b)), word: word)
        }
    }
}

@_cdecl("spk_stimulus_uniforms")
public func spk_stimulus_uniforms(_ seed: UInt64, _ index: Int64, _ n: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded {
        try require(n >= 0, "n must be >= 0, got \(n)")
        try require(index >= 0, "index must be >= 0, got \(index)")
        let out = try unwrap(out, "out")
        let key = CounterRNG.key(seed: seed, index: UInt64(index))
        for e in 0..<Int(n) { out[e] = Float(CounterRNG.stimulusBits(key: key, element: UInt64(e))) * 0x1p-24 }
    }
}

// MARK: - events

func eventData(_ e: UnsafePointer<spk_events>?) throws -> EventData {
    let e = try unwrap(e, "events").pointee
    return EventData(nSamples: Int(e.n_samples), steps: Int(e.steps), nIn: Int(e.n_in), nEvents: Int(e.n_events),
                     stepPtr: try unwrap(e.step_ptr, "events.step_ptr"),
                     stepEvents: try unwrap(e.step_events, "events.step_events"),
                     inputPtr: try unwrap(e.input_ptr, "events.input_ptr"),
                     inputEvents: try unwrap(e.input_events, "events.input_events"))
}

@_cdecl("spk_events_index")
public func spk_events_index(_ x: UnsafePointer<UInt8>?, _ n: Int64, _ steps: Int64, _ nIn: Int64,
                             _ stepPtr: UnsafeMutablePointer<Int64>?, _ inputPtr: UnsafeMutablePointer<Int64>?,
                             _ threads: Int32) -> Int32 {
    guarded {
        try indexEvents(try unwrap(x, "x"), n: Int(n), steps: Int(steps), nIn: Int(nIn),
                        stepPtr: try unwrap(stepPtr, "step_ptr"), inputPtr: try unwrap(inputPtr, "input_ptr"),
                        threads: Int(threads))
    }
}

@_cdecl("spk_events_fill")
public func spk_events_fill(_ x: UnsafePointer<UInt8>?, _ n: Int64, _ steps: Int64, _ nIn: Int64,
                            _ stepPtr: UnsafePointer<Int64>?, _ inputPtr: UnsafePointer<Int64>?,
                            _ stepEvents: UnsafeMutablePointer<UInt16>?, _ inputEvents: UnsafeMutablePointer<UInt16>?,
                            _ threads: Int32) -> Int32 {
    guarded {
        try fillEvents(try unwrap(x, "x"), n: Int(n), steps: Int(steps), nIn: Int(nIn),
                       stepPtr: try unwrap(stepPtr, "step_ptr"), inputPtr: try unwrap(inputPtr, "input_ptr"),
                       stepEvents: try unwrap(stepEvents, "step_events"), inputEvents: try unwrap(inputEvents, "input_events"),
                       threads: Int(threads))
    }
}

@_cdecl("spk_events_to_dense")
public func spk_events_to_dense(_ events: UnsafePointer<spk_events>?, _ x: UnsafeMutablePointer<UInt8>?,
                                _ threads: Int32) -> Int32 {
    guarded { try eventsToDense(try eventData(events), try unwrap(x, "x"), threads: Int(threads)) }
}

// MARK: - networks

func netConfig(_ c: UnsafePointer<spk_net_config>?) throws -> NetConfig {
    let c = try unwrap(c, "config").pointee
    guard let readout = Readout(rawValue: c.readout) else {
        throw KernelError.value("readout must be 0 (mean), 1 (sum) or 2 (max), got \(c.readout)")
    }
    return NetConfig(nIn: Int(c.n_in), nHidden: Int(c.n_hidden), nOut: Int(c.n_out), steps: Int(c.steps), dt: c.dt,
                     tauHidden: c.tau_hidden, tauOutput: c.tau_output, readout: readout, beta: c.beta)
}

// N_h = 0 is the membrane-only network (spikeloc.h): w2, N_in x C, drives the readout directly.

@_cdecl("spk_snn_forward")
public func spk_snn_forward(_ config: UnsafePointer<spk_net_config>?, _ x: UnsafePointer<spk_events>?,
                            _ index: UnsafePointer<Int64>?, _ batch: Int64, _ w1: UnsafePointer<Float>?,
                            _ w2: UnsafePointer<Float>?, _ logits: UnsafeMutablePointer<Float>?,
                            _ hiddenSpikes: UnsafeMutablePointer<UInt8>?, _ outputMembrane: UnsafeMutablePointer<Float>?,
                            _ threads: Int32) -> Int32 {
    guarded {
        let c = try netConfig(config), data = try eventData(x)
        if c.nHidden == 0 {
            return try membraneOnlyForward(c, data, index: index, batch: Int(batch), w: try unwrap(w2, "w2"),
                                           logits: try unwrap(logits, "logits"), outputMembrane: outputMembrane,
                                           threads: Int(threads))
        }
        try snnForward(c, data, index: index, batch: Int(batch), w1: try unwrap(w1, "w1"), w2: try unwrap(w2, "w2"),
                       outputs: ForwardOutputs(logits: try unwrap(logits, "logits"), hiddenSpikes: hiddenSpikes,
                                               outputMembrane: outputMembrane),
                       threads: Int(threads))
    }
}

@_cdecl("spk_snn_loss_grad")
public func spk_snn_loss_grad(_ config: UnsafePointer<spk_net_config>?, _ x: UnsafePointer<spk_events>?,
                              _ index: UnsafePointer<Int64>?, _ batch: Int64, _ labels: UnsafePointer<Int64>?,
                              _ w1: UnsafePointer<Float>?, _ w2: UnsafePointer<Float>?, _ loss: UnsafeMutablePointer<Double>?,
                              _ gradW1: UnsafeMutablePointer<Float>?, _ gradW2: UnsafeMutablePointer<Float>?,
                              _ logits: UnsafeMutablePointer<Float>?, _ threads: Int32) -> Int32 {
    guarded {
        let lossOut = try unwrap(loss, "loss"), c = try netConfig(config), data = try eventData(x)
        let labels = try unwrap(labels, "labels"), w2 = try unwrap(w2, "w2"), gradW2 = try unwrap(gradW2, "grad_w2")
        if c.nHidden == 0 {
            lossOut.pointee = try membraneOnlyLossGrad(c, data, index: index, batch: Int(batch), labels: labels,
                                                       w: w2, gradW: gradW2, logits: logits, threads: Int(threads))
            return
        }
        lossOut.pointee = try snnLossGrad(c, data, index: index, batch: Int(batch), labels: labels,
                                          w1: try unwrap(w1, "w1"), w2: w2, gradW1: try unwrap(gradW1, "grad_w1"),
                                          gradW2: gradW2, logits: logits, threads: Int(threads))
    }
}

// MARK: - optimisers

@_cdecl("spk_adam_step")
public func spk_adam_step(_ w: UnsafeMutablePointer<Float>?, _ grad: UnsafePointer<Float>?,
                          _ m: UnsafeMutablePointer<Float>?, _ v: UnsafeMutablePointer<Float>?, _ n: Int64,
                          _ lr: Double, _ beta1: Double, _ beta2: Double, _ eps: Double, _ step: Int64) -> Int32 {
    guarded {
        try adamStep(w: try unwrap(w, "w"), grad: try unwrap(grad, "grad"), m: try unwrap(m, "m"), v: try unwrap(v, "v"),
                     count: Int(n), lr: lr, beta1: beta1, beta2: beta2, eps: eps, step: Int(step))
    }
}

@_cdecl("spk_sgd_step")
public func spk_sgd_step(_ w: UnsafeMutablePointer<Float>?, _ grad: UnsafePointer<Float>?, _ n: Int64, _ lr: Double) -> Int32 {
    guarded { try sgdStep(w: try unwrap(w, "w"), grad: try unwrap(grad, "grad"), count: Int(n), lr: lr) }
}
