// The spiking network and the membrane-only network against the NumPy reference fixtures,
// plus thread determinism, batch indexing and finite-difference checks.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

// MARK: - kernel calls returning arrays

struct ForwardResult {
    var logits: [Float], hiddenSpikes: [UInt8], membrane: [Float]
}

struct GradResult {
    var loss: Double, gradW1: [Float], gradW2: [Float], logits: [Float]
}

func readout(_ name: String) throws -> Readout {
    switch name {
    case "mean": return .mean
    case "sum": return .sum
    case "max": return .max
    default: throw FixtureError("unknown readout '\(name)'")
    }
}

func runSNNForward(_ config: NetConfig, _ ev: EventSet, index: [Int64]?, batch: Int, w1: [Float], w2: [Float],
                   threads: Int) throws -> ForwardResult {
    var r = ForwardResult(logits: .init(repeating: .nan, count: batch * config.nOut),
                          hiddenSpikes: .init(repeating: 0xAA, count: batch * config.steps * config.nHidden),
                          membrane: .init(repeating: .nan, count: batch * config.steps * config.nOut))
    try ev.with { data in
        try r.logits.withUnsafeMutableBufferPointer { lp in
            try r.hiddenSpikes.withUnsafeMutableBufferPointer { hp in
                try r.membrane.withUnsafeMutableBufferPointer { mp in
                    let outputs = ForwardOutputs(logits: lp.baseAddress!, hiddenSpikes: hp.baseAddress!,
                                                 outputMembrane: mp.baseAddress!)
                    if let index {
                        try index.withUnsafeBufferPointer { ip in
                            try snnForward(config, data, index: ip.baseAddress!, batch: batch, w1: w1, w2: w2,
                                           outputs: outputs, threads: threads)
                        }
                    } else {
                        try snnForward(config, data, index: nil, batch: batch, w1: w1, w2: w2, outputs: outputs,
                                       threads: threads)
                    }
                }
            }
        }
    }
    return r
}

func runSNNLossGrad(_ config: NetConfig, _ ev: EventSet, index: [Int64]?, batch: Int, labels: [Int64],
                    w1: [Float], w2: [Float], threads: Int) throws -> GradResult {
    var r = GradResult(loss: .nan, gradW1: .init(repeating: .nan, count: config.nIn * config.nHidden),
                       gradW2: .init(repeating: .nan, count: config.nHidden * config.nOut),
                       logits: .init(repeating: .nan, count: batch * config.nOut))
    try ev.with { data in
        try r.gradW1.withUnsafeMutableBufferPointer { g1 in
            try r.gradW2.withUnsafeMutableBufferPointer { g2 in
                try r.logits.withUnsafeMutableBufferPointer { lp in
                    if let index {
                        r.loss = try index.withUnsafeBufferPointer { ip in
                            try snnLossGrad(config, data, index: ip.baseAddress!, batch: batch, labels: labels, w1: w1, w2: w2,
                                            gradW1: g1.baseAddress!, gradW2: g2.baseAddress!, logits: lp.baseAddress!,
                                            threads: threads)
                        }
                    } else {
                        r.loss = try snnLossGrad(config, data, index: nil, batch: batch, labels: labels, w1: w1, w2: w2,
                                                 gradW1: g1.baseAddress!, gradW2: g2.baseAddress!, logits: lp.baseAddress!,
                                                 threads: threads)
                    }
                }
            }
        }
    }
    return r
}

