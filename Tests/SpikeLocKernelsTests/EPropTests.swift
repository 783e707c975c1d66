// The e-prop kernel (EProp.swift, CABIEProp.swift) against the NumPy reference fixtures
// (eprop_ce, eprop_mse), plus thread determinism and bad input through the C ABI.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

final class EPropTests: XCTestCase {
    /// A fixture case loaded into Swift arrays.
    struct Case {
        let config: EPropConfig
        let B: Int
        let x: [UInt8], labels: [Int64]
        let wIn: [Float], wRec: [Float], wOut: [Float], b: [Float], feedback: [Float]
        let maskIn: [UInt8], maskRec: [UInt8], maskOut: [UInt8]
        let f: Fixture

        init(_ name: String) throws {
            f = try Fixture(name)
            B = try f.int("batch")
            let T = try f.int("steps"), nIn = try f.int("n_in"), H = try f.int("n_hidden"), C = try f.int("n_out")
            let lossName = try f.string("loss")
            config = EPropConfig(nIn: nIn, nHidden: H, nOut: C, steps: T, window: try f.int("window"),
                                 dt: try f.double("dt"), tauM: try f.double("tau_m"), tauOut: try f.double("tau_out"),
                                 vTh: try f.double("v_th"), gamma: try f.double("gamma"), regC: try f.double("reg_c"),
                                 fTarget: try f.double("f_target"), loss: lossName == "mse" ? .mse : .crossEntropy,
                                 recurrent: try f.bool("recurrent"))
            x = try f.array("x", shape: [B, T, nIn]).bytes()
            labels = try f.array("labels", shape: [B]).int64s()
            wIn = try f.array("w_in", shape: [nIn, H]).floats()
            wRec = try f.array("w_rec", shape: [H, H]).floats()
            wOut = try f.array("w_out", shape: [H, C]).floats()
            b = try f.array("b", shape: [C]).floats()
            feedback = try f.array("feedback", shape: [H, C]).floats()
            maskIn = try f.array("mask_in", shape: [nIn, H]).bytes()
            maskRec = try f.array("mask_rec", shape: [H, H]).bytes()
            maskOut = try f.array("mask_out", shape: [H, C]).bytes()
        }
    }

    struct Grads { var loss: Double; var wIn: [Float], wRec: [Float], wOut: [Float], b: [Float], logits: [Float] }

    func lossGrad(_ c: Case, threads: Int) throws -> Grads {
        let H = c.config.nHidden, C = c.config.nOut, nIn = c.config.nIn
        var g = Grads(loss: .nan, wIn: .init(repeating: .nan, count: nIn * H), wRec: .init(repeating: .nan, count: H * H),
                      wOut: .init(repeating: .nan, count: H * C), b: .init(repeating: .nan, count: C),
                      logits: .init(repeating: .nan, count: c.B * C))
        let ev = try EventSet(dense: c.x, n: c.B, steps: c.config.steps, nIn: nIn)
        try ev.with { data in
            try g.wIn.withUnsafeMutableBufferPointer { gi in
                try g.wRec.withUnsafeMutableBufferPointer { gr in
                    try g.wOut.withUnsafeMutableBufferPointer { go in
                        try g.b.withUnsafeMutableBufferPointer { gb in
                            try g.logits.withUnsafeMutableBufferPointer { lp in
                                g.loss = try epropLossGrad(
                                    c.config, data, index: nil, batch: c.B, labels: c.labels,
                                    weights: EPropWeights(wIn: c.wIn, wRec: c.wRec, wOut: c.wOut, b: c.b, feedback: c.feedback),
                                    masks: EPropMasks(wIn: c.maskIn, wRec: c.maskRec, wOut: c.maskOut),
                                    gradients: EPropGradients(wIn: gi.baseAddress!, wRec: gr.baseAddress!,
                                                              wOut: go.baseAddress!, b: gb.baseAddress!),
                                    logits: lp.baseAddress!, threads: threads)
                            }
                        }
                    }
                }
            }
        }
        return g
    }

