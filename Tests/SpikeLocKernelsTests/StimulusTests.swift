// IPD stimulus: the reference fixtures (exact spikes) and the firing statistics of larger runs.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// Runs `generateStimulus` into a new array.
func stimulus(_ params: StimulusParams, ipd: [Double], phase: [Double], seed: UInt64, firstIndex: Int,
              threads: Int) throws -> [UInt8] {
    var spikes = [UInt8](repeating: 0xAA, count: ipd.count * params.steps * params.nIn)
    try ipd.withUnsafeBufferPointer { ip in
        try phase.withUnsafeBufferPointer { ph in
            try spikes.withUnsafeMutableBufferPointer { sp in
                try generateStimulus(params, ipd: ip, phase: ph, seed: seed, firstIndex: firstIndex,
                                     spikes: sp.baseAddress!, threads: threads)
            }
        }
    }
    return spikes
}

final class StimulusTests: XCTestCase {
    struct Case {
        let params: StimulusParams
        let seed: UInt64, firstIndex: Int, batch: Int
        let phaseMode: String, minMargin: Double
        let ipd: [Double], phase: [Double], uniforms: [Double], p: [Double], spikes: [UInt8]
    }

    func load(_ name: String) throws -> Case {
        let f = try Fixture(name)
        let params = StimulusParams(dt: try f.double("dt"), steps: try f.int("steps"), freq: try f.double("freq"),
                                    anfPerEar: try f.int("anf_per_ear"), rateMax: try f.double("rate_max"),
                                    envelopePower: try f.double("envelope_power"),
                                    nullPhaseDelays: try f.bool("null_phase_delays"))
        let B = try f.int("batch"), shape = [B, params.steps, params.nIn]
        return Case(params: params, seed: try f.uint64("seed"), firstIndex: try f.int("first_index"), batch: B,
                    phaseMode: try f.string("phase_mode"), minMargin: try f.double("min_margin"),
                    ipd: try f.array("ipd", shape: [B]).doubles(), phase: try f.array("phase", shape: [B]).doubles(),
                    uniforms: try f.array("uniforms", shape: shape).doubles(), p: try f.array("p", shape: shape).doubles(),
                    spikes: try f.array("spikes", shape: shape).bytes())
    }