func runMOForward(_ config: NetConfig, _ ev: EventSet, index: [Int64]?, batch: Int, w: [Float],
                  threads: Int) throws -> ForwardResult {
    var r = ForwardResult(logits: .init(repeating: .nan, count: batch * config.nOut), hiddenSpikes: [],
                          membrane: .init(repeating: .nan, count: batch * config.steps * config.nOut))
    try ev.with { data in
        try r.logits.withUnsafeMutableBufferPointer { lp in
            try r.membrane.withUnsafeMutableBufferPointer { mp in
                if let index {
                    try index.withUnsafeBufferPointer { ip in
                        try membraneOnlyForward(config, data, index: ip.baseAddress!, batch: batch, w: w,
                                                logits: lp.baseAddress!, outputMembrane: mp.baseAddress!, threads: threads)
                    }
                } else {
                    try membraneOnlyForward(config, data, index: nil, batch: batch, w: w, logits: lp.baseAddress!,
                                            outputMembrane: mp.baseAddress!, threads: threads)
                }
            }
        }
    }
    return r
}

func runMOLossGrad(_ config: NetConfig, _ ev: EventSet, index: [Int64]?, batch: Int, labels: [Int64], w: [Float],
                   threads: Int) throws -> GradResult {
    var r = GradResult(loss: .nan, gradW1: .init(repeating: .nan, count: config.nIn * config.nOut), gradW2: [],
                       logits: .init(repeating: .nan, count: batch * config.nOut))
    try ev.with { data in
        try r.gradW1.withUnsafeMutableBufferPointer { g in
            try r.logits.withUnsafeMutableBufferPointer { lp in
                if let index {
                    r.loss = try index.withUnsafeBufferPointer { ip in
                        try membraneOnlyLossGrad(config, data, index: ip.baseAddress!, batch: batch, labels: labels, w: w,
                                                 gradW: g.baseAddress!, logits: lp.baseAddress!, threads: threads)
                    }
                } else {
                    r.loss = try membraneOnlyLossGrad(config, data, index: nil, batch: batch, labels: labels, w: w,
                                                      gradW: g.baseAddress!, logits: lp.baseAddress!, threads: threads)
                }
            }
        }
    }
    return r
}

/// Mean over the batch of -log softmax(m_b)[y_b], in double, from float logits.
func crossEntropy(_ logits: [Float], labels: [Int64], classes C: Int) -> Double {
    var total = 0.0
    for b in 0..<labels.count {
        let m = (0..<C).map { Double(logits[b * C + $0]) }
        let top = m.max()!
        let lse = top + log(m.reduce(0) { $0 + exp($1 - top) })
        total += lse - m[Int(labels[b])]
    }
    return total / Double(labels.count)
}

/// Rows `index` of a row-major array with rows of `width` elements.
func gatherRows<T>(_ a: [T], width: Int, _ index: [Int64]) -> [T] {
    index.flatMap { a[(Int($0) * width)..<(Int($0) * width + width)] }
}

// MARK: - fixtures

struct SNNFixture {
    let name: String
    let config: NetConfig
    let batch: Int
    let x: [UInt8], labels: [Int64], w1: [Float], w2: [Float]
    let hiddenSpikes: [UInt8], membrane: [Double], logits: [Double], gradW1: [Double], gradW2: [Double]
    let loss: Double

    init(_ name: String) throws {
        let f = try Fixture(name)
        self.name = name
        let B = try f.int("batch"), T = try f.int("steps"), nIn = try f.int("n_in")
        let H = try f.int("n_hidden"), C = try f.int("n_out")
        batch = B
        config = NetConfig(nIn: nIn, nHidden: H, nOut: C, steps: T, dt: try f.double("dt"),
                           tauHidden: try f.double("tau_hidden"), tauOutput: try f.double("tau_output"),
                           readout: try readout(try f.string("readout")), beta: try f.double("beta"))
        x = try f.array("x", shape: [B, T, nIn]).bytes()
        labels = try f.array("labels", shape: [B]).int64s()
        w1 = try f.array("w1", shape: [nIn, H]).floats()
        w2 = try f.array("w2", shape: [H, C]).floats()
        hiddenSpikes = try f.array("hidden_spikes", shape: [B, T, H]).bytes()
        membrane = try f.array("output_membrane", shape: [B, T, C]).doubles()
        logits = try f.array("logits", shape: [B, C]).doubles()
        gradW1 = try f.array("grad_w1", shape: [nIn, H]).doubles()
        gradW2 = try f.array("grad_w2", shape: [H, C]).doubles()
        loss = try f.double("loss")
    }

