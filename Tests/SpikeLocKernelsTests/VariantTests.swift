// The research variants (Variants.swift) through the C ABI: agreement with the NumPy-made
// fixtures `variant_*` (python/spikeloc/reference/variant_fixtures.py), bit-identical results
// for every thread count, and bad options rejected with a message naming the argument.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// A `variant_*` fixture and the C structs of its call. Arrays are owned here; the options
/// struct points into them, so calls go through `withExtendedLifetime(self)`.
final class VariantFixture {
    let f: Fixture
    let B: Int, T: Int, nIn: Int, H: Int, C: Int
    let x: [UInt8], labels: [Int64], w1: [Float], w2: [Float]
    let tauH: UnsafeMutablePointer<Float>, tauO: UnsafeMutablePointer<Float>
    let sign1: UnsafeMutablePointer<Float>, sign2: UnsafeMutablePointer<Float>
    let events: EventSet
    var cEvents: spk_events
    var config: spk_net_config
    var options: spk_variant_options

    init(_ name: String) throws {
        f = try Fixture(name)
        B = try f.int("batch"); T = try f.int("steps"); nIn = try f.int("n_in")
        H = try f.int("n_hidden"); C = try f.int("n_out")
        x = try f.array("x", shape: [B, T, nIn]).bytes()
        labels = try f.array("labels", shape: [B]).int64s()
        w1 = try f.array("w1", shape: [nIn, H]).floats()
        w2 = try f.array("w2", shape: [H, C]).floats()
        func copy(_ a: [Float]) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
            p.initialize(from: a, count: a.count)
            return p
        }
        tauH = copy(try f.array("tau_hidden", shape: [H]).floats())
        tauO = copy(try f.array("tau_output", shape: [C]).floats())
        sign1 = copy(try f.array("sign_w1", shape: [nIn]).floats())
        sign2 = copy(try f.array("sign_w2", shape: [H]).floats())
        events = try EventSet(dense: x, n: B, steps: T, nIn: nIn)
        cEvents = spk_events(n_samples: Int64(B), steps: Int64(T), n_in: Int64(nIn), n_events: Int64(events.nEvents),
                             step_ptr: UnsafePointer(events.stepPtr), step_events: UnsafePointer(events.stepEvents),
                             input_ptr: UnsafePointer(events.inputPtr), input_events: UnsafePointer(events.inputEvents))
        let readouts = ["mean": SPK_READOUT_MEAN, "sum": SPK_READOUT_SUM, "max": SPK_READOUT_MAX,
                        "spike_count": SPK_READOUT_SPIKE_COUNT]
        let resets = ["delayed": SPK_RESET_DELAYED, "same_step": SPK_RESET_SAME_STEP,
                      "subtractive": SPK_RESET_SUBTRACTIVE, "zero": SPK_RESET_ZERO]
        let surrogates = ["sigmoid": SPK_SURROGATE_SIGMOID, "fast_sigmoid": SPK_SURROGATE_FAST_SIGMOID,
                          "arctan": SPK_SURROGATE_ARCTAN, "piecewise_linear": SPK_SURROGATE_PIECEWISE_LINEAR]
        guard let readout = readouts[try f.string("readout")], let reset = resets[try f.string("reset")],
              let surrogate = surrogates[try f.string("surrogate")] else { throw FixtureError("\(name): unknown option") }
        config = spk_net_config(n_in: Int64(nIn), n_hidden: Int64(H), n_out: Int64(C), steps: Int64(T),
                                dt: try f.double("dt"), tau_hidden: 0.01, tau_output: 0.01, readout: readout,
                                beta: try f.double("beta"))
        let dale = try f.bool("dale")
        options = spk_variant_options(reset: reset, surrogate: surrogate, adapt_tau: try f.double("adapt_tau"),
                                      adapt_strength: try f.double("adapt_strength"), tau_hidden: UnsafePointer(tauH),
                                      tau_output: UnsafePointer(tauO), sign_w1: dale ? UnsafePointer(sign1) : nil,
                                      sign_w2: dale ? UnsafePointer(sign2) : nil, rate_c: try f.double("rate_c"),
                                      rate_max: try f.double("rate_max"), dropout: try f.double("dropout"),
                                      dropout_seed: try f.uint64("dropout_seed"))
    }

    deinit { tauH.deallocate(); tauO.deallocate(); sign1.deallocate(); sign2.deallocate() }

    struct Forward { var logits: [Float], hidden: [UInt8], membrane: [Float] }
    struct Gradients { var loss: Double, g1: [Float], g2: [Float], gth: [Float], gto: [Float], logits: [Float] }

    func forward(threads: Int32) -> (Int32, Forward) {
        var out = Forward(logits: .init(repeating: 7, count: B * C), hidden: .init(repeating: 7, count: B * T * H),
                          membrane: .init(repeating: 7, count: B * T * C))
        let status = withExtendedLifetime(self) {
            spk_variant_forward(&config, &options, &cEvents, nil, Int64(B), w1, w2, &out.logits, &out.hidden,
                                &out.membrane, threads)
        }
        return (status, out)
    }

    func lossGrad(threads: Int32) -> (Int32, Gradients) {
        var g = Gradients(loss: -1, g1: .init(repeating: 7, count: nIn * H), g2: .init(repeating: 7, count: H * C),
                          gth: .init(repeating: 7, count: H), gto: .init(repeating: 7, count: C),
                          logits: .init(repeating: 7, count: B * C))
        let status = withExtendedLifetime(self) {
            spk_variant_loss_grad(&config, &options, &cEvents, nil, Int64(B), labels, w1, w2, &g.loss, &g.g1, &g.g2,
                                  &g.gth, &g.gto, &g.logits, threads)
        }
        return (status, g)
    }
}