    func checkCase(_ name: String) throws {
        let c = try Case(name)
        let g = try lossGrad(c, threads: 2)
        let f = c.f
        assertClose([g.loss], [try f.double("loss_value")], relative: 1e-4, "\(name) loss")
        assertClose(g.wIn, try f.array("grad_w_in").doubles(), relative: 1e-4, "\(name) grad_w_in")
        if c.config.recurrent {
            assertClose(g.wRec, try f.array("grad_w_rec").doubles(), relative: 1e-4, "\(name) grad_w_rec")
        }
        assertClose(g.wOut, try f.array("grad_w_out").doubles(), relative: 1e-4, "\(name) grad_w_out")
        assertClose(g.b, try f.array("grad_b").doubles(), relative: 1e-4, "\(name) grad_b")
        assertClose(g.logits, try f.array("logits").doubles(), relative: 1e-4, "\(name) logits")
        // absent synapses get exactly zero
        for e in 0..<c.maskIn.count where c.maskIn[e] == 0 { XCTAssertEqual(g.wIn[e], 0) }
        XCTAssertTrue(g.wIn.contains { $0 != 0 }, "\(name): all-zero input gradient")

        // recordings of the forward pass
        let T = c.config.steps, H = c.config.nHidden, C = c.config.nOut
        var logits = [Float](repeating: .nan, count: c.B * C), voltage = [Float](repeating: .nan, count: c.B * T * H)
        var spikes = [UInt8](repeating: 7, count: c.B * T * H), signal = [Float](repeating: .nan, count: c.B * T * H)
        var psi = [Float](repeating: .nan, count: c.B * T * H), readout = [Float](repeating: .nan, count: c.B * T * C)
        let ev = try EventSet(dense: c.x, n: c.B, steps: T, nIn: c.config.nIn)
        try ev.with { data in
            try logits.withUnsafeMutableBufferPointer { lp in
                try voltage.withUnsafeMutableBufferPointer { vp in
                    try spikes.withUnsafeMutableBufferPointer { sp in
                        try signal.withUnsafeMutableBufferPointer { lsp in
                            try psi.withUnsafeMutableBufferPointer { pp in
                                try readout.withUnsafeMutableBufferPointer { rp in
                                    try c.labels.withUnsafeBufferPointer { labels in
                                        try epropForward(c.config, data, index: nil, batch: c.B, labels: labels.baseAddress!,
                                                         weights: EPropWeights(wIn: c.wIn, wRec: c.wRec, wOut: c.wOut, b: c.b,
                                                                               feedback: c.feedback),
                                                         logits: lp.baseAddress!,
                                                         recordings: EPropRecordings(voltage: vp.baseAddress!, spikes: sp.baseAddress!,
                                                                                     psi: pp.baseAddress!, learningSignal: lsp.baseAddress!,
                                                                                     readout: rp.baseAddress!),
                                                         threads: 1)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(spikes, try f.array("spikes").bytes(), "\(name) spikes")
        assertClose(voltage, try f.array("voltage").doubles(), relative: 1e-4, "\(name) voltage")
        assertClose(readout, try f.array("readout").doubles(), relative: 1e-4, "\(name) readout")
        assertClose(signal, try f.array("learning_signal").doubles(), relative: 1e-4, "\(name) learning signal")
        assertClose(logits, try f.array("logits").doubles(), relative: 1e-4, "\(name) forward logits")
    }

    func testCrossEntropyRecurrentFixture() throws { try checkCase("eprop_ce") }
    func testMSEFeedForwardFixture() throws { try checkCase("eprop_mse") }

    func testThreadCountDoesNotChangeResults() throws {
        let c = try Case("eprop_ce")
        let one = try lossGrad(c, threads: 1)
        for threads in [2, 4] {
            let other = try lossGrad(c, threads: threads)
            XCTAssertEqual(other.loss.bitPattern, one.loss.bitPattern)
            XCTAssertEqual(bitPatterns(other.wIn), bitPatterns(one.wIn))
            XCTAssertEqual(bitPatterns(other.wRec), bitPatterns(one.wRec))
            XCTAssertEqual(bitPatterns(other.wOut), bitPatterns(one.wOut))
            XCTAssertEqual(bitPatterns(other.b), bitPatterns(one.b))
        }
    }

    func testBadInputThroughTheCABI() throws {
        let c = try Case("eprop_ce")
        let ev = try EventSet(dense: c.x, n: c.B, steps: c.config.steps, nIn: c.config.nIn)
        var events = spk_events(n_samples: Int64(c.B), steps: Int64(c.config.steps), n_in: Int64(c.config.nIn),
                                n_events: Int64(ev.nEvents), step_ptr: UnsafePointer(ev.stepPtr),
                                step_events: UnsafePointer(ev.stepEvents), input_ptr: UnsafePointer(ev.inputPtr),
                                input_events: UnsafePointer(ev.inputEvents))
        var config = spk_eprop_config(n_in: Int64(c.config.nIn), n_hidden: Int64(c.config.nHidden),
                                      n_out: Int64(c.config.nOut), steps: Int64(c.config.steps), window: Int64(c.config.window),
                                      dt: c.config.dt, tau_m: c.config.tauM, tau_out: c.config.tauOut, v_th: c.config.vTh,
                                      gamma: c.config.gamma, reg_c: c.config.regC, f_target: c.config.fTarget,
                                      loss: SPK_EPROP_CROSS_ENTROPY, recurrent: 1)
        var logits = [Float](repeating: 7, count: c.B * c.config.nOut)
        func forward(_ wRec: UnsafePointer<Float>?) -> Int32 {
            withExtendedLifetime(ev) {
                spk_eprop_forward(&config, &events, nil, Int64(c.B), nil, c.wIn, wRec, c.wOut, c.b, nil, &logits,
                                  nil, nil, nil, nil, nil, 1)
            }
        }
        XCTAssertEqual(c.wRec.withUnsafeBufferPointer { forward($0.baseAddress) }, SPK_OK)
        XCTAssertEqual(forward(nil), SPK_ERR_TYPE)
        XCTAssertTrue(lastError().contains("w_rec"), lastError())
        config.window = config.steps + 1
        XCTAssertEqual(c.wRec.withUnsafeBufferPointer { forward($0.baseAddress) }, SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("window"), lastError())
        config.window = 3
        config.v_th = 0
        XCTAssertEqual(c.wRec.withUnsafeBufferPointer { forward($0.baseAddress) }, SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("v_th"), lastError())
        config.v_th = 0.6
        config.loss = 9
        XCTAssertEqual(c.wRec.withUnsafeBufferPointer { forward($0.baseAddress) }, SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("loss"), lastError())
        config.loss = SPK_EPROP_MSE
        var badW = c.wIn
        badW[3] = .nan
        let status = withExtendedLifetime(ev) {
            spk_eprop_forward(&config, &events, nil, Int64(c.B), nil, badW, c.wRec, c.wOut, c.b, nil, &logits,
                              nil, nil, nil, nil, nil, 1)
        }
        XCTAssertEqual(status, SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("w_in"), lastError())
        // the gradient call needs feedback and labels
        var loss = 0.0
        var g1 = [Float](repeating: 0, count: 1000), g2 = g1, g3 = g1, g4 = g1
        let noFeedback = withExtendedLifetime(ev) {
            spk_eprop_loss_grad(&config, &events, nil, Int64(c.B), c.labels, c.wIn, c.wRec, c.wOut, c.b, nil,
                                nil, nil, nil, &loss, &g1, &g2, &g3, &g4, nil, 1)
        }
        XCTAssertEqual(noFeedback, SPK_ERR_TYPE)
        XCTAssertTrue(lastError().contains("feedback"), lastError())
        let badLabels: [Int64] = [0, 1, 5, 0]
        let outOfRange = withExtendedLifetime(ev) {
            spk_eprop_loss_grad(&config, &events, nil, Int64(c.B), badLabels, c.wIn, c.wRec, c.wOut, c.b, c.feedback,
                                nil, nil, nil, &loss, &g1, &g2, &g3, &g4, nil, 1)
        }
        XCTAssertEqual(outOfRange, SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("labels"), lastError())
    }
}