    func events() throws -> EventSet { try EventSet(dense: x, n: batch, steps: config.steps, nIn: config.nIn) }
}

struct MOFixture {
    let name: String
    let config: NetConfig
    let batch: Int
    let x: [UInt8], labels: [Int64], w: [Float]
    let membrane: [Double], logits: [Double], gradW: [Double]
    let loss: Double

    init(_ name: String) throws {
        let f = try Fixture(name)
        self.name = name
        let B = try f.int("batch"), T = try f.int("steps"), nIn = try f.int("n_in"), C = try f.int("n_out")
        batch = B
        // n_hidden and tau_hidden are ignored by the membrane-only network
        config = NetConfig(nIn: nIn, nHidden: 0, nOut: C, steps: T, dt: try f.double("dt"), tauHidden: 0,
                           tauOutput: try f.double("tau_output"), readout: try readout(try f.string("readout")))
        x = try f.array("x", shape: [B, T, nIn]).bytes()
        labels = try f.array("labels", shape: [B]).int64s()
        w = try f.array("w", shape: [nIn, C]).floats()
        membrane = try f.array("output_membrane", shape: [B, T, C]).doubles()
        logits = try f.array("logits", shape: [B, C]).doubles()
        gradW = try f.array("grad_w", shape: [nIn, C]).doubles()
        loss = try f.double("loss")
    }

    func events() throws -> EventSet { try EventSet(dense: x, n: batch, steps: config.steps, nIn: config.nIn) }
}

// MARK: - tests

final class SNNTests: XCTestCase {
    func checkFixture(_ name: String) throws {
        let f = try SNNFixture(name)
        let ev = try f.events()
        let B = f.batch, T = f.config.steps, H = f.config.nHidden, C = f.config.nOut

        // forward
        let fw = try runSNNForward(f.config, ev, index: nil, batch: B, w1: f.w1, w2: f.w2, threads: 1)
        let spikeMismatches = zip(fw.hiddenSpikes, f.hiddenSpikes).filter { $0 != $1 }.count
        XCTAssertEqual(spikeMismatches, 0, "\(name): hidden spikes differ in \(spikeMismatches) of \(f.hiddenSpikes.count)")
        XCTAssertGreaterThan(f.hiddenSpikes.filter { $0 == 1 }.count, 0, "\(name): the fixture has hidden spikes")
        assertClose(fw.membrane, f.membrane, relative: 1e-5, "\(name): output membrane")
        assertClose(fw.logits, f.logits, relative: 1e-5, "\(name): logits")
        // u_0 = 0 for every sample and class
        for b in 0..<B { for c in 0..<C { XCTAssertEqual(fw.membrane[b * T * C + c], 0) } }
        // s_0 = 0 and spikes come in pairs only where the reset acts: s_1 = H(v_0 - 1) = 0
        for b in 0..<B { for j in 0..<H { XCTAssertEqual(fw.hiddenSpikes[(b * T + 1) * H + j], 0) } }

        // loss and gradients
        let g = try runSNNLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w1: f.w1, w2: f.w2, threads: 1)
        XCTAssertEqual(g.loss, f.loss, accuracy: 1e-6 * Swift.abs(f.loss), "\(name): loss")
        assertClose(g.gradW1, f.gradW1, relative: 1e-4, "\(name): grad_w1")
        assertClose(g.gradW2, f.gradW2, relative: 1e-4, "\(name): grad_w2")
        XCTAssertGreaterThan(f.gradW1.map { Swift.abs($0) }.max()!, 0, "\(name): grad_w1 of the fixture is zero")
        XCTAssertEqual(bitPatterns(g.logits), bitPatterns(fw.logits), "\(name): logits of snnLossGrad and snnForward")
        XCTAssertEqual(g.loss, crossEntropy(g.logits, labels: f.labels, classes: C), accuracy: 1e-6 * g.loss)