final class VariantTests: XCTestCase {
    func checkFixture(_ name: String) throws {
        let v = try VariantFixture(name)
        let f = v.f
        let (status, fw) = v.forward(threads: 1)
        XCTAssertEqual(status, SPK_OK, lastError())
        let expectedSpikes = try f.array("hidden_spikes").bytes()
        XCTAssertEqual(zip(fw.hidden, expectedSpikes).filter { $0 != $1 }.count, 0, "\(name): hidden spikes")
        XCTAssertGreaterThan(expectedSpikes.filter { $0 == 1 }.count, 0, "\(name): the fixture has hidden spikes")
        assertClose(fw.logits, try f.array("logits").doubles(), relative: 1e-5, "\(name): logits")
        assertClose(fw.membrane, try f.array("output_membrane").doubles(), relative: 1e-5, "\(name): output membrane")

        let (gStatus, g) = v.lossGrad(threads: 1)
        XCTAssertEqual(gStatus, SPK_OK, lastError())
        let loss = try f.double("loss")
        XCTAssertEqual(g.loss, loss, accuracy: 1e-5 * Swift.abs(loss), "\(name): loss")
        assertClose(g.logits, try f.array("train_logits").doubles(), relative: 1e-5, "\(name): logits with dropout")
        for (key, got) in [("grad_w1", g.g1), ("grad_w2", g.g2), ("grad_tau_hidden", g.gth), ("grad_tau_output", g.gto)] {
            let want = try f.array(key).doubles()
            XCTAssertGreaterThan(want.map { Swift.abs($0) }.max()!, 0, "\(name): \(key) of the fixture is zero")
            assertClose(got, want, relative: 1e-4, "\(name): \(key)")
        }
        if try f.double("dropout") > 0 {
            // dropout acts in loss_grad only: the forward logits differ from the training logits
            XCTAssertNotEqual(bitPatterns(g.logits), bitPatterns(fw.logits), "\(name): dropout had no effect")
        }
        for threads: Int32 in [2, 4, 0] {
            let (_, gt) = v.lossGrad(threads: threads)
            XCTAssertEqual(gt.loss.bitPattern, g.loss.bitPattern, "\(name): loss, threads \(threads)")
            for (a, b) in [(gt.g1, g.g1), (gt.g2, g.g2), (gt.gth, g.gth), (gt.gto, g.gto), (gt.logits, g.logits)] {
                XCTAssertEqual(bitPatterns(a), bitPatterns(b), "\(name): threads \(threads)")
            }
            let (_, ft) = v.forward(threads: threads)
            XCTAssertEqual(ft.hidden, fw.hidden)
            XCTAssertEqual(bitPatterns(ft.logits), bitPatterns(fw.logits))
        }
    }

    func testCombinationFixture() throws { try checkFixture("variant_combo") }
    func testSpikeCountFixture() throws { try checkFixture("variant_spike_count") }
    func testMaxFixture() throws { try checkFixture("variant_max") }
    func testSumFixture() throws { try checkFixture("variant_sum") }

