// The general network (GeneralNetwork.swift: delays, recurrent and stacked layers, e-prop's
// readout) through the C ABI: agreement with the NumPy-made fixtures `network_*`
// (python/spikeloc/reference/network_fixtures.py), bit-identical results for every thread
// count, and bad configurations rejected with a message naming the argument.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// A `network_*` fixture and the C structs of its call; arrays are owned here and the struct
/// points into them, so calls go through `withExtendedLifetime(self)`.
final class NetworkFixture {
    let f: Fixture
    let B: Int, T: Int, nIn: Int, C: Int, units: Int
    let x: [UInt8], labels: [Int64], params: [Float], signs: [Float]?
    let hidden: UnsafeMutablePointer<Int64>, recurrent: UnsafeMutablePointer<UInt8>
    let events: EventSet
    var cEvents: spk_events
    var net: spk_network

    init(_ name: String) throws {
        f = try Fixture(name)
        B = try f.int("batch"); T = try f.int("steps"); nIn = try f.int("n_in"); C = try f.int("n_out")
        guard let sizes = f.params["hidden"] as? [NSNumber], let flags = f.params["recurrent"] as? [NSNumber] else {
            throw FixtureError("\(name): hidden / recurrent are not lists")
        }
        let L = sizes.count
        hidden = .allocate(capacity: Swift.max(L, 1)); recurrent = .allocate(capacity: Swift.max(L, 1))
        for l in 0..<L { hidden[l] = sizes[l].int64Value; recurrent[l] = flags[l].boolValue ? 1 : 0 }
        units = sizes.reduce(0) { $0 + $1.intValue }
        x = try f.array("x", shape: [B, T, nIn]).bytes()
        labels = try f.array("labels", shape: [B]).int64s()
        params = try f.array("params").floats()
        signs = try f.bool("dale") ? try f.array("signs").floats() : nil
        events = try EventSet(dense: x, n: B, steps: T, nIn: nIn)
        cEvents = spk_events(n_samples: Int64(B), steps: Int64(T), n_in: Int64(nIn), n_events: Int64(events.nEvents),
                             step_ptr: UnsafePointer(events.stepPtr), step_events: UnsafePointer(events.stepEvents),
                             input_ptr: UnsafePointer(events.inputPtr), input_events: UnsafePointer(events.inputEvents))
        let heads = ["mean": SPK_READOUT_MEAN, "sum": SPK_READOUT_SUM, "max": SPK_READOUT_MAX,
                     "spike_count": SPK_READOUT_SPIKE_COUNT, "window": SPK_READOUT_WINDOW]
        let resets = ["delayed": SPK_RESET_DELAYED, "same_step": SPK_RESET_SAME_STEP,
                      "subtractive": SPK_RESET_SUBTRACTIVE, "zero": SPK_RESET_ZERO]
        let surrogates = ["sigmoid": SPK_SURROGATE_SIGMOID, "fast_sigmoid": SPK_SURROGATE_FAST_SIGMOID,
                          "arctan": SPK_SURROGATE_ARCTAN, "piecewise_linear": SPK_SURROGATE_PIECEWISE_LINEAR]
        let delays = ["none": SPK_DELAYS_NONE, "input": SPK_DELAYS_INPUT, "synapse": SPK_DELAYS_SYNAPSE]
        let rates = ["none": SPK_RATE_NONE, "upper": SPK_RATE_UPPER, "target": SPK_RATE_TARGET]
        guard let head = heads[try f.string("readout")], let reset = resets[try f.string("reset")],
              let surrogate = surrogates[try f.string("surrogate")], let delay = delays[try f.string("delays")],
              let rate = rates[try f.string("rate")] else { throw FixtureError("\(name): unknown option") }
        net = spk_network(n_in: Int64(nIn), n_out: Int64(C), steps: Int64(T), n_layers: Int64(L),
                          hidden: L > 0 ? UnsafePointer(hidden) : nil, recurrent: L > 0 ? UnsafePointer(recurrent) : nil,
                          dt: try f.double("dt"), beta: try f.double("beta"), reset: reset, surrogate: surrogate,
                          detach_reset: try f.bool("detach_reset") ? 1 : 0, adapt_tau: try f.double("adapt_tau"),
                          adapt_strength: try f.double("adapt_strength"), readout: head,
                          window: Int64(try f.int("window")),
                          window_loss: try f.string("window_loss") == "mse" ? SPK_EPROP_MSE : SPK_EPROP_CROSS_ENTROPY,
                          timing: try f.string("timing") == "eprop" ? SPK_TIMING_EPROP : SPK_TIMING_SEEDS,
                          bias: try f.bool("bias") ? 1 : 0, delays: delay, max_delay: Int64(try f.int("max_delay")),
                          rate: rate, rate_c: try f.double("rate_c"), rate_ref: try f.double("rate_ref"),
                          dropout: try f.double("dropout"), dropout_seed: try f.uint64("dropout_seed"))
    }