    func checkFixture(_ name: String) throws {
        let c = try load(name)
        let perSample = c.params.steps * c.params.nIn
        XCTAssertGreaterThan(c.minMargin, 1e-6, "\(name): fixture margin")
        // the fixture's own consistency: spikes = U < p, and some but not all elements spike
        var ones = 0
        for e in 0..<c.spikes.count {
            XCTAssertEqual(c.spikes[e], c.uniforms[e] < c.p[e] ? 1 : 0)
            ones += Int(c.spikes[e])
        }
        XCTAssertTrue(ones > 0 && ones < c.spikes.count, "\(name): \(ones) spikes of \(c.spikes.count)")

        // the uniforms are those of streams first_index + b
        for b in 0..<c.batch {
            var u = [Float](repeating: -1, count: perSample)
            XCTAssertEqual(spk_stimulus_uniforms(c.seed, Int64(c.firstIndex + b), Int64(perSample), &u), SPK_OK)
            var mismatches = 0
            for e in 0..<perSample where Double(u[e]) != c.uniforms[b * perSample + e] { mismatches += 1 }
            XCTAssertEqual(mismatches, 0, "\(name): sample \(b): uniforms differ from the reference")
        }

        // the IPD and phase draws of the fixture
        for b in 0..<c.batch {
            let key = CounterRNG.key(seed: c.seed, index: UInt64(c.firstIndex + b))
            XCTAssertEqual(c.ipd[b], -Double.pi / 2 + Double.pi * CounterRNG.uniform53(key: key, word: CounterRNG.wordIPD),
                           "\(name): ipd[\(b)]")
            let phaseKey = c.phaseMode == "per_set" ? CounterRNG.key(seed: c.seed, index: UInt64(CounterRNG.setIndex)) : key
            XCTAssertEqual(c.phase[b], CounterRNG.uniform53(key: phaseKey, word: CounterRNG.wordPhase), "\(name): phase[\(b)]")
        }

        // the kernel: zero mismatches wherever |U - p| > 1e-6 (everywhere, by min_margin)
        var outputs: [[UInt8]] = []
        for threads in [1, 2] {
            let spikes = try stimulus(c.params, ipd: c.ipd, phase: c.phase, seed: c.seed, firstIndex: c.firstIndex,
                                      threads: threads)
            var compared = 0, mismatches = 0
            for e in 0..<spikes.count where Swift.abs(c.uniforms[e] - c.p[e]) > 1e-6 {
                compared += 1
                if spikes[e] != c.spikes[e] { mismatches += 1 }
            }
            XCTAssertEqual(compared, spikes.count, "\(name): elements within 1e-6 of p")
            XCTAssertEqual(mismatches, 0, "\(name), threads \(threads): \(mismatches) spikes differ from the reference")
            outputs.append(spikes)
        }
        XCTAssertEqual(outputs[0], outputs[1], "\(name): threads 1 and 2 differ")

        // a sample does not depend on the samples generated with it: the last two alone
        let tail = try stimulus(c.params, ipd: Array(c.ipd[2...]), phase: Array(c.phase[2...]), seed: c.seed,
                                firstIndex: c.firstIndex + 2, threads: 1)
        XCTAssertEqual(tail, Array(c.spikes[(2 * perSample)...]), "\(name): samples 2.. generated alone")

        // the C ABI gives the same spikes
        var cp = spk_stimulus_params(dt: c.params.dt, steps: Int64(c.params.steps), freq: c.params.freq,
                                     anf_per_ear: Int64(c.params.anfPerEar), rate_max: c.params.rateMax,
                                     envelope_power: c.params.envelopePower,
                                     null_phase_delays: c.params.nullPhaseDelays ? 1 : 0)
        var viaC = [UInt8](repeating: 0xAA, count: c.spikes.count)
        XCTAssertEqual(spk_stimulus_noisy(&cp, c.ipd, c.phase, Int64(c.batch), c.seed, Int64(c.firstIndex), 0, &viaC, 0), SPK_OK,
                       lastError())
        XCTAssertEqual(viaC, c.spikes, "\(name): spk_stimulus_noisy")
    }

    func testTutorialFixture() throws { try checkFixture("stimulus_tutorial") }

    func test250HzFixture() throws { try checkFixture("stimulus_250hz") }

    /// Ear 0 does not see the IPD; ear 1 does.
    func testIPDOnlyAffectsEarOne() throws {
        let params = StimulusParams(dt: 1e-4, steps: 200, freq: 250, anfPerEar: 20)
        let a = try stimulus(params, ipd: [-1.2], phase: [0.3], seed: 9, firstIndex: 4, threads: 1)
        let b = try stimulus(params, ipd: [1.0], phase: [0.3], seed: 9, firstIndex: 4, threads: 1)
        var earOneDiffers = false
        for n in 0..<params.steps {
            for i in 0..<params.nIn {
                let e = n * params.nIn + i
                if i < params.anfPerEar { XCTAssertEqual(a[e], b[e], "ear 0, step \(n), input \(i)") }
                else if a[e] != b[e] { earOneDiffers = true }
            }
        }
        XCTAssertTrue(earOneDiffers)
    }

