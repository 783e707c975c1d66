// Event lists built in one pass: the stimulus straight to events (spk_stimulus_events) and
// dense arrays in one pass (spk_events_from_dense) agree exactly with the dense kernel followed
// by the two-pass conversion (indexEvents + fillEvents), for every stimulus option and thread
// count; the caller's allocator is used as spikeloc.h says; bad input and missing memory fail.
import XCTest
import CSpikeLoc
import SpikeLocKernels

/// Storage for built events from malloc, recording each request.
final class RecordingStorage {
    var requests: [Int] = []
    var blocks: [UnsafeMutableRawPointer] = []
    /// Requests from this one on (0-based) get no memory.
    var failFrom = Int.max

    func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        requests.append(bytes)
        if requests.count - 1 >= failFrom { return nil }
        let p = malloc(Swift.max(bytes, 1))!
        memset(p, 0xAB, Swift.max(bytes, 1))  // junk: every byte must be written by the kernel
        blocks.append(p)
        return p
    }
    deinit { blocks.forEach { free($0) } }
}

/// The four arrays of built events as Swift arrays.
struct Lists: Equatable {
    let stepPtr: [Int64], stepEvents: [UInt16], inputPtr: [Int64], inputEvents: [UInt16]
    init(_ b: BuiltEvents) {
        stepPtr = Array(UnsafeBufferPointer(start: b.stepPtr, count: b.nSamples * b.steps + 1))
        stepEvents = Array(UnsafeBufferPointer(start: b.stepEvents, count: b.nEvents))
        inputPtr = Array(UnsafeBufferPointer(start: b.inputPtr, count: b.nSamples * b.nIn + 1))
        inputEvents = Array(UnsafeBufferPointer(start: b.inputEvents, count: b.nEvents))
    }
    init(_ e: EventSet) {
        stepPtr = Array(UnsafeBufferPointer(start: e.stepPtr, count: e.nSamples * e.steps + 1))
        stepEvents = Array(UnsafeBufferPointer(start: e.stepEvents, count: e.nEvents))
        inputPtr = Array(UnsafeBufferPointer(start: e.inputPtr, count: e.nSamples * e.nIn + 1))
        inputEvents = Array(UnsafeBufferPointer(start: e.inputEvents, count: e.nEvents))
    }
}

func stimulusEvents(_ params: StimulusParams, ipd: [Double], phase: [Double], seed: UInt64, firstIndex: Int,
                    threads: Int, delayNoise: Double, storage: RecordingStorage) throws -> Lists {
    try ipd.withUnsafeBufferPointer { ip in
        try phase.withUnsafeBufferPointer { ph in
            Lists(try generateStimulusEvents(params, ipd: ip, phase: ph, seed: seed, firstIndex: firstIndex,
                                             threads: threads, delayNoise: delayNoise,
                                             allocate: storage.allocate))
        }
    }
}

final class BuiltEventsTests: XCTestCase {
    /// Stimulus options: tutorial-like, high rate, non-integer envelope power, null phase
    /// delays, odd fibre counts (rows that are not a multiple of 8 or 16), one fibre per ear,
    /// rate 0 (no spikes), long samples.
    let cases: [(String, StimulusParams, Double)] = [
        ("tutorial", StimulusParams(steps: 40, anfPerEar: 100), 0),
        ("delay noise", StimulusParams(steps: 30, anfPerEar: 21), 0.4),
        ("250 Hz", StimulusParams(dt: 1e-4, steps: 300, freq: 250, anfPerEar: 12), 0),
        ("envelope 2.5", StimulusParams(steps: 25, anfPerEar: 13, rateMax: 900, envelopePower: 2.5), 0.1),
        ("null delays", StimulusParams(steps: 20, anfPerEar: 5, nullPhaseDelays: true), 0),
        ("one fibre", StimulusParams(steps: 50, anfPerEar: 1, rateMax: 5000), 0),
        ("silent", StimulusParams(steps: 10, anfPerEar: 9, rateMax: 0), 0),
        ("dense", StimulusParams(steps: 10, anfPerEar: 4, rateMax: 1e6, envelopePower: 0), 0),
    ]

