// Bad input through the C ABI: the right negative status and a last-error message naming the
// argument; never a crash, and no output written.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

final class BadInputTests: XCTestCase {
    /// A small valid problem for the network entry points, with C structs pointing into it.
    final class Problem {
        let B = 3, T = 12, nIn = 10, H = 6, C = 4
        let x: [UInt8]
        let events: EventSet
        var cEvents: spk_events
        var config: spk_net_config
        var w1: [Float], w2: [Float], w: [Float]
        var labels: [Int64]
        var logits: [Float], hidden: [UInt8], membrane: [Float], g1: [Float], g2: [Float], gw: [Float]
        var loss = -1.0

        init() throws {
            var rng = TestRNG(seed: 99)
            x = rng.spikes(count: B * T * nIn, p: 0.3)
            events = try EventSet(dense: x, n: B, steps: T, nIn: nIn)
            cEvents = spk_events(n_samples: Int64(B), steps: Int64(T), n_in: Int64(nIn), n_events: Int64(events.nEvents),
                                 step_ptr: UnsafePointer(events.stepPtr), step_events: UnsafePointer(events.stepEvents),
                                 input_ptr: UnsafePointer(events.inputPtr), input_events: UnsafePointer(events.inputEvents))
            config = spk_net_config(n_in: Int64(nIn), n_hidden: Int64(H), n_out: Int64(C), steps: Int64(T), dt: 1e-3,
                                    tau_hidden: 0.02, tau_output: 0.02, readout: SPK_READOUT_MEAN, beta: 5)
            w1 = rng.weights(count: nIn * H, lo: -20, hi: 40)
            w2 = rng.weights(count: H * C, lo: -32, hi: 32)
            w = rng.weights(count: nIn * C, lo: -32, hi: 32)
            labels = [0, 3, 1]
            logits = .init(repeating: 7, count: B * C)
            hidden = .init(repeating: 7, count: B * T * H)
            membrane = .init(repeating: 7, count: B * T * C)
            g1 = .init(repeating: 7, count: nIn * H); g2 = .init(repeating: 7, count: H * C)
            gw = .init(repeating: 7, count: nIn * C)
        }

        func forward() -> Int32 {
            withExtendedLifetime(events) {
                spk_snn_forward(&config, &cEvents, nil, Int64(B), w1, w2, &logits, &hidden, &membrane, 1)
            }
        }

        func lossGrad() -> Int32 {
            withExtendedLifetime(events) {
                spk_snn_loss_grad(&config, &cEvents, nil, Int64(B), labels, w1, w2, &loss, &g1, &g2, &logits, 2)
            }
        }

        /// The membrane-only network: spk_snn_* with n_hidden 0, w as its w2.
        var moConfig: spk_net_config { var c = config; c.n_hidden = 0; return c }

        func moForward(threads: Int32 = 1) -> Int32 {
            var c = moConfig
            return withExtendedLifetime(events) {
                spk_snn_forward(&c, &cEvents, nil, Int64(B), nil, w, &logits, nil, &membrane, threads)
            }
        }

        func moLossGrad(gradW: Bool = true) -> Int32 {
            var c = moConfig
            return withExtendedLifetime(events) {
                gradW ? spk_snn_loss_grad(&c, &cEvents, nil, Int64(B), labels, nil, w, &loss, nil, &gw, &logits, 1)
                      : spk_snn_loss_grad(&c, &cEvents, nil, Int64(B), labels, nil, w, &loss, nil, nil, nil, 1)
            }
        }
    }

