// C ABI of the stimulus (spikeloc.h, "IPD stimulus" and "data options"): the spikes, with or
// without phase-delay noise, and the noise's normals. Every argument is checked before memory
// is touched; errors become status codes.
import CSpikeLoc

@_cdecl("spk_stimulus_noisy")
public func spk_stimulus_noisy(_ params: UnsafePointer<spk_stimulus_params>?, _ ipd: UnsafePointer<Double>?,
                               _ phase: UnsafePointer<Double>?, _ n: Int64, _ seed: UInt64, _ firstIndex: Int64,
                               _ delayNoise: Double, _ spikes: UnsafeMutablePointer<UInt8>?,
                               _ threads: Int32) -> Int32 {
    guarded {
        let p = try unwrap(params, "params").pointee
        try require(n >= 0, "n must be >= 0, got \(n)")
        let ipd = try unwrap(ipd, "ipd"), phase = try unwrap(phase, "phase"), spikes = try unwrap(spikes, "spikes")
        try require(p.anf_per_ear <= Int64(Int.max / 2), "anf_per_ear is too large")
        let params = StimulusParams(dt: p.dt, steps: Int(p.steps), freq: p.freq, anfPerEar: Int(p.anf_per_ear),
                                    rateMax: p.rate_max, envelopePower: p.envelope_power,
                                    nullPhaseDelays: p.null_phase_delays != 0)
        try generateStimulus(params, ipd: UnsafeBufferPointer(start: ipd, count: Int(n)),
                             phase: UnsafeBufferPointer(start: phase, count: Int(n)), seed: seed,
                             firstIndex: Int(firstIndex), spikes: spikes, threads: Int(threads),
                             delayNoise: delayNoise)
    }
}

@_cdecl("spk_delay_noise_normals")
public func spk_delay_noise_normals(_ seed: UInt64, _ index: Int64, _ n: Int64,
                                    _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded {
        try require(n >= 0 && n <= (1 << 40), "n must be in [0, 2^40], got \(n)")
        try require(index >= 0, "index must be >= 0, got \(index)")
        let out = try unwrap(out, "out")
        let key = CounterRNG.key(seed: seed, index: UInt64(index))
        for i in 0..<Int(n) { out[i] = CounterRNG.delayNoiseNormal(key: key, input: UInt64(i)) }
    }
}

/// The caller's allocator as an `EventStorage`.
func eventStorage(_ alloc: spk_alloc?, _ context: UnsafeMutableRawPointer?) throws -> EventStorage {
    let alloc = try unwrap(alloc, "alloc")
    return { bytes in alloc(context, Int64(bytes)) }
}

@_cdecl("spk_stimulus_events")
public func spk_stimulus_events(_ params: UnsafePointer<spk_stimulus_params>?, _ ipd: UnsafePointer<Double>?,
                                _ phase: UnsafePointer<Double>?, _ n: Int64, _ seed: UInt64, _ firstIndex: Int64,
                                _ delayNoise: Double, _ alloc: spk_alloc?, _ context: UnsafeMutableRawPointer?,
                                _ threads: Int32) -> Int32 {
    guarded {
        let p = try unwrap(params, "params").pointee
        try require(n >= 0, "n must be >= 0, got \(n)")
        let ipd = try unwrap(ipd, "ipd"), phase = try unwrap(phase, "phase")
        let storage = try eventStorage(alloc, context)
        try require(p.anf_per_ear <= Int64(Int.max / 2), "anf_per_ear is too large")
        let params = StimulusParams(dt: p.dt, steps: Int(p.steps), freq: p.freq, anfPerEar: Int(p.anf_per_ear),
                                    rateMax: p.rate_max, envelopePower: p.envelope_power,
                                    nullPhaseDelays: p.null_phase_delays != 0)
        _ = try generateStimulusEvents(params, ipd: UnsafeBufferPointer(start: ipd, count: Int(n)),
                                       phase: UnsafeBufferPointer(start: phase, count: Int(n)), seed: seed,
                                       firstIndex: Int(firstIndex), threads: Int(threads), delayNoise: delayNoise,
                                       allocate: storage)
    }
}

@_cdecl("spk_events_from_dense")
public func spk_events_from_dense(_ x: UnsafePointer<UInt8>?, _ n: Int64, _ steps: Int64, _ nIn: Int64,
                                  _ alloc: spk_alloc?, _ context: UnsafeMutableRawPointer?, _ threads: Int32) -> Int32 {
    guarded {
        _ = try eventsFromDense(try unwrap(x, "x"), n: Int(n), steps: Int(steps), nIn: Int(nIn),
                                threads: Int(threads), allocate: try eventStorage(alloc, context))
    }
}
