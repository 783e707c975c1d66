// The research variants of the two-layer network (Variants.swift) through the general
// network's C ABI (spk_network_*): agreement with the NumPy-made fixtures `variant_*`
// (python/spikeloc/reference/variant_fixtures.py), bit-identical results for every thread
// count, and bad options rejected with a message naming the argument.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// A `variant_*` fixture as a call of the general network with one feed-forward hidden layer
/// (spk_network_*; the parameter vector w1 | w2 | tau_hidden | tau_output, the signs
/// sign_w1 | sign_w2 under Dale's law). Arrays are owned here; the struct points into them, so
/// calls go through `withExtendedLifetime(self)`.
final class VariantFixture {
    let f: Fixture
    let B: Int, T: Int, nIn: Int, H: Int, C: Int
    let x: [UInt8], labels: [Int64]
    var params: [Float], signs: [Float]?
    let sizes: UnsafeMutablePointer<Int64>, flags: UnsafeMutablePointer<UInt8>
    let events: EventSet
    var cEvents: spk_events
    var net: spk_network

    init(_ name: String) throws {
        f = try Fixture(name)
        B = try f.int("batch"); T = try f.int("steps"); nIn = try f.int("n_in")
        H = try f.int("n_hidden"); C = try f.int("n_out")
        x = try f.array("x", shape: [B, T, nIn]).bytes()
        labels = try f.array("labels", shape: [B]).int64s()
        params = try f.array("w1", shape: [nIn, H]).floats() + f.array("w2", shape: [H, C]).floats()
            + f.array("tau_hidden", shape: [H]).floats() + f.array("tau_output", shape: [C]).floats()
        signs = try f.bool("dale") ? try f.array("sign_w1", shape: [nIn]).floats() + f.array("sign_w2", shape: [H]).floats() : nil
        sizes = .allocate(capacity: 1); sizes[0] = Int64(H)
        flags = .allocate(capacity: 1); flags[0] = 0
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
        let rateC = try f.double("rate_c")
        net = spk_network(n_in: Int64(nIn), n_out: Int64(C), steps: Int64(T), n_layers: 1, hidden: UnsafePointer(sizes),
                          recurrent: UnsafePointer(flags), dt: try f.double("dt"), beta: try f.double("beta"),
                          reset: reset, surrogate: surrogate, detach_reset: 0, adapt_tau: try f.double("adapt_tau"),
                          adapt_strength: try f.double("adapt_strength"), readout: readout, window: 0,
                          window_loss: SPK_EPROP_CROSS_ENTROPY, timing: SPK_TIMING_SEEDS, bias: 0,
                          delays: SPK_DELAYS_NONE, max_delay: 0, rate: rateC > 0 ? SPK_RATE_UPPER : SPK_RATE_NONE,
                          rate_c: rateC, rate_ref: try f.double("rate_max"), dropout: try f.double("dropout"),
                          dropout_seed: try f.uint64("dropout_seed"))
    }

    deinit { sizes.deallocate(); flags.deallocate() }

    struct Forward { var logits: [Float], hidden: [UInt8], membrane: [Float] }
    struct Gradients { var loss: Double, g1: [Float], g2: [Float], gth: [Float], gto: [Float], logits: [Float] }

    func forward(threads: Int32) -> (Int32, Forward) {
        var out = Forward(logits: .init(repeating: 7, count: B * C), hidden: .init(repeating: 7, count: B * T * H),
                          membrane: .init(repeating: 7, count: B * T * C))
        let status = withExtendedLifetime(self) {
            spk_network_forward(&net, &cEvents, nil, Int64(B), params, Int64(params.count), signs,
                                Int64(signs?.count ?? 0), &out.logits, &out.hidden, &out.membrane, threads)
        }
        return (status, out)
    }