        // thread counts give bit-identical results
        for threads in [2, 4, 0] {
            let gt = try runSNNLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w1: f.w1, w2: f.w2,
                                        threads: threads)
            XCTAssertEqual(gt.loss.bitPattern, g.loss.bitPattern, "\(name): loss, threads \(threads)")
            XCTAssertEqual(bitPatterns(gt.gradW1), bitPatterns(g.gradW1), "\(name): grad_w1, threads \(threads)")
            XCTAssertEqual(bitPatterns(gt.gradW2), bitPatterns(g.gradW2), "\(name): grad_w2, threads \(threads)")
            let ft = try runSNNForward(f.config, ev, index: nil, batch: B, w1: f.w1, w2: f.w2, threads: threads)
            XCTAssertEqual(bitPatterns(ft.logits), bitPatterns(fw.logits), "\(name): forward logits, threads \(threads)")
            XCTAssertEqual(ft.hiddenSpikes, fw.hiddenSpikes)
            XCTAssertEqual(bitPatterns(ft.membrane), bitPatterns(fw.membrane))
        }

        // a permutation of the batch permutes the results
        let perm: [Int64] = [3, 0, 4, 1, 2]
        XCTAssertEqual(perm.count, B)
        let fp = try runSNNForward(f.config, ev, index: perm, batch: B, w1: f.w1, w2: f.w2, threads: 2)
        XCTAssertEqual(bitPatterns(fp.logits), bitPatterns(gatherRows(fw.logits, width: C, perm)), "\(name): permuted logits")
        XCTAssertEqual(fp.hiddenSpikes, gatherRows(fw.hiddenSpikes, width: T * H, perm), "\(name): permuted hidden spikes")
        XCTAssertEqual(bitPatterns(fp.membrane), bitPatterns(gatherRows(fw.membrane, width: T * C, perm)))
        let permLabels = perm.map { f.labels[Int($0)] }
        let gp = try runSNNLossGrad(f.config, ev, index: perm, batch: B, labels: permLabels, w1: f.w1, w2: f.w2, threads: 2)
        XCTAssertEqual(gp.loss, g.loss, accuracy: 1e-12 * g.loss, "\(name): permuted loss")
        assertClose(gp.gradW1, g.gradW1, relative: 1e-5, "\(name): permuted grad_w1")
        assertClose(gp.gradW2, g.gradW2, relative: 1e-5, "\(name): permuted grad_w2")
        XCTAssertEqual(bitPatterns(gp.logits), bitPatterns(gatherRows(fw.logits, width: C, perm)))

        // a subset with a repeated sample
        let subset: [Int64] = [4, 4, 1]
        let fs = try runSNNForward(f.config, ev, index: subset, batch: 3, w1: f.w1, w2: f.w2, threads: 1)
        XCTAssertEqual(bitPatterns(fs.logits), bitPatterns(gatherRows(fw.logits, width: C, subset)))
        XCTAssertEqual(fs.hiddenSpikes, gatherRows(fw.hiddenSpikes, width: T * H, subset))
    }

    func testMeanReadoutFixture() throws { try checkFixture("snn_mean") }
    func testSumReadoutFixture() throws { try checkFixture("snn_sum") }
    func testMaxReadoutFixture() throws { try checkFixture("snn_max") }

    /// A batch of several chunks with padded widths (N_h, C not multiples of 8): every thread
    /// count gives bit-identical results, and the batch gradient is the sample-weighted mean of
    /// the gradients of two sub-batches.
    func testLargeBatchDeterminism() throws {
        var rng = TestRNG(seed: 2024)
        let B = 37, T = 40, nIn = 24, H = 20, C = 5
        let x = rng.spikes(count: B * T * nIn, p: 0.15)
        let w1 = rng.weights(count: nIn * H, lo: -24, hi: 40), w2 = rng.weights(count: H * C, lo: -32, hi: 32)
        let labels = (0..<B).map { _ in Int64(rng.below(C)) }
        let ev = try EventSet(dense: x, n: B, steps: T, nIn: nIn, threads: 2)
        for readout in [Readout.mean, .sum, .max] {
            let config = NetConfig(nIn: nIn, nHidden: H, nOut: C, steps: T, dt: 1e-3, tauHidden: 10e-3,
                                   tauOutput: 10e-3, readout: readout, beta: 5)
            let g1 = try runSNNLossGrad(config, ev, index: nil, batch: B, labels: labels, w1: w1, w2: w2, threads: 1)
            XCTAssertTrue(g1.loss.isFinite && g1.loss > 0)
            XCTAssertGreaterThan(g1.gradW1.map { Swift.abs($0) }.max()!, 0, "\(readout): grad_w1 is zero")
            for threads in [2, 3, 4, 0] {
                let gt = try runSNNLossGrad(config, ev, index: nil, batch: B, labels: labels, w1: w1, w2: w2, threads: threads)
                XCTAssertEqual(gt.loss.bitPattern, g1.loss.bitPattern, "\(readout), threads \(threads): loss")
                XCTAssertEqual(bitPatterns(gt.gradW1), bitPatterns(g1.gradW1), "\(readout), threads \(threads): grad_w1")
                XCTAssertEqual(bitPatterns(gt.gradW2), bitPatterns(g1.gradW2), "\(readout), threads \(threads): grad_w2")
                XCTAssertEqual(bitPatterns(gt.logits), bitPatterns(g1.logits), "\(readout), threads \(threads): logits")
            }
            let first = (0..<16).map(Int64.init), rest = (16..<B).map(Int64.init)
            let ga = try runSNNLossGrad(config, ev, index: first, batch: 16, labels: Array(labels[0..<16]), w1: w1, w2: w2,
                                        threads: 2)
            let gb = try runSNNLossGrad(config, ev, index: rest, batch: B - 16, labels: Array(labels[16...]), w1: w1,
                                        w2: w2, threads: 2)
            let wa = 16.0 / Double(B), wb = Double(B - 16) / Double(B)
            XCTAssertEqual(g1.loss, wa * ga.loss + wb * gb.loss, accuracy: 1e-12 * g1.loss, "\(readout): loss split")
            assertClose(g1.gradW1, zip(ga.gradW1, gb.gradW1).map { wa * Double($0) + wb * Double($1) }, relative: 1e-5,
                        "\(readout): grad_w1 split")
            assertClose(g1.gradW2, zip(ga.gradW2, gb.gradW2).map { wa * Double($0) + wb * Double($1) }, relative: 1e-5,
                        "\(readout): grad_w2 split")
        }
    }

    /// Scratch memory is pooled between calls: results must not depend on what earlier calls
    /// left in it. Calls with huge weights (membranes overflow to inf and NaN) of the same
    /// shapes come between two identical runs, which must agree bit for bit.
    func testNoStateLeaksBetweenCalls() throws {
        let f = try SNNFixture("snn_max")
        let ev = try f.events()
        let before = try runSNNLossGrad(f.config, ev, index: nil, batch: f.batch, labels: f.labels, w1: f.w1, w2: f.w2,
                                        threads: 2)
        let forwardBefore = try runSNNForward(f.config, ev, index: nil, batch: f.batch, w1: f.w1, w2: f.w2, threads: 2)
        let huge1 = (0..<f.w1.count).map { Float($0 % 3 == 0 ? -1e37 : 1e37) }
        let huge2 = (0..<f.w2.count).map { Float($0 % 2 == 0 ? -3e37 : 3e37) }
        for readout in [Readout.mean, .sum, .max] {
            var config = f.config
            config.readout = readout
            for threads in [1, 2] {
                _ = try? runSNNLossGrad(config, ev, index: nil, batch: f.batch, labels: f.labels, w1: huge1, w2: huge2,
                                        threads: threads)
                _ = try? runSNNForward(config, ev, index: nil, batch: f.batch, w1: huge1, w2: huge2, threads: threads)
            }
        }
        let after = try runSNNLossGrad(f.config, ev, index: nil, batch: f.batch, labels: f.labels, w1: f.w1, w2: f.w2,
                                       threads: 2)
        let forwardAfter = try runSNNForward(f.config, ev, index: nil, batch: f.batch, w1: f.w1, w2: f.w2, threads: 2)
        XCTAssertEqual(after.loss.bitPattern, before.loss.bitPattern)
        XCTAssertEqual(bitPatterns(after.gradW1), bitPatterns(before.gradW1))
        XCTAssertEqual(bitPatterns(after.gradW2), bitPatterns(before.gradW2))
        XCTAssertEqual(bitPatterns(after.logits), bitPatterns(before.logits))
        XCTAssertEqual(bitPatterns(forwardAfter.membrane), bitPatterns(forwardBefore.membrane))
        XCTAssertEqual(forwardAfter.hiddenSpikes, forwardBefore.hiddenSpikes)
        assertClose(after.gradW1, f.gradW1, relative: 1e-4, "grad_w1 after the huge-weight calls")

        // the membrane-only network likewise
        let m = try MOFixture("mo_mean")
        let mev = try m.events()
        let moBefore = try runMOLossGrad(m.config, mev, index: nil, batch: m.batch, labels: m.labels, w: m.w, threads: 2)
        let hugeW = (0..<m.w.count).map { Float($0 % 2 == 0 ? -3e38 : 3e38) }
        _ = try? runMOLossGrad(m.config, mev, index: nil, batch: m.batch, labels: m.labels, w: hugeW, threads: 2)
        _ = try? runMOForward(m.config, mev, index: nil, batch: m.batch, w: hugeW, threads: 1)
        let moAfter = try runMOLossGrad(m.config, mev, index: nil, batch: m.batch, labels: m.labels, w: m.w, threads: 2)
        XCTAssertEqual(moAfter.loss.bitPattern, moBefore.loss.bitPattern)
        XCTAssertEqual(bitPatterns(moAfter.gradW1), bitPatterns(moBefore.gradW1))
        XCTAssertEqual(bitPatterns(moAfter.logits), bitPatterns(moBefore.logits))
    }

    /// T = 1 and T = 2: the readout never sees a hidden spike (s_0 = 0 and J_{T-1} is unused),
    /// so every logit is 0, the loss is log C and both gradients vanish, for every readout.
    func testOneAndTwoSteps() throws {
        var rng = TestRNG(seed: 77)
        let B = 9, nIn = 11, H = 5, C = 3
        let w1 = rng.weights(count: nIn * H, lo: 32, hi: 96), w2 = rng.weights(count: H * C, lo: -32, hi: 32)
        let labels = (0..<B).map { _ in Int64(rng.below(C)) }
        for T in [1, 2] {
            let ev = try EventSet(dense: rng.spikes(count: B * T * nIn, p: 0.5), n: B, steps: T, nIn: nIn)
            for readout in [Readout.mean, .sum, .max] {
                let config = NetConfig(nIn: nIn, nHidden: H, nOut: C, steps: T, dt: 1e-3, tauHidden: 0.01, tauOutput: 0.01,
                                       readout: readout)
                let g = try runSNNLossGrad(config, ev, index: nil, batch: B, labels: labels, w1: w1, w2: w2, threads: 2)
                XCTAssertEqual(g.loss, log(Double(C)), accuracy: 1e-12, "T = \(T), \(readout): loss")
                XCTAssertEqual(g.logits, .init(repeating: 0, count: B * C), "T = \(T), \(readout): logits")
                XCTAssertEqual(g.gradW1, .init(repeating: 0, count: nIn * H), "T = \(T), \(readout): grad_w1")
                XCTAssertEqual(g.gradW2, .init(repeating: 0, count: H * C), "T = \(T), \(readout): grad_w2")
                let f = try runSNNForward(config, ev, index: nil, batch: B, w1: w1, w2: w2, threads: 1)
                XCTAssertEqual(f.hiddenSpikes, .init(repeating: 0, count: B * T * H))
                XCTAssertEqual(f.membrane, .init(repeating: 0, count: B * T * C))
            }
        }
    }

    /// Duplicated samples in `index` weigh like one: index [s, s] gives the gradient of [s].
    func testDuplicateIndex() throws {
        let f = try SNNFixture("snn_sum")
        let ev = try f.events()
        let one = try runSNNLossGrad(f.config, ev, index: [2], batch: 1, labels: [f.labels[2]], w1: f.w1, w2: f.w2, threads: 1)
        let two = try runSNNLossGrad(f.config, ev, index: [2, 2], batch: 2, labels: [f.labels[2], f.labels[2]], w1: f.w1,
                                     w2: f.w2, threads: 2)
        XCTAssertEqual(two.loss, one.loss, accuracy: 1e-12 * one.loss)
        assertClose(two.gradW1, one.gradW1, relative: 1e-6, "grad_w1 of [2, 2] vs [2]")
        assertClose(two.gradW2, one.gradW2, relative: 1e-6, "grad_w2 of [2, 2] vs [2]")
        XCTAssertGreaterThan(one.gradW1.map { Swift.abs($0) }.max()!, 0)
    }

    /// With W1 fixed the hidden spikes do not depend on W2, so the loss is smooth in W2 and
    /// grad_w2 must match central finite differences (mean and sum readouts).
    func testGradW2FiniteDifferences() throws {
        for name in ["snn_mean", "snn_sum"] {
            let f = try SNNFixture(name)
            let ev = try f.events()
            let g = try runSNNLossGrad(f.config, ev, index: nil, batch: f.batch, labels: f.labels, w1: f.w1, w2: f.w2,
                                       threads: 1)
            let h: Float = 0x1p-6  // w2 are multiples of 1/64 in [-1/2, 1/2): w2 +- h is exact
            var fd = [Double](repeating: 0, count: f.w2.count)
            for k in 0..<f.w2.count {
                var wp = f.w2, wm = f.w2
                wp[k] += h; wm[k] -= h
                let lp = try runSNNLossGrad(f.config, ev, index: nil, batch: f.batch, labels: f.labels, w1: f.w1, w2: wp,
                                            threads: 1).loss
                let lm = try runSNNLossGrad(f.config, ev, index: nil, batch: f.batch, labels: f.labels, w1: f.w1, w2: wm,
                                            threads: 1).loss
                fd[k] = (lp - lm) / (2 * Double(h))
            }
            assertClose(g.gradW2, fd, relative: 2e-3, "\(name): grad_w2 vs finite differences")
        }
    }
}