    /// Degenerate rates: rate_max = 0 never spikes, rate_max dt = 1 with k = 0 always spikes,
    /// k = 0 gives the constant probability rate_max dt (0^0 = 1).
    func testDegenerateRates() throws {
        var params = StimulusParams(dt: 1e-3, steps: 50, freq: 20, anfPerEar: 9, rateMax: 0)
        let ipd = [0.5, -0.25, 1.5], phase = [0.0, 0.75, 0.25]
        XCTAssertEqual(try stimulus(params, ipd: ipd, phase: phase, seed: 1, firstIndex: 0, threads: 2).filter { $0 != 0 }.count, 0)
        params.rateMax = 1000
        params.envelopePower = 0
        XCTAssertEqual(try stimulus(params, ipd: ipd, phase: phase, seed: 1, firstIndex: 0, threads: 2).filter { $0 != 1 }.count, 0)
        // k = 0: spike iff U < rate_max dt, whatever the phase
        params.rateMax = 300
        params.envelopePower = 0
        let spikes = try stimulus(params, ipd: ipd, phase: phase, seed: 1, firstIndex: 0, threads: 1)
        let perSample = params.steps * params.nIn
        for b in 0..<ipd.count {
            var u = [Float](repeating: -1, count: perSample)
            XCTAssertEqual(spk_stimulus_uniforms(1, Int64(b), Int64(perSample), &u), SPK_OK)
            var mismatches = 0
            for e in 0..<perSample where spikes[b * perSample + e] != (Double(u[e]) < 0.3 ? 1 : 0) { mismatches += 1 }
            XCTAssertEqual(mismatches, 0, "k = 0, sample \(b)")
        }
    }

    // MARK: - statistics

    /// Mean of ((1 + sin theta)/2)^k over a cycle: Gamma(k + 1/2) / (sqrt(pi) Gamma(k + 1)),
    /// C(2k, k) / 4^k for integer k.
    static func envelopeMean(_ k: Double) -> Double {
        if k == k.rounded() {
            let kk = Int(k)
            var c = 1.0
            for i in 0..<kk { c = c * Double(2 * kk - i) / Double(i + 1) }  // C(2k, k)
            return c / pow(4, k)
        }
        return exp(lgamma(k + 0.5) - lgamma(k + 1)) / Double.pi.squareRoot()
    }