    /// Loss and gradients, the gradient vector split into its blocks (7s where nothing was written).
    func lossGrad(threads: Int32) -> (Int32, Gradients) {
        var grads = [Float](repeating: 7, count: params.count), logits = [Float](repeating: 7, count: B * C)
        var loss = -1.0
        let status = withExtendedLifetime(self) {
            spk_network_loss_grad(&net, &cEvents, nil, Int64(B), labels, params, Int64(params.count), signs,
                                  Int64(signs?.count ?? 0), &loss, &grads, &logits, threads)
        }
        let a = nIn * H, b = a + H * C, c = b + H
        return (status, Gradients(loss: loss, g1: Array(grads[0..<a]), g2: Array(grads[a..<b]), gth: Array(grads[b..<c]),
                                  gto: Array(grads[c...]), logits: logits))
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
        let sizes: [Int64] = [1], flags: [UInt8] = [0]
        // w1 = 0.7, w2 = (1, -1), tau_hidden = 1 ms (a = exp(-1)), tau_output = 10 ms
        let params: [Float] = [0.7, 1, -1, 1e-3, 1e-2, 1e-2]
        func spikes(_ reset: Int32) -> [Int] {
            var logits = [Float](repeating: 0, count: 2), hidden = [UInt8](repeating: 7, count: T)
            let status = sizes.withUnsafeBufferPointer { s in
                flags.withUnsafeBufferPointer { r in
                    var net = spk_network(n_in: 1, n_out: 2, steps: Int64(T), n_layers: 1, hidden: s.baseAddress,
                                          recurrent: r.baseAddress, dt: 1e-3, beta: 5, reset: reset,
                                          surrogate: SPK_SURROGATE_SIGMOID, detach_reset: 0, adapt_tau: 0,
                                          adapt_strength: 0, readout: SPK_READOUT_MEAN, window: 0,
                                          window_loss: SPK_EPROP_CROSS_ENTROPY, timing: SPK_TIMING_SEEDS, bias: 0,
                                          delays: SPK_DELAYS_NONE, max_delay: 0, rate: SPK_RATE_NONE, rate_c: 0,
                                          rate_ref: 100, dropout: 0, dropout_seed: 0)
                    return withExtendedLifetime(events) {
                        spk_network_forward(&net, &x, nil, 1, params, Int64(params.count), nil, 0, &logits, &hidden,
                                            nil, 1)
                    }
                }
            }
            XCTAssertEqual(status, SPK_OK, lastError())
            return hidden.indices.filter { hidden[$0] == 1 }
        }
        XCTAssertEqual(spikes(SPK_RESET_ZERO), [3, 6, 9, 12])
        XCTAssertEqual(spikes(SPK_RESET_SAME_STEP), [3, 7, 11])
    }

    func testBadOptions() throws {
        let v = try VariantFixture("variant_combo")
        let good = (v.net, v.params, v.signs)
        let tauH = v.nIn * v.H + v.H * v.C  // start of tau_hidden in the parameter vector
        let cases: [(String, (VariantFixture) -> Void)] = [
            ("net.reset", { $0.net.reset = 4 }),
            ("net.surrogate", { $0.net.surrogate = -1 }),
            ("adapt_tau", { $0.net.adapt_tau = -1 }),
            ("adapt_tau", { $0.net.adapt_tau = .nan }),
            ("adapt_strength", { $0.net.adapt_strength = .infinity }),
            ("rate_c", { $0.net.rate = SPK_RATE_UPPER; $0.net.rate_c = -1 }),
            ("rate_ref", { $0.net.rate = SPK_RATE_UPPER; $0.net.rate_c = 1; $0.net.rate_ref = 0 }),
            ("dropout", { $0.net.dropout = 1 }),
            ("dropout", { $0.net.dropout = .nan }),
            ("tau_hidden1[3]", { $0.params[tauH + 3] = .nan }),
            ("sign_w1[2]", { $0.signs![2] = 0.5 }),
            ("net.readout", { $0.net.readout = 5 }),
        ]
        for (name, mutate) in cases {
            (v.net, v.params, v.signs) = good
            mutate(v)
            let (status, fw) = v.forward(threads: 1)
            expectStatus(status, SPK_ERR_VALUE, naming: name, "network_forward, bad \(name)")
            XCTAssertEqual(fw.logits, .init(repeating: 7, count: v.B * v.C), "network_forward wrote logits despite bad \(name)")
            let (gStatus, g) = v.lossGrad(threads: 2)
            expectStatus(gStatus, SPK_ERR_VALUE, naming: name, "network_loss_grad, bad \(name)")
            XCTAssertEqual(g.g1, .init(repeating: 7, count: v.nIn * v.H))
        }
    }
}