    /// One unit driven by the same current I = 0.7 at every step, a = exp(-1): the voltage
    /// climbs 0, 0.7, 0.958, 1.052 (spike at step 3). The zero reset keeps integrating the input
    /// of the spiking step (v_4 = I), so it spikes every 3 steps; the same-step reset also
    /// discards that input (v_4 = 0), so it spikes every 4 steps.
    func testZeroResetKeepsTheInputOfTheSpikingStep() throws {
        let T = 13
        let events = try EventSet(dense: [UInt8](repeating: 1, count: T), n: 1, steps: T, nIn: 1)
        var x = spk_events(n_samples: 1, steps: Int64(T), n_in: 1, n_events: Int64(events.nEvents),
                           step_ptr: UnsafePointer(events.stepPtr), step_events: UnsafePointer(events.stepEvents),
                           input_ptr: UnsafePointer(events.inputPtr), input_events: UnsafePointer(events.inputEvents))
        var config = spk_net_config(n_in: 1, n_hidden: 1, n_out: 2, steps: Int64(T), dt: 1e-3, tau_hidden: 1e-3,
                                    tau_output: 1e-2, readout: SPK_READOUT_MEAN, beta: 5)
        let w1: [Float] = [0.7], w2: [Float] = [1, -1]
        func spikes(_ reset: Int32) -> [Int] {
            var options = spk_variant_options(reset: reset, surrogate: SPK_SURROGATE_SIGMOID, adapt_tau: 0,
                                              adapt_strength: 0, tau_hidden: nil, tau_output: nil, sign_w1: nil,
                                              sign_w2: nil, rate_c: 0, rate_max: 100, dropout: 0, dropout_seed: 0)
            var logits = [Float](repeating: 0, count: 2), hidden = [UInt8](repeating: 7, count: T)
            let status = withExtendedLifetime(events) {
                spk_variant_forward(&config, &options, &x, nil, 1, w1, w2, &logits, &hidden, nil, 1)
            }
            XCTAssertEqual(status, SPK_OK, lastError())
            return hidden.indices.filter { hidden[$0] == 1 }
        }
        XCTAssertEqual(spikes(SPK_RESET_ZERO), [3, 6, 9, 12])
        XCTAssertEqual(spikes(SPK_RESET_SAME_STEP), [3, 7, 11])
    }

    func testBadOptions() throws {
        let v = try VariantFixture("variant_combo")
        let good = v.options
        let badTau = UnsafeMutablePointer<Float>.allocate(capacity: v.H)
        let badSign = UnsafeMutablePointer<Float>.allocate(capacity: v.nIn)
        defer { badTau.deallocate(); badSign.deallocate() }
        badTau.initialize(repeating: 0.005, count: v.H); badTau[3] = .nan
        badSign.initialize(repeating: 1, count: v.nIn); badSign[2] = 0
        let cases: [(String, (inout spk_variant_options) -> Void)] = [
            ("options.reset", { $0.reset = 4 }),
            ("options.surrogate", { $0.surrogate = -1 }),
            ("adapt_tau", { $0.adapt_tau = -1 }),
            ("adapt_tau", { $0.adapt_tau = .nan }),
            ("adapt_strength", { $0.adapt_strength = .infinity }),
            ("rate_c", { $0.rate_c = -1 }),
            ("rate_max", { $0.rate_max = 0 }),
            ("dropout", { $0.dropout = 1 }),
            ("dropout", { $0.dropout = .nan }),
            ("tau_hidden[3]", { $0.tau_hidden = UnsafePointer(badTau) }),
            ("sign_w1[2]", { $0.sign_w1 = UnsafePointer(badSign) }),
        ]
        for (name, mutate) in cases {
            v.options = good
            mutate(&v.options)
            let (status, fw) = v.forward(threads: 1)
            expectStatus(status, SPK_ERR_VALUE, naming: name, "variant_forward, bad \(name)")
            XCTAssertEqual(fw.logits, .init(repeating: 7, count: v.B * v.C), "variant_forward wrote logits despite bad \(name)")
            let (gStatus, g) = v.lossGrad(threads: 2)
            expectStatus(gStatus, SPK_ERR_VALUE, naming: name, "variant_loss_grad, bad \(name)")
            XCTAssertEqual(g.g1, .init(repeating: 7, count: v.nIn * v.H))
        }
        v.options = good
        v.config.readout = 4
        expectStatus(v.forward(threads: 1).0, SPK_ERR_VALUE, naming: "readout", "readout 4")
        v.config.readout = SPK_READOUT_MEAN
        v.config.n_hidden = 0
        expectStatus(v.lossGrad(threads: 1).0, SPK_ERR_VALUE, naming: "n_hidden", "n_hidden 0 (before reading option arrays)")
        v.config.n_hidden = Int64(v.H)
        withExtendedLifetime(v) {
            var logits = [Float](repeating: 0, count: v.B * v.C)
            expectStatus(spk_variant_forward(&v.config, nil, &v.cEvents, nil, Int64(v.B), v.w1, v.w2, &logits, nil, nil, 1),
                   SPK_ERR_TYPE, naming: "options", "NULL options")
            var loss = 0.0
            var g1 = [Float](repeating: 0, count: v.nIn * v.H)
            expectStatus(spk_variant_loss_grad(&v.config, &v.options, &v.cEvents, nil, Int64(v.B), v.labels, v.w1, v.w2, &loss,
                                         &g1, nil, nil, nil, nil, 1), SPK_ERR_TYPE, naming: "grad_w2", "NULL grad_w2")
            // the tau gradients are optional
            var g2 = [Float](repeating: 0, count: v.H * v.C)
            XCTAssertEqual(spk_variant_loss_grad(&v.config, &v.options, &v.cEvents, nil, Int64(v.B), v.labels, v.w1, v.w2,
                                                 &loss, &g1, &g2, nil, nil, nil, 1), SPK_OK, lastError())
        }
    }
}