    func expect(_ status: Int32, _ expected: Int32, naming fragment: String, _ what: String,
                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, expected, "\(what): status (message '\(lastError())')", file: file, line: line)
        XCTAssertTrue(lastError().contains(fragment), "\(what): '\(lastError())' does not name '\(fragment)'",
                      file: file, line: line)
    }

    func testValidProblemSucceeds() throws {
        let p = try Problem()
        XCTAssertEqual(p.forward(), SPK_OK, lastError())
        XCTAssertEqual(p.lossGrad(), SPK_OK, lastError())
        XCTAssertTrue(p.loss.isFinite && p.loss > 0)
        XCTAssertEqual(p.moForward(), SPK_OK, lastError())
        XCTAssertEqual(p.moLossGrad(), SPK_OK, lastError())
        XCTAssertEqual(SpikeLocKernels.spk_abi_version(), SPK_ABI_VERSION)
        XCTAssertEqual(SPK_ABI_VERSION, 5)
        XCTAssertGreaterThanOrEqual(SpikeLocKernels.spk_default_threads(), 1)
    }

    func testSNNForwardNullPointers() throws {
        let p = try Problem()
        withExtendedLifetime(p.events) {
            expect(spk_snn_forward(nil, &p.cEvents, nil, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "config", "NULL config")
            expect(spk_snn_forward(&p.config, nil, nil, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "events", "NULL events")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 3, nil, p.w2, &p.logits, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "w1", "NULL w1")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 3, p.w1, nil, &p.logits, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "w2", "NULL w2")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 3, p.w1, p.w2, nil, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "logits", "NULL logits")
            var e = p.cEvents
            e.step_events = nil
            expect(spk_snn_forward(&p.config, &e, nil, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_TYPE,
                   naming: "events.step_events", "NULL events.step_events")
            // optional outputs may be NULL
            XCTAssertEqual(spk_snn_forward(&p.config, &p.cEvents, nil, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_OK,
                           lastError())
        }
    }

    func testSNNConfigValues() throws {
        let p = try Problem()
        let good = p.config
        let cases: [(String, (inout spk_net_config) -> Void)] = [
            ("dt", { $0.dt = 0 }),
            ("dt", { $0.dt = -1e-3 }),
            ("tau_hidden", { $0.tau_hidden = .nan }),
            ("tau_output", { $0.tau_output = .infinity }),
            ("readout", { $0.readout = 7 }),
            ("beta", { $0.beta = 0 }),
            ("n_hidden", { $0.n_hidden = -1 }),  // 0 is the membrane-only network
            ("n_out", { $0.n_out = -2 }),
            ("steps", { $0.steps = 13 }),
            ("n_in", { $0.n_in = 11 }),
        ]
        for (name, mutate) in cases {
            p.config = good
            mutate(&p.config)
            p.logits = .init(repeating: 7, count: p.B * p.C)
            expect(p.forward(), SPK_ERR_VALUE, naming: name, "snn_forward, bad \(name)")
            XCTAssertEqual(p.logits, .init(repeating: 7, count: p.B * p.C), "snn_forward wrote logits despite bad \(name)")
            expect(p.lossGrad(), SPK_ERR_VALUE, naming: name, "snn_loss_grad, bad \(name)")
        }
        p.config = good
        XCTAssertEqual(p.forward(), SPK_OK, lastError())
    }

    func testLabelsAndWeights() throws {
        let p = try Problem()
        p.labels = [0, 4, 1]
        expect(p.lossGrad(), SPK_ERR_VALUE, naming: "labels[1]", "label = C")
        expect(p.moLossGrad(), SPK_ERR_VALUE, naming: "labels[1]", "mo, label = C")
        p.labels = [-1, 0, 0]
        expect(p.lossGrad(), SPK_ERR_VALUE, naming: "labels[0]", "label = -1")
        p.labels = [0, 3, 1]
        XCTAssertEqual(p.lossGrad(), SPK_OK, lastError())
        withExtendedLifetime(p.events) {
            expect(spk_snn_loss_grad(&p.config, &p.cEvents, nil, 3, nil, p.w1, p.w2, &p.loss, &p.g1, &p.g2, nil, 1),
                   SPK_ERR_TYPE, naming: "labels", "NULL labels")
            expect(spk_snn_loss_grad(&p.config, &p.cEvents, nil, 3, p.labels, p.w1, p.w2, nil, &p.g1, &p.g2, nil, 1),
                   SPK_ERR_TYPE, naming: "loss", "NULL loss")
            expect(spk_snn_loss_grad(&p.config, &p.cEvents, nil, 3, p.labels, p.w1, p.w2, &p.loss, nil, &p.g2, nil, 1),
                   SPK_ERR_TYPE, naming: "grad_w1", "NULL grad_w1")

        }
        p.w1[7] = .nan
        expect(p.forward(), SPK_ERR_VALUE, naming: "w1[1, 1]", "NaN in w1")
        p.w1[7] = 0
        p.w2[5] = -.infinity
        expect(p.lossGrad(), SPK_ERR_VALUE, naming: "w2[1, 1]", "infinite w2")
        expect(p.moLossGrad(gradW: false), SPK_ERR_TYPE, naming: "grad_w2", "NULL grad_w2 (membrane-only)")
        p.w[0] = .nan
        expect(p.moForward(), SPK_ERR_VALUE, naming: "w[0, 0]", "NaN in w")
    }

    func testBatchIndexAndThreads() throws {
        let p = try Problem()
        withExtendedLifetime(p.events) {
            let index: [Int64] = [0, 3, 1]
            expect(spk_snn_forward(&p.config, &p.cEvents, index, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_VALUE,
                   naming: "index[1]", "index out of range")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 4, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_VALUE,
                   naming: "index[3]", "batch larger than the data without index")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 0, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_VALUE,
                   naming: "batch", "batch 0")
            expect(spk_snn_forward(&p.config, &p.cEvents, nil, 3, p.w1, p.w2, &p.logits, nil, nil, -1), SPK_ERR_VALUE,
                   naming: "threads", "threads -1")
            expect(p.moForward(threads: 5000), SPK_ERR_VALUE, naming: "threads", "threads 5000")
            var e = p.cEvents
            e.n_events += 1
            expect(spk_snn_forward(&p.config, &e, nil, 3, p.w1, p.w2, &p.logits, nil, nil, 1), SPK_ERR_VALUE,
                   naming: "n_events", "wrong n_events")
            e = p.cEvents
            e.steps = 70000
            expect(spk_events_to_dense(&e, nil, 1), SPK_ERR_TYPE, naming: "x", "NULL x")
            var x = [UInt8](repeating: 0, count: p.x.count)
            expect(spk_events_to_dense(&e, &x, 1), SPK_ERR_VALUE, naming: "events.steps", "steps > 65535")
            XCTAssertEqual(spk_events_to_dense(&p.cEvents, &x, 2), SPK_OK, lastError())
            XCTAssertEqual(x, p.x)
        }
    }

    func testStimulusAndRandomArguments() {
        var params = spk_stimulus_params(dt: 1e-3, steps: 10, freq: 20, anf_per_ear: 4, rate_max: 600, envelope_power: 2,
                                         null_phase_delays: 0)
        let good = params
        let ipd = [0.1, 0.2], phase = [0.0, 0.5]
        var spikes = [UInt8](repeating: 0, count: 2 * 10 * 8)
        XCTAssertEqual(spk_stimulus_noisy(&params, ipd, phase, 2, 1, 0, 0, &spikes, 1), SPK_OK, lastError())
        expect(spk_stimulus_noisy(nil, ipd, phase, 2, 1, 0, 0, &spikes, 1), SPK_ERR_TYPE, naming: "params", "NULL params")
        expect(spk_stimulus_noisy(&params, nil, phase, 2, 1, 0, 0, &spikes, 1), SPK_ERR_TYPE, naming: "ipd", "NULL ipd")
        expect(spk_stimulus_noisy(&params, ipd, phase, 2, 1, 0, 0, nil, 1), SPK_ERR_TYPE, naming: "spikes", "NULL spikes")
        let cases: [(String, (inout spk_stimulus_params) -> Void)] = [
            ("dt", { $0.dt = 0 }),
            ("steps", { $0.steps = 0 }),
            ("freq", { $0.freq = .nan }),
            ("anf_per_ear", { $0.anf_per_ear = 0 }),
            ("rate_max", { $0.rate_max = -1 }),
            ("envelope_power", { $0.envelope_power = .infinity }),
        ]
        for (name, mutate) in cases {
            params = good
            mutate(&params)
            expect(spk_stimulus_noisy(&params, ipd, phase, 2, 1, 0, 0, &spikes, 1), SPK_ERR_VALUE, naming: name, "stimulus, bad \(name)")
        }
        params = good
        expect(spk_stimulus_noisy(&params, [0.1, .nan], phase, 2, 1, 0, 0, &spikes, 1), SPK_ERR_VALUE, naming: "ipd[1]", "NaN ipd")
        expect(spk_stimulus_noisy(&params, ipd, [.infinity, 0], 2, 1, 0, 0, &spikes, 1), SPK_ERR_VALUE, naming: "phase[0]", "inf phase")
        expect(spk_stimulus_noisy(&params, ipd, phase, -1, 1, 0, 0, &spikes, 1), SPK_ERR_VALUE, naming: "n", "n = -1")
        expect(spk_stimulus_noisy(&params, ipd, phase, 2, 1, -3, 0, &spikes, 1), SPK_ERR_VALUE, naming: "first_index", "first_index -3")
        // sample streams stay below SPK_SET_INDEX (the stream of the per-set draws)
        XCTAssertEqual(spk_stimulus_noisy(&params, ipd, phase, 2, 1, Int64.max - 2, 0, &spikes, 1), SPK_OK, lastError())
        expect(spk_stimulus_noisy(&params, ipd, phase, 2, 1, Int64.max - 1, 0, &spikes, 1), SPK_ERR_VALUE, naming: "first_index",
               "sample stream SPK_SET_INDEX")
        var u = [Double](repeating: 0, count: 2)
        expect(spk_uniform53(1, 0, 0, 2, nil), SPK_ERR_TYPE, naming: "out", "NULL out")
        expect(spk_uniform53(1, -1, 0, 2, &u), SPK_ERR_VALUE, naming: "first_index", "negative first_index")
        expect(spk_uniform53(1, Int64.max, 0, 2, &u), SPK_ERR_VALUE, naming: "first_index", "overflowing first_index")
        expect(spk_uniform53(1, 0, 0, -2, &u), SPK_ERR_VALUE, naming: "n", "negative n")
        var f = [Float](repeating: 0, count: 2)
        expect(spk_stimulus_uniforms(1, -1, 2, &f), SPK_ERR_VALUE, naming: "index", "negative index")
        expect(spk_stimulus_uniforms(1, 0, 2, nil), SPK_ERR_TYPE, naming: "out", "NULL out")
    }

    /// The last-error message is per thread: a failure on another thread does not replace it.
    func testLastErrorIsThreadLocal() {
        var u = [Double](repeating: 0, count: 1)
        XCTAssertEqual(spk_uniform53(1, -5, 0, 1, &u), SPK_ERR_VALUE)
        let mine = lastError()
        XCTAssertTrue(mine.contains("first_index"), mine)
        final class Box: @unchecked Sendable { var value = "" }  // written before `done` is signalled
        let theirs = Box()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var s = [Float](repeating: 0, count: 1)
            _ = spk_stimulus_uniforms(1, -1, 1, &s)
            theirs.value = String(cString: spk_last_error())
            done.signal()
        }
        done.wait()
        XCTAssertTrue(theirs.value.contains("index must be >= 0"), theirs.value)
        XCTAssertEqual(lastError(), mine)
        // a message longer than the buffer is truncated, not overflowed
        let long = String(repeating: "x", count: 5000)
        spk_set_error(long)
        XCTAssertEqual(lastError().count, 1023)
        spk_set_error(nil)
        XCTAssertEqual(lastError(), "")
    }

    func testEventsIndexArguments() {
        let x = [UInt8](repeating: 1, count: 2 * 3 * 4)
        var sp = [Int64](repeating: 0, count: 7), ip = [Int64](repeating: 0, count: 9)
        XCTAssertEqual(spk_events_index(x, 2, 3, 4, &sp, &ip, 1), SPK_OK, lastError())
        XCTAssertEqual(sp, [0, 4, 8, 12, 16, 20, 24])
        expect(spk_events_index(nil, 2, 3, 4, &sp, &ip, 1), SPK_ERR_TYPE, naming: "x", "NULL x")
        expect(spk_events_index(x, 2, 3, 4, nil, &ip, 1), SPK_ERR_TYPE, naming: "step_ptr", "NULL step_ptr")
        expect(spk_events_index(x, 2, 70000, 4, &sp, &ip, 1), SPK_ERR_VALUE, naming: "steps", "steps > 65535")
        expect(spk_events_index(x, 2, 3, 0, &sp, &ip, 1), SPK_ERR_VALUE, naming: "n_in", "n_in = 0")
        expect(spk_events_index(x, -1, 3, 4, &sp, &ip, 1), SPK_ERR_VALUE, naming: "n", "n = -1")
        expect(spk_events_index(x, Int64.max / 2, 65535, 65535, &sp, &ip, 1), SPK_ERR_MEMORY, naming: "spikes",
               "size overflow")
        var se = [UInt16](repeating: 0, count: 24), ie = [UInt16](repeating: 0, count: 24)
        expect(spk_events_fill(x, 2, 3, 4, sp, ip, nil, &ie, 1), SPK_ERR_TYPE, naming: "step_events", "NULL step_events")
        XCTAssertEqual(spk_events_fill(x, 2, 3, 4, sp, ip, &se, &ie, 1), SPK_OK, lastError())
        XCTAssertEqual(se, (0..<6).flatMap { _ in [0, 1, 2, 3] as [UInt16] })
    }
}