    /// Generates `samples` samples and checks (a) the overall firing probability per step
    /// against rate_max dt E[envelope^k] within 5 binomial standard errors and (b) the
    /// spike fraction of each of 8 bins of theta mod 2 pi against the bin average of
    /// rate_max dt ((1 + sin theta)/2)^k within 5 standard errors.
    static func checkStatistics(_ params: StimulusParams, samples: Int, seed: UInt64, exactMean: Bool,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        var ipd = [Double](repeating: 0, count: samples), phase = [Double](repeating: 0, count: samples)
        XCTAssertEqual(spk_uniform53(seed, 0, CounterRNG.wordIPD, Int64(samples), &ipd), SPK_OK)
        XCTAssertEqual(spk_uniform53(seed, 0, CounterRNG.wordPhase, Int64(samples), &phase), SPK_OK)
        ipd = ipd.map { -Double.pi / 2 + Double.pi * $0 }
        let spikes = try stimulus(params, ipd: ipd, phase: phase, seed: seed, firstIndex: 0, threads: 0)
        let T = params.steps, na = params.anfPerEar, nIn = params.nIn, k = params.envelopePower
        let q = params.rateMax * params.dt
        let bins = 8
        var count = [Double](repeating: 0, count: bins), fired = [Double](repeating: 0, count: bins)
        var sumP = [Double](repeating: 0, count: bins), sumVar = [Double](repeating: 0, count: bins)
        let twoPi = 2 * Double.pi
        for b in 0..<samples {
            for n in 0..<T {
                let base = twoPi * (params.freq * Double(n) * params.dt + phase[b])
                for i in 0..<nIn {
                    let j = i % na
                    let psi = params.nullPhaseDelays ? 0 : Double.pi / 2 * Double(j) / Double(na - 1)
                    let theta = base + psi + (i >= na ? ipd[b] : 0)
                    var r = theta.truncatingRemainder(dividingBy: twoPi)
                    if r < 0 { r += twoPi }
                    let bin = Swift.min(bins - 1, Int(r / twoPi * Double(bins)))
                    let p = q * pow((1 + sin(theta)) / 2, k)
                    count[bin] += 1
                    sumP[bin] += p
                    sumVar[bin] += p * (1 - p)
                    fired[bin] += Double(spikes[(b * T + n) * nIn + i])
                }
            }
        }
        let total = Double(spikes.count)
        let spikeTotal = fired.reduce(0, +)
        let expected = q * StimulusTests.envelopeMean(k)
        if exactMean {
            // whole cycles with more than 2k steps each: the mean of p over steps is exact
            XCTAssertEqual(sumP.reduce(0, +) / total, expected, accuracy: 1e-9 * expected,
                           "mean of p over the elements", file: file, line: line)
        }
        let observed = spikeTotal / total
        let se = (expected * (1 - expected) / total).squareRoot()
        XCTAssertLessThanOrEqual(Swift.abs(observed - expected), 5 * se,
                                 "firing probability \(observed), expected \(expected) (SE \(se))", file: file, line: line)
        let z = (0..<bins).map { (fired[$0] - sumP[$0]) / Swift.max(sumVar[$0].squareRoot(), 1) }
        print(String(format: "stimulus statistics k = %g, null = %d: p = %.6f (expected %.6f, z = %+.2f); bin z = ",
                     k, params.nullPhaseDelays ? 1 : 0, observed, expected, (observed - expected) / se)
              + z.map { String(format: "%+.2f", $0) }.joined(separator: " "))
        for bin in 0..<bins {
            XCTAssertGreaterThan(count[bin], 1000, "bin \(bin) is nearly empty", file: file, line: line)
            let sd = sumVar[bin].squareRoot()
            XCTAssertLessThanOrEqual(Swift.abs(fired[bin] - sumP[bin]), 5 * Swift.max(sd, 1),
                                     "theta bin \(bin): \(fired[bin]) spikes of \(count[bin]), expected \(sumP[bin]) (SD \(sd))",
                                     file: file, line: line)
        }
        // the envelope is visible: the bin around theta = pi/2 fires far more than the one around 3 pi/2
        XCTAssertGreaterThan(fired[1] + fired[2], 4 * (fired[5] + fired[6]) + 1, file: file, line: line)
    }

    func testStatistics250HzPower2() throws {
        try Self.checkStatistics(StimulusParams(dt: 1e-4, steps: 1000, freq: 250, anfPerEar: 100, rateMax: 600,
                                           envelopePower: 2), samples: 64, seed: 777, exactMean: true)
    }

    func testStatistics250HzPower3() throws {
        try Self.checkStatistics(StimulusParams(dt: 1e-4, steps: 1000, freq: 250, anfPerEar: 100, rateMax: 600,
                                           envelopePower: 3), samples: 64, seed: 778, exactMean: true)
    }

    func testStatisticsNullPhaseDelays() throws {
        try Self.checkStatistics(StimulusParams(dt: 1e-4, steps: 1000, freq: 250, anfPerEar: 100, rateMax: 600,
                                           envelopePower: 2, nullPhaseDelays: true), samples: 64, seed: 779, exactMean: true)
    }

    /// A non-integer power (the powf path) and an anf_per_ear that is not a multiple of 8.
    func testStatisticsFractionalPower() throws {
        try Self.checkStatistics(StimulusParams(dt: 1e-4, steps: 1000, freq: 250, anfPerEar: 37, rateMax: 900,
                                           envelopePower: 1.5), samples: 64, seed: 780, exactMean: false)
    }

    /// The tutorial's parameters (f = 20 Hz, dt = 1 ms, 100 steps: two whole cycles).
    func testStatisticsTutorial() throws {
        try Self.checkStatistics(StimulusParams(), samples: 256, seed: 781, exactMean: true)
    }
}