    func testStimulusEventsEqualTheDenseKernelConverted() throws {
        var rng = TestRNG(seed: 7)
        for (name, params, noise) in cases {
            let n = 9
            let ipd = (0..<n).map { _ in -Double.pi / 2 + Double.pi * rng.uniform() }
            let phase = (0..<n).map { _ in rng.uniform() * 3 - 1 }
            var x = [UInt8](repeating: 0xAA, count: n * params.steps * params.nIn)
            try ipd.withUnsafeBufferPointer { ip in
                try phase.withUnsafeBufferPointer { ph in
                    try x.withUnsafeMutableBufferPointer {
                        try generateStimulus(params, ipd: ip, phase: ph, seed: 11, firstIndex: 5,
                                             spikes: $0.baseAddress!, threads: 1, delayNoise: noise)
                    }
                }
            }
            let expected = Lists(try EventSet(dense: x, n: n, steps: params.steps, nIn: params.nIn))
            if name == "silent" { XCTAssertEqual(expected.stepEvents.count, 0) }
            if name == "dense" { XCTAssertEqual(expected.stepEvents.count, x.count, "every element spikes") }
            if name == "tutorial" { XCTAssertGreaterThan(expected.stepEvents.count, x.count / 10) }
            for threads in [1, 2, 3] {
                let storage = RecordingStorage()
                let got = try stimulusEvents(params, ipd: ipd, phase: phase, seed: 11, firstIndex: 5,
                                             threads: threads, delayNoise: noise, storage: storage)
                XCTAssertEqual(got, expected, "\(name), threads \(threads)")
                let e = expected.stepEvents.count
                XCTAssertEqual(storage.requests, [8 * (n * params.steps + 1), 8 * (n * params.nIn + 1), 2 * e, 2 * e],
                               "\(name): one request per array, in the header's order")
                // and dense -> events in one pass gives the same lists
                let again = RecordingStorage()
                let fromDense = try x.withUnsafeBufferPointer {  // `again` owns the lists
                    Lists(try eventsFromDense($0.baseAddress!, n: n, steps: params.steps, nIn: params.nIn,
                                              threads: threads, allocate: again.allocate))
                }
                XCTAssertEqual(fromDense, expected, "\(name): eventsFromDense, threads \(threads)")
            }
        }
    }

    /// A sample's events do not depend on the other samples generated with it.
    func testSamplesAreIndependentOfTheirCallAndChunk() throws {
        let params = StimulusParams(steps: 20, anfPerEar: 10)
        let ipd = [0.3, -1.0, 1.2, 0.0], phase = [0.1, 0.7, 0.2, 0.9]
        let all = try stimulusEvents(params, ipd: ipd, phase: phase, seed: 3, firstIndex: 0, threads: 2,
                                     delayNoise: 0.2, storage: RecordingStorage())
        let last = try stimulusEvents(params, ipd: Array(ipd[2...]), phase: Array(phase[2...]), seed: 3, firstIndex: 2,
                                      threads: 1, delayNoise: 0.2, storage: RecordingStorage())
        let first = Int(all.stepPtr[2 * params.steps])
        XCTAssertEqual(Array(all.stepEvents[first...]), last.stepEvents)
        XCTAssertEqual(all.stepPtr[(2 * params.steps)...].map { $0 - Int64(first) }, last.stepPtr)
    }

    /// Random dense data, including rows of every length mod 8, all-ones and empty samples.
    func testFromDenseMatchesTheTwoPassConversion() throws {
        var rng = TestRNG(seed: 5)
        for (n, steps, nIn, p) in [(5, 30, 16, 0.2), (7, 13, 37, 0.05), (3, 1, 1, 0.5), (4, 9, 200, 0.01),
                                   (2, 50, 17, 0.0), (3, 4, 33, 1.0), (0, 3, 5, 0.5),
                                   // whole 64-byte blocks, blocks and a tail, T > 255, all ones
                                   (3, 70, 64, 0.5), (5, 11, 65, 0.03), (3, 300, 256, 0.1), (2, 6, 130, 1.0)] {
            let x = rng.spikes(count: n * steps * nIn, p: p)
            let expected = Lists(try EventSet(dense: x, n: n, steps: steps, nIn: nIn))
            for threads in [1, 3] {
                let storage = RecordingStorage()  // owns the lists until the comparison
                let got = try x.withUnsafeBufferPointer {
                    Lists(try eventsFromDense($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, n: n, steps: steps,
                                              nIn: nIn, threads: threads, allocate: storage.allocate))
                }
                XCTAssertEqual(got, expected, "(\(n), \(steps), \(nIn)) p \(p), threads \(threads)")
            }
        }
    }

