// Data options: the stimulus with phase-delay noise and the per-epoch phase
// offset, against the NumPy reference fixture `stimulus_noise`, plus their C ABI checks.
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// Runs `generateStimulus` with phase-delay noise into a new array.
func noisyStimulus(_ params: StimulusParams, ipd: [Double], phase: [Double], seed: UInt64, firstIndex: Int,
                   delayNoise: Double, threads: Int) throws -> [UInt8] {
    var spikes = [UInt8](repeating: 0xAA, count: ipd.count * params.steps * params.nIn)
    try ipd.withUnsafeBufferPointer { ip in
        try phase.withUnsafeBufferPointer { ph in
            try spikes.withUnsafeMutableBufferPointer { sp in
                try generateStimulus(params, ipd: ip, phase: ph, seed: seed, firstIndex: firstIndex,
                                     spikes: sp.baseAddress!, threads: threads, delayNoise: delayNoise)
            }
        }
    }
    return spikes
}

final class DataOptionsTests: XCTestCase {
    func testHeaderConstants() {
        XCTAssertEqual(CounterRNG.wordEpochPhase, UInt64(1) << 62 + UInt64(1) << 40)
        XCTAssertEqual(CounterRNG.wordDelayNoise, UInt64(1) << 62 + UInt64(1) << 61)
        // (the header's macros are not importable into Swift; pytest compares them with the
        // Python and reference constants, and the fixture below ties the reference to Swift)
    }

    func testNoiseFixture() throws {
        let f = try Fixture("stimulus_noise")
        let params = StimulusParams(dt: try f.double("dt"), steps: try f.int("steps"), freq: try f.double("freq"),
                                    anfPerEar: try f.int("anf_per_ear"), rateMax: try f.double("rate_max"),
                                    envelopePower: try f.double("envelope_power"),
                                    nullPhaseDelays: try f.bool("null_phase_delays"))
        let B = try f.int("batch"), seed = try f.uint64("seed"), first = try f.int("first_index")
        let epoch = try f.int("epoch"), sigma = try f.double("delay_noise")
        let shape = [B, params.steps, params.nIn]
        let ipd = try f.array("ipd", shape: [B]).doubles(), phase = try f.array("phase", shape: [B]).doubles()
        let uniforms = try f.array("uniforms", shape: shape).doubles(), p = try f.array("p", shape: shape).doubles()
        let expected = try f.array("spikes", shape: shape).bytes()
        let normals = try f.array("normals", shape: [B, params.nIn]).doubles()
        XCTAssertGreaterThan(try f.double("min_margin"), 1e-6)
        var ones = 0
        for e in 0..<expected.count {
            XCTAssertEqual(expected[e], uniforms[e] < p[e] ? 1 : 0)
            ones += Int(expected[e])
        }
        XCTAssertTrue(ones > 0 && ones < expected.count)

        // the per-epoch phase: one draw on stream (seed, epoch), the same for every sample
        var drawn = [Double](repeating: -1, count: 1)
        XCTAssertEqual(spk_uniform53(seed, Int64(epoch), CounterRNG.wordEpochPhase, 1, &drawn), SPK_OK)
        for b in 0..<B { XCTAssertEqual(phase[b], drawn[0], "phase[\(b)]") }

        // the noise normals (Box-Muller in double: glibc and NumPy agree to ~1e-15)
        for b in 0..<B {
            var z = [Double](repeating: .nan, count: params.nIn)
            XCTAssertEqual(spk_delay_noise_normals(seed, Int64(first + b), Int64(params.nIn), &z), SPK_OK, lastError())
            for i in 0..<params.nIn {
                XCTAssertEqual(z[i], normals[b * params.nIn + i], accuracy: 1e-12, "normal \(b), \(i)")
            }
        }

        // the kernel: every spike equal (all |U - p| >= min_margin), for 1, 2 and 4 threads
        var outputs: [[UInt8]] = []
        for threads in [1, 2, 4] {
            let spikes = try noisyStimulus(params, ipd: ipd, phase: phase, seed: seed, firstIndex: first,
                                           delayNoise: sigma, threads: threads)
            var mismatches = 0
            for e in 0..<spikes.count where spikes[e] != expected[e] { mismatches += 1 }
            XCTAssertEqual(mismatches, 0, "threads \(threads): \(mismatches) spikes differ from the reference")
            outputs.append(spikes)
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])

        // samples do not depend on the samples generated with them
        let perSample = params.steps * params.nIn
        let tail = try noisyStimulus(params, ipd: Array(ipd[1...]), phase: Array(phase[1...]), seed: seed,
                                     firstIndex: first + 1, delayNoise: sigma, threads: 1)
        XCTAssertEqual(tail, Array(expected[perSample...]))

        // the noise matters
        let plain = try noisyStimulus(params, ipd: ipd, phase: phase, seed: seed, firstIndex: first,
                                      delayNoise: 0, threads: 2)
        XCTAssertNotEqual(plain, expected)

        // the C ABI
        var cp = spk_stimulus_params(dt: params.dt, steps: Int64(params.steps), freq: params.freq,
                                     anf_per_ear: Int64(params.anfPerEar), rate_max: params.rateMax,
                                     envelope_power: params.envelopePower, null_phase_delays: 0)
        var viaC = [UInt8](repeating: 0xAA, count: expected.count)
        XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, Int64(B), seed, Int64(first), sigma, &viaC, 0), SPK_OK,
                       lastError())
        XCTAssertEqual(viaC, expected)
    }

    func testBadInput() {
        var cp = spk_stimulus_params(dt: 1e-3, steps: 5, freq: 20, anf_per_ear: 3, rate_max: 600,
                                     envelope_power: 2, null_phase_delays: 0)
        let ipd = [0.1], phase = [0.2]
        var out = [UInt8](repeating: 0, count: 5 * 6)
        for bad in [-0.5, Double.nan, Double.infinity] {
            XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, 1, 0, 0, bad, &out, 1), SPK_ERR_VALUE)
            XCTAssertTrue(lastError().contains("delay_noise"), lastError())
        }
        XCTAssertEqual(spk_stimulus_noisy(nil, ipd, phase, 1, 0, 0, 0.1, &out, 1), SPK_ERR_TYPE)
        XCTAssertEqual(spk_stimulus_noisy(&cp, nil, phase, 1, 0, 0, 0.1, &out, 1), SPK_ERR_TYPE)
        XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, 1, 0, 0, 0.1, nil, 1), SPK_ERR_TYPE)
        XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, -1, 0, 0, 0.1, &out, 1), SPK_ERR_VALUE)
        XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, 1, 0, -2, 0.1, &out, 1), SPK_ERR_VALUE)
        cp.steps = 0
        XCTAssertEqual(spk_stimulus_noisy(&cp, ipd, phase, 1, 0, 0, 0.1, &out, 1), SPK_ERR_VALUE)
        var z = [Double](repeating: 0, count: 2)
        XCTAssertEqual(spk_delay_noise_normals(0, -1, 2, &z), SPK_ERR_VALUE)
        XCTAssertEqual(spk_delay_noise_normals(0, 0, -1, &z), SPK_ERR_VALUE)
        XCTAssertEqual(spk_delay_noise_normals(0, 0, 2, nil), SPK_ERR_TYPE)
    }
}
