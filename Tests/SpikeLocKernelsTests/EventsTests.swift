// Event lists: dense -> events -> dense round trips, and rejection of bad or corrupted data.
import XCTest
import CSpikeLoc
import SpikeLocKernels

func dense(_ events: EventSet, threads: Int = 1) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xAA, count: events.nSamples * events.steps * events.nIn)
    try events.with { data in
        try out.withUnsafeMutableBufferPointer { try eventsToDense(data, $0.baseAddress!, threads: threads) }
    }
    return out
}

/// Asserts that `body` throws a KernelError of kind `kind` whose message contains `fragment`.
func assertKernelError(_ kind: KernelError.Kind, containing fragment: String, _ what: String,
                       file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("\(what): no error thrown", file: file, line: line)
    } catch let error as KernelError {
        XCTAssertEqual(error.kind, kind, "\(what): \(error.message)", file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, "\(what): empty message", file: file, line: line)
        if !fragment.isEmpty {
            XCTAssertTrue(error.message.contains(fragment), "\(what): message '\(error.message)' lacks '\(fragment)'",
                          file: file, line: line)
        }
    } catch {
        XCTFail("\(what): unexpected error \(error)", file: file, line: line)
    }
}

final class EventsTests: XCTestCase {
    /// The pointer and event arrays follow spikeloc.h exactly for a hand-made example.
    func testLayoutOfSmallExample() throws {
        // 2 samples, 3 steps, 4 inputs
        let x: [UInt8] = [
            0, 1, 0, 1,  0, 0, 0, 0,  1, 1, 0, 0,   // sample 0
            0, 0, 0, 0,  0, 0, 1, 0,  0, 0, 1, 1,   // sample 1
        ]
        let ev = try EventSet(dense: x, n: 2, steps: 3, nIn: 4)
        XCTAssertEqual(ev.nEvents, 7)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: ev.stepPtr, count: 7)), [0, 2, 2, 4, 4, 5, 7])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: ev.stepEvents, count: 7)), [1, 3, 0, 1, 2, 2, 3])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: ev.inputPtr, count: 9)), [0, 1, 3, 3, 4, 4, 4, 6, 7])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: ev.inputEvents, count: 7)), [2, 0, 2, 0, 1, 2, 2])
        XCTAssertEqual(try dense(ev), x)
    }

    /// Random data of several densities and shapes (including rows that are not a multiple
    /// of 16 bytes, empty samples and a fully active sample) survive the round trip exactly,
    /// for 1 and 3 threads.
    func testRoundTrip() throws {
        var rng = TestRNG(seed: 42)
        for (n, steps, nIn, p) in [(5, 30, 16, 0.2), (7, 13, 37, 0.05), (3, 1, 1, 0.5), (4, 9, 200, 0.01),
                                   (2, 50, 17, 0.0), (3, 4, 33, 1.0)] {
            let x = rng.spikes(count: n * steps * nIn, p: p)
            for threads in [1, 3] {
                let ev = try EventSet(dense: x, n: n, steps: steps, nIn: nIn, threads: threads)
                XCTAssertEqual(ev.nEvents, x.filter { $0 == 1 }.count)
                XCTAssertEqual(try dense(ev, threads: threads), x, "shape (\(n), \(steps), \(nIn)), threads \(threads)")
            }
        }
        // the fixture inputs too
        for name in ["snn_mean", "mo_sum"] {
            let f = try Fixture(name)
            let B = try f.int("batch"), T = try f.int("steps"), nIn = try f.int("n_in")
            let x = try f.array("x", shape: [B, T, nIn]).bytes()
            XCTAssertEqual(try dense(try EventSet(dense: x, n: B, steps: T, nIn: nIn)), x, name)
        }
    }

    /// Dense spikes must be 0 or 1: a 2 is rejected by indexEvents (and the C ABI), naming the element.
    func testValueTwoThrows() throws {
        var x = [UInt8](repeating: 0, count: 2 * 5 * 20)
        x[3] = 1
        x[1 * 100 + 2 * 20 + 17] = 2   // sample 1, step 2, input 17
        assertKernelError(.value, containing: "spikes[1, 2, 17] = 2", "indexEvents with a 2") {
            _ = try EventSet(dense: x, n: 2, steps: 5, nIn: 20)
        }
        // other bad values, in the 8-byte path and in the tail of a row (N_in = 21: bytes 16..20)
        for (position, value) in [(0, UInt8(3)), (7, 255), (13, 128), (17, 2), (20, 3)] {
            var y = [UInt8](repeating: 0, count: 2 * 3 * 21)
            y[5] = 1
            y[(1 * 3 + 1) * 21 + position] = value
            assertKernelError(.value, containing: "spikes[1, 1, \(position)] = \(value)", "indexEvents with \(value) at \(position)") {
                _ = try EventSet(dense: y, n: 2, steps: 3, nIn: 21)
            }
        }
        var stepPtr = [Int64](repeating: 0, count: 11), inputPtr = [Int64](repeating: 0, count: 41)
        XCTAssertEqual(spk_events_index(x, 2, 5, 20, &stepPtr, &inputPtr, 1), SPK_ERR_VALUE)
        XCTAssertTrue(lastError().contains("spikes"), lastError())
    }

    /// fillEvents rejects pointers that do not match the data instead of writing out of bounds.
    func testFillEventsRejectsForeignPointers() throws {
        var rng = TestRNG(seed: 5)
        let x = rng.spikes(count: 3 * 10 * 12, p: 0.3)
        let ev = try EventSet(dense: x, n: 3, steps: 10, nIn: 12)
        var y = x
        // move one spike of sample 1 to another input of the same step: step counts agree, input counts do not
        let row = (1 * 10 + 4) * 12
        if let i = (0..<12).first(where: { y[row + $0] == 1 }), let j = (0..<12).first(where: { y[row + $0] == 0 }) {
            y[row + i] = 0; y[row + j] = 1
        } else {
            XCTFail("test data has no suitable row")
        }
        var se = [UInt16](repeating: 0, count: ev.nEvents), ie = [UInt16](repeating: 0, count: ev.nEvents)
        assertKernelError(.value, containing: "sample 1", "fillEvents with foreign pointers") {
            try y.withUnsafeBufferPointer { yp in
                try fillEvents(yp.baseAddress!, n: 3, steps: 10, nIn: 12, stepPtr: ev.stepPtr, inputPtr: ev.inputPtr,
                               stepEvents: &se, inputEvents: &ie, threads: 2)
            }
        }
        withExtendedLifetime(ev) {}
    }

    /// Corrupted event arrays make the kernels throw, never crash or read out of bounds.
    func testCorruptedEventsThrow() throws {
        let f = try Fixture("snn_mean")
        let B = try f.int("batch"), T = try f.int("steps"), nIn = try f.int("n_in")
        let H = try f.int("n_hidden"), C = try f.int("n_out")
        let x = try f.array("x", shape: [B, T, nIn]).bytes()
        let w1 = try f.array("w1", shape: [nIn, H]).floats(), w2 = try f.array("w2", shape: [H, C]).floats()
        let config = NetConfig(nIn: nIn, nHidden: H, nOut: C, steps: T, dt: 1e-3, tauHidden: 20e-3, tauOutput: 20e-3)
        var logits = [Float](repeating: 0, count: B * C)
        var dx = [UInt8](repeating: 0, count: B * T * nIn)

        func expectThrow(_ what: String, fragment: String = "inconsistent", _ corrupt: (EventSet) -> Void) throws {
            let ev = try EventSet(dense: x, n: B, steps: T, nIn: nIn)
            corrupt(ev)
            assertKernelError(.value, containing: fragment, "snnForward, \(what)") {
                try ev.with { data in
                    try w1.withUnsafeBufferPointer { p1 in
                        try w2.withUnsafeBufferPointer { p2 in
                            try logits.withUnsafeMutableBufferPointer { lp in
                                try snnForward(config, data, index: nil, batch: B, w1: p1.baseAddress!, w2: p2.baseAddress!,
                                               outputs: ForwardOutputs(logits: lp.baseAddress!), threads: 2)
                            }
                        }
                    }
                }
            }
            assertKernelError(.value, containing: fragment, "eventsToDense, \(what)") {
                try ev.with { data in try dx.withUnsafeMutableBufferPointer { try eventsToDense(data, $0.baseAddress!, threads: 1) } }
            }
        }

        // a decreasing step pointer inside sample 2
        try expectThrow("decreasing step_ptr") { ev in
            let k = 2 * T + 5
            ev.stepPtr[k] = ev.stepPtr[k + 1] + 3
        }
        // a step pointer beyond n_events
        try expectThrow("step_ptr beyond n_events") { ev in ev.stepPtr[3 * T + 2] = Int64(ev.nEvents + 100) }
        // a negative input pointer
        try expectThrow("negative input_ptr") { ev in ev.inputPtr[nIn + 3] = -7 }
        // an input index >= n_in in the step events
        try expectThrow("step event out of range") { ev in ev.stepEvents[ev.nEvents / 2] = UInt16(nIn) }
        // a step index >= T in the input events
        try expectThrow("input event out of range") { ev in ev.inputEvents[ev.nEvents - 1] = UInt16(T + 1000) }
        // wrong end marker
        try expectThrow("step_ptr does not end at n_events", fragment: "n_events") { ev in ev.stepPtr[B * T] -= 1 }
    }

    /// The network kernels reject events of the wrong shape.
    func testShapeMismatchThrows() throws {
        var rng = TestRNG(seed: 8)
        let x = rng.spikes(count: 2 * 10 * 6, p: 0.3)
        let ev = try EventSet(dense: x, n: 2, steps: 10, nIn: 6)
        let w1 = [Float](repeating: 0.1, count: 6 * 3), w2 = [Float](repeating: 0.1, count: 3 * 2)
        var logits = [Float](repeating: 0, count: 2 * 2)
        for (steps, nIn, fragment) in [(11, 6, "steps"), (10, 5, "n_in")] {
            let config = NetConfig(nIn: nIn, nHidden: 3, nOut: 2, steps: steps, dt: 1e-3, tauHidden: 0.02, tauOutput: 0.02)
            assertKernelError(.value, containing: fragment, "snnForward with \(steps) steps, \(nIn) inputs") {
                try ev.with { data in
                    try logits.withUnsafeMutableBufferPointer { lp in
                        try snnForward(config, data, index: nil, batch: 2, w1: w1, w2: w2,
                                       outputs: ForwardOutputs(logits: lp.baseAddress!), threads: 1)
                    }
                }
            }
        }
        // an index out of range, and a batch of 0
        let config = NetConfig(nIn: 6, nHidden: 3, nOut: 2, steps: 10, dt: 1e-3, tauHidden: 0.02, tauOutput: 0.02)
        let index: [Int64] = [1, 2]
        assertKernelError(.value, containing: "index[1] = 2", "index out of range") {
            try ev.with { data in
                try logits.withUnsafeMutableBufferPointer { lp in
                    try snnForward(config, data, index: index, batch: 2, w1: w1, w2: w2,
                                   outputs: ForwardOutputs(logits: lp.baseAddress!), threads: 1)
                }
            }
        }
        assertKernelError(.value, containing: "batch", "batch 0") {
            try ev.with { data in
                try logits.withUnsafeMutableBufferPointer { lp in
                    try snnForward(config, data, index: nil, batch: 0, w1: w1, w2: w2,
                                   outputs: ForwardOutputs(logits: lp.baseAddress!), threads: 1)
                }
            }
        }
    }
}