    deinit { hidden.deallocate(); recurrent.deallocate() }

    struct Forward { var logits: [Float], hidden: [UInt8], membrane: [Float] }
    struct Gradients { var loss: Double, grads: [Float], logits: [Float] }

    func forward(threads: Int32) -> (Int32, Forward) {
        var out = Forward(logits: .init(repeating: 7, count: B * C), hidden: .init(repeating: 7, count: B * T * units),
                          membrane: .init(repeating: 7, count: B * T * C))
        let status = withExtendedLifetime(self) {
            spk_network_forward(&net, &cEvents, nil, Int64(B), params, Int64(params.count), signs,
                                Int64(signs?.count ?? 0), &out.logits, &out.hidden, &out.membrane,
                                threads)
        }
        return (status, out)
    }

    func lossGrad(threads: Int32) -> (Int32, Gradients) {
        var g = Gradients(loss: -1, grads: .init(repeating: 7, count: params.count), logits: .init(repeating: 7, count: B * C))
        let status = withExtendedLifetime(self) {
            spk_network_loss_grad(&net, &cEvents, nil, Int64(B), labels, params, Int64(params.count), signs,
                                  Int64(signs?.count ?? 0), &g.loss, &g.grads, &g.logits, threads)
        }
        return (status, g)
    }
}

final class GeneralNetworkTests: XCTestCase {
    func checkFixture(_ name: String) throws {
        let v = try NetworkFixture(name)
        let f = v.f
        var sizes: (Int64, Int64) = (0, 0)
        XCTAssertEqual(spk_network_sizes(&v.net, &sizes.0, &sizes.1), SPK_OK, lastError())
        XCTAssertEqual(Int(sizes.0), v.params.count, "\(name): the parameter layout")
        if let s = v.signs { XCTAssertEqual(Int(sizes.1), s.count, "\(name): the sign layout") }

        let (status, fw) = v.forward(threads: 1)
        XCTAssertEqual(status, SPK_OK, lastError())
        if v.units > 0 {
            let expected = try f.array("hidden_spikes").bytes()
            XCTAssertEqual(zip(fw.hidden, expected).filter { $0 != $1 }.count, 0, "\(name): hidden spikes")
            XCTAssertGreaterThan(expected.filter { $0 == 1 }.count, 0, "\(name): the fixture has hidden spikes")
        }
        assertClose(fw.logits, try f.array("logits").doubles(), relative: 1e-5, "\(name): logits")
        assertClose(fw.membrane, try f.array("output_membrane").doubles(), relative: 1e-5, "\(name): output membrane")

        let (gStatus, g) = v.lossGrad(threads: 1)
        XCTAssertEqual(gStatus, SPK_OK, lastError())
        let loss = try f.double("loss")
        XCTAssertEqual(g.loss, loss, accuracy: 1e-5 * Swift.abs(loss), "\(name): loss")
        assertClose(g.logits, try f.array("train_logits").doubles(), relative: 1e-5, "\(name): training logits")
        let want = try f.array("grads").doubles()
        XCTAssertGreaterThan(want.map { Swift.abs($0) }.max()!, 0, "\(name): the fixture's gradient is zero")
        assertClose(g.grads, want, relative: 1e-4, "\(name): gradients")
        for threads: Int32 in [2, 4, 0] {
            let (_, gt) = v.lossGrad(threads: threads)
            XCTAssertEqual(gt.loss.bitPattern, g.loss.bitPattern, "\(name): loss, threads \(threads)")
            XCTAssertEqual(bitPatterns(gt.grads), bitPatterns(g.grads), "\(name): gradients, threads \(threads)")
            XCTAssertEqual(bitPatterns(gt.logits), bitPatterns(g.logits), "\(name): logits, threads \(threads)")
            let (_, ft) = v.forward(threads: threads)
            XCTAssertEqual(ft.hidden, fw.hidden)
            XCTAssertEqual(bitPatterns(ft.logits), bitPatterns(fw.logits))
        }
    }