final class MembraneOnlyTests: XCTestCase {
    func checkFixture(_ name: String) throws {
        let f = try MOFixture(name)
        let ev = try f.events()
        let B = f.batch, T = f.config.steps, C = f.config.nOut

        let fw = try runMOForward(f.config, ev, index: nil, batch: B, w: f.w, threads: 1)
        assertClose(fw.membrane, f.membrane, relative: 1e-5, "\(name): output membrane")
        assertClose(fw.logits, f.logits, relative: 1e-5, "\(name): logits")

        let g = try runMOLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w: f.w, threads: 1)
        XCTAssertEqual(g.loss, f.loss, accuracy: 1e-6 * Swift.abs(f.loss), "\(name): loss")
        assertClose(g.gradW1, f.gradW, relative: 1e-4, "\(name): grad_w")
        XCTAssertEqual(bitPatterns(g.logits), bitPatterns(fw.logits), "\(name): logits of loss_grad and forward")

        for threads in [2, 4, 0] {
            let gt = try runMOLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w: f.w, threads: threads)
            XCTAssertEqual(gt.loss.bitPattern, g.loss.bitPattern, "\(name): loss, threads \(threads)")
            XCTAssertEqual(bitPatterns(gt.gradW1), bitPatterns(g.gradW1), "\(name): grad_w, threads \(threads)")
            let ft = try runMOForward(f.config, ev, index: nil, batch: B, w: f.w, threads: threads)
            XCTAssertEqual(bitPatterns(ft.logits), bitPatterns(fw.logits))
            XCTAssertEqual(bitPatterns(ft.membrane), bitPatterns(fw.membrane))
        }

        let perm: [Int64] = [2, 4, 1, 0, 3]
        let fp = try runMOForward(f.config, ev, index: perm, batch: B, w: f.w, threads: 2)
        XCTAssertEqual(bitPatterns(fp.logits), bitPatterns(gatherRows(fw.logits, width: C, perm)), "\(name): permuted logits")
        XCTAssertEqual(bitPatterns(fp.membrane), bitPatterns(gatherRows(fw.membrane, width: T * C, perm)))
        let gp = try runMOLossGrad(f.config, ev, index: perm, batch: B, labels: perm.map { f.labels[Int($0)] }, w: f.w,
                                   threads: 2)
        XCTAssertEqual(gp.loss, g.loss, accuracy: 1e-12 * g.loss, "\(name): permuted loss")
        assertClose(gp.gradW1, g.gradW1, relative: 1e-5, "\(name): permuted grad_w")

        // the membrane-only gradient is exact: central finite differences agree
        let h: Float = 0x1p-6
        var fd = [Double](repeating: 0, count: f.w.count)
        for k in 0..<f.w.count {
            var wp = f.w, wm = f.w
            wp[k] += h; wm[k] -= h
            let lp = try runMOLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w: wp, threads: 1).loss
            let lm = try runMOLossGrad(f.config, ev, index: nil, batch: B, labels: f.labels, w: wm, threads: 1).loss
            fd[k] = (lp - lm) / (2 * Double(h))
        }
        assertClose(g.gradW1, fd, relative: 2e-3, "\(name): grad_w vs finite differences")
    }

    /// T = 2: u_1 = x_0 W, so m = (x_0 W) / 2 (mean), 0.01 x_0 W (sum) or max(0, x_0 W) (max).
    func testTwoStepsClosedForm() throws {
        var rng = TestRNG(seed: 31)
        let B = 11, T = 2, nIn = 13, C = 6
        let x = rng.spikes(count: B * T * nIn, p: 0.4)
        let w = rng.weights(count: nIn * C, lo: -40, hi: 40)
        let ev = try EventSet(dense: x, n: B, steps: T, nIn: nIn)
        for readout in [Readout.mean, .sum, .max] {
            let config = NetConfig(nIn: nIn, nHidden: 0, nOut: C, steps: T, dt: 1e-3, tauHidden: 0, tauOutput: 0.02,
                                   readout: readout)
            let fw = try runMOForward(config, ev, index: nil, batch: B, w: w, threads: 2)
            var expected = [Double](repeating: 0, count: B * C)
            for b in 0..<B {
                for c in 0..<C {
                    var u1 = 0.0
                    for i in 0..<nIn where x[(b * T) * nIn + i] == 1 { u1 += Double(w[i * C + c]) }
                    expected[b * C + c] = readout == .mean ? u1 / 2 : (readout == .sum ? 0.01 * u1 : Swift.max(0, u1))
                    XCTAssertEqual(fw.membrane[(b * T) * C + c], 0)
                    XCTAssertEqual(Double(fw.membrane[(b * T + 1) * C + c]), u1, "u_1[\(b), \(c)]")
                }
            }
            assertClose(fw.logits, expected, relative: 1e-6, "T = 2, \(readout): logits")
        }
    }

    func testSumReadoutFixture() throws { try checkFixture("mo_sum") }
    func testMeanReadoutFixture() throws { try checkFixture("mo_mean") }
}