    func testFromDenseRejectsValuesOtherThanZeroAndOne() {
        var x = [UInt8](repeating: 0, count: 2 * 3 * 11)
        x[1 * 33 + 2 * 11 + 9] = 3  // sample 1, step 2, input 9 (in the scalar tail of the row)
        assertKernelError(.value, containing: "spikes[1, 2, 9] = 3", "value 3") {
            _ = try x.withUnsafeBufferPointer {
                try eventsFromDense($0.baseAddress!, n: 2, steps: 3, nIn: 11, threads: 2,
                                    allocate: RecordingStorage().allocate)
            }
        }
        x[1 * 33 + 2 * 11 + 9] = 0
        x[4] = 0x80  // sample 0, step 0, input 4 (in an 8-byte word)
        assertKernelError(.value, containing: "spikes[0, 0, 4] = 128", "value 128") {
            _ = try x.withUnsafeBufferPointer {
                try eventsFromDense($0.baseAddress!, n: 2, steps: 3, nIn: 11, threads: 1,
                                    allocate: RecordingStorage().allocate)
            }
        }
    }

    /// Every request the allocator refuses becomes a memory error; no request is made before
    /// the arguments are checked.
    func testMissingStorageAndBadArguments() {
        let params = StimulusParams(steps: 10, anfPerEar: 6)
        for fail in 0..<4 {
            let storage = RecordingStorage()
            storage.failFrom = fail
            assertKernelError(.memory, containing: "events.", "request \(fail) refused") {
                _ = try stimulusEvents(params, ipd: [0.1, 0.2], phase: [0, 0], seed: 1, firstIndex: 0, threads: 2,
                                       delayNoise: 0, storage: storage)
            }
            XCTAssertEqual(storage.requests.count, fail + 1)
        }
        let storage = RecordingStorage()
        assertKernelError(.value, containing: "delay_noise", "negative noise") {
            _ = try stimulusEvents(params, ipd: [0.1], phase: [0], seed: 1, firstIndex: 0, threads: 1,
                                   delayNoise: -1, storage: storage)
        }
        assertKernelError(.value, containing: "ipd[0]", "NaN ipd") {
            _ = try stimulusEvents(params, ipd: [.nan], phase: [0], seed: 1, firstIndex: 0, threads: 1,
                                   delayNoise: 0, storage: storage)
        }
        assertKernelError(.value, containing: "steps", "too many steps for events") {
            _ = try stimulusEvents(StimulusParams(steps: 70_000, anfPerEar: 1), ipd: [0.1], phase: [0], seed: 1,
                                   firstIndex: 0, threads: 1, delayNoise: 0, storage: storage)
        }
        XCTAssertEqual(storage.requests, [], "no storage requested for refused arguments")
    }

    /// The C ABI: the allocator and its context, a NULL allocator, a refusing one.
    func testCABI() {
        var p = spk_stimulus_params(dt: 1e-3, steps: 12, freq: 20, anf_per_ear: 7, rate_max: 600, envelope_power: 2,
                                    null_phase_delays: 0)
        let ipd: [Double] = [0.5, -0.5, 0.0], phase: [Double] = [0.25, 0.5, 0.75]
        let storage = RecordingStorage()
        let context = Unmanaged.passUnretained(storage).toOpaque()
        let alloc: spk_alloc = { ctx, bytes in
            Unmanaged<RecordingStorage>.fromOpaque(ctx!).takeUnretainedValue().allocate(Int(bytes))
        }
        XCTAssertEqual(spk_stimulus_events(&p, ipd, phase, 3, 9, 0, 0.0, alloc, context, 2), SPK_OK)
        XCTAssertEqual(storage.requests.count, 4)
        let sp = storage.blocks[0].assumingMemoryBound(to: Int64.self)
        XCTAssertEqual(sp[0], 0)
        XCTAssertEqual(Int(sp[3 * 12]) * 2, storage.requests[2], "step_ptr ends at n_events")
        XCTAssertEqual(spk_stimulus_events(&p, ipd, phase, 3, 9, 0, 0.0, nil, context, 2), SPK_ERR_TYPE)
        XCTAssertTrue(String(cString: spk_last_error()).contains("alloc"))
        let refusing: spk_alloc = { _, _ in nil }
        XCTAssertEqual(spk_stimulus_events(&p, ipd, phase, 3, 9, 0, 0.0, refusing, nil, 2), SPK_ERR_MEMORY)
        var x = [UInt8](repeating: 1, count: 2 * 3 * 4)
        let dense = RecordingStorage()
        XCTAssertEqual(spk_events_from_dense(&x, 2, 3, 4, alloc, Unmanaged.passUnretained(dense).toOpaque(), 1), SPK_OK)
        XCTAssertEqual(dense.requests, [8 * 7, 8 * 9, 48, 48])
        XCTAssertEqual(spk_events_from_dense(nil, 2, 3, 4, alloc, context, 1), SPK_ERR_TYPE)
        XCTAssertEqual(spk_events_from_dense(&x, 2, 3, 70_000, alloc, context, 1), SPK_ERR_VALUE)
    }
}