    func testRecurrentLayerWithInputDelays() throws { try checkFixture("network_delays_input") }
    func testDeepNetworkWithSynapseDelays() throws { try checkFixture("network_deep_synapse") }
    func testEPropReadoutAndTiming() throws { try checkFixture("network_eprop") }
    func testMembraneOnlyWithDelays() throws { try checkFixture("network_membrane_delays") }
    func testDeepSpikeCount() throws { try checkFixture("network_spike_count_deep") }

    func testBadConfigurations() throws {
        let v = try NetworkFixture("network_deep_synapse")
        let good = v.net
        let cases: [(String, (inout spk_network) -> Void)] = [
            ("n_layers", { $0.n_layers = 65 }),
            ("n_layers", { $0.n_layers = -1 }),
            ("net.reset", { $0.reset = 4 }),
            ("net.surrogate", { $0.surrogate = 4 }),
            ("net.readout", { $0.readout = 5 }),
            ("net.window_loss", { $0.window_loss = 2 }),
            ("net.timing", { $0.timing = 2 }),
            ("net.delays", { $0.delays = 3 }),
            ("net.rate", { $0.rate = -1 }),
            ("window", { $0.window = Int64(v.T + 1) }),
            ("max_delay", { $0.max_delay = -1 }),
            ("dropout", { $0.dropout = 1 }),
            ("beta", { $0.beta = .nan }),
            ("rate_c", { $0.rate_c = -1 }),
            ("n_params", { $0.bias = 0 }),
            ("spike-count", { $0.readout = SPK_READOUT_SPIKE_COUNT; $0.timing = SPK_TIMING_EPROP }),
        ]
        for (name, mutate) in cases {
            v.net = good
            mutate(&v.net)
            let (status, fw) = v.forward(threads: 1)
            expectStatus(status, SPK_ERR_VALUE, naming: name, "network_forward, bad \(name)")
            XCTAssertEqual(fw.logits, .init(repeating: 7, count: v.B * v.C), "network_forward wrote logits despite bad \(name)")
            let (gStatus, g) = v.lossGrad(threads: 2)
            expectStatus(gStatus, SPK_ERR_VALUE, naming: name, "network_loss_grad, bad \(name)")
            XCTAssertEqual(g.grads, .init(repeating: 7, count: v.params.count))
        }
        v.net = good
        withExtendedLifetime(v) {
            var logits = [Float](repeating: 0, count: v.B * v.C)
            expectStatus(spk_network_forward(nil, &v.cEvents, nil, Int64(v.B), v.params, Int64(v.params.count), nil, 0,
                                       &logits, nil, nil, 1), SPK_ERR_TYPE, naming: "net", "NULL net")
            v.net.hidden = nil
            expectStatus(spk_network_forward(&v.net, &v.cEvents, nil, Int64(v.B), v.params, Int64(v.params.count), nil, 0,
                                       &logits, nil, nil, 1), SPK_ERR_TYPE, naming: "net.hidden", "NULL hidden sizes")
            v.net = good
            // a delay outside [0, max_delay] and a sign that is not -1, 0 or +1
            var params = v.params, signs = v.signs!
            var sizes: (Int64, Int64) = (0, 0)
            XCTAssertEqual(spk_network_sizes(&v.net, &sizes.0, &sizes.1), SPK_OK)
            let delayStart = params.count - 8 - 6 - v.C - Int(v.nIn) * 8
            params[delayStart] = 3.5
            expectStatus(spk_network_forward(&v.net, &v.cEvents, nil, Int64(v.B), params, Int64(params.count), signs,
                                       Int64(signs.count), &logits, nil, nil, 1), SPK_ERR_VALUE, naming: "delays[0]",
                   "delay above max_delay")
            signs[1] = 0.5
            expectStatus(spk_network_forward(&v.net, &v.cEvents, nil, Int64(v.B), v.params, Int64(v.params.count), signs,
                                       Int64(signs.count), &logits, nil, nil, 1), SPK_ERR_VALUE, naming: "sign_w1[1]",
                   "sign 0.5")
            expectStatus(spk_network_forward(&v.net, &v.cEvents, nil, Int64(v.B), v.params, Int64(v.params.count), v.signs,
                                       Int64(signs.count - 1), &logits, nil, nil, 1), SPK_ERR_VALUE, naming: "n_signs",
                   "short sign vector")
        }
    }
}
