// Binary spike data as event lists (spikeloc.h, "spike data as event lists").
//
// The networks never touch dense spike arrays: the forward pass sums the weight rows of the
// inputs that spike at a step (step order), and the weight gradient sums the backpropagated
// current over the steps at which an input spikes (input order). Both orders are built once
// per data set, so each epoch only reads indices.

/// A read-only view of an event-list data set. All pointers come from the caller.
public struct EventData {
    public let nSamples: Int, steps: Int, nIn: Int, nEvents: Int
    public let stepPtr: UnsafePointer<Int64>
    public let stepEvents: UnsafePointer<UInt16>
    public let inputPtr: UnsafePointer<Int64>
    public let inputEvents: UnsafePointer<UInt16>

    public init(nSamples: Int, steps: Int, nIn: Int, nEvents: Int,
                stepPtr: UnsafePointer<Int64>, stepEvents: UnsafePointer<UInt16>,
                inputPtr: UnsafePointer<Int64>, inputEvents: UnsafePointer<UInt16>) {
        self.nSamples = nSamples; self.steps = steps; self.nIn = nIn; self.nEvents = nEvents
        self.stepPtr = stepPtr; self.stepEvents = stepEvents
        self.inputPtr = inputPtr; self.inputEvents = inputEvents
    }

    static let maxSteps = Int(UInt16.max), maxInputs = Int(UInt16.max)

    func validateShape() throws {
        try requireCount(nSamples, "events.n_samples", min: 0)
        try requireCount(steps, "events.steps", max: EventData.maxSteps)
        try requireCount(nIn, "events.n_in", max: EventData.maxInputs)
        try requireCount(nEvents, "events.n_events", min: 0)
        _ = try checkedProduct(nSamples, steps + 1, what: "events.step_ptr")
        _ = try checkedProduct(nSamples, nIn + 1, what: "events.input_ptr")
        try require(stepPtr[0] == 0 && stepPtr[nSamples * steps] == Int64(nEvents),
                    "events.step_ptr must start at 0 and end at n_events")
        try require(inputPtr[0] == 0 && inputPtr[nSamples * nIn] == Int64(nEvents),
                    "events.input_ptr must start at 0 and end at n_events")
    }

    /// Checks everything a kernel reads of sample `s`: monotone pointers inside the event
    /// arrays and event values in range. Cost O(T + N_in + events of s).
    func validateSample(_ s: Int) -> Bool {
        func check(_ ptr: UnsafePointer<Int64>, _ events: UnsafePointer<UInt16>, rows: Int, limit: Int) -> Bool {
            let first = ptr[s * rows], last = ptr[s * rows + rows]
            guard first >= 0, last >= first, last <= Int64(nEvents) else { return false }
            var previous = first
            for r in 1...rows {
                let p = ptr[s * rows + r]
                if p < previous { return false }
                previous = p
            }
            var maximum: UInt16 = 0
            for e in Int(first)..<Int(last) { maximum = Swift.max(maximum, events[e]) }
            return last == first || Int(maximum) < limit
        }
        return check(stepPtr, stepEvents, rows: steps, limit: nIn)
            && check(inputPtr, inputEvents, rows: nIn, limit: steps)
    }

    /// The samples of a batch (`index` nil: 0 ..< batch), after checking the data set's shape
    /// and the index range. Each sample's event lists are checked with `validateSample` by the
    /// parallel task that reads them, before it reads them (one pass over the batch less).
    func batchSamples(_ index: UnsafePointer<Int64>?, batch: Int) throws -> [Int] {
        try validateShape()
        try requireCount(batch, "batch", min: 1)
        var samples = [Int](repeating: 0, count: batch)
        for b in 0..<batch {
            let s = index.map { Int($0[b]) } ?? b
            try require(s >= 0 && s < nSamples, "index[\(b)] = \(s) is out of range for \(nSamples) samples")
            samples[b] = s
        }
        return samples
    }

    /// The error for samples whose event lists failed `validateSample`.
    func corruption(_ samples: [Int]) -> KernelError {
        let bad = samples.first { !validateSample($0) } ?? samples.first ?? 0
        return KernelError.value("events of sample \(bad) are inconsistent (corrupted event arrays)")
    }
}

/// Calls `visit(i)` for every nonzero byte row[i], i increasing, 8 bytes at a time with a
/// bitmask (no branch per byte: at 22% density those branches would mispredict constantly).
/// For bytes that are 0 or 1, multiplying the 64-bit word by 0x0102040810204080 moves byte k
/// to bit 56 + k (all partial products land on distinct bits, so nothing carries).
/// Returns false if a byte other than 0 or 1 was seen.
@inline(__always)
private func forEachSpike(_ row: UnsafePointer<UInt8>, _ n: Int, _ visit: (Int) -> Void) -> Bool {
    var valid = true
    var i = 0
    while i + 8 <= n {
        let word = UInt64(littleEndian: UnsafeRawPointer(row + i).loadUnaligned(as: UInt64.self))
        if word != 0 {
            if word & 0xFEFE_FEFE_FEFE_FEFE != 0 { valid = false }
            var bits = ((word & 0x0101_0101_0101_0101) &* 0x0102_0408_1020_4080) >> 56
            while bits != 0 {
                visit(i + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        i += 8
    }
    while i < n {
        if row[i] != 0 {
            if row[i] > 1 { valid = false }
            visit(i)
        }
        i += 1
    }
    return valid
}

/// Sizes of a dense spike array (n x T x N_in) that the event lists can index.
private func validateDenseShape(n: Int, steps: Int, nIn: Int) throws {
    try requireCount(n, "n", min: 0)
    try requireCount(steps, "steps", max: EventData.maxSteps)
    try requireCount(nIn, "n_in", max: EventData.maxInputs)
    _ = try checkedProduct(n, steps, nIn, what: "spikes")
}

/// Pass 1: per-(sample, step) and per-(sample, input) event counts, as prefix sums.
public func indexEvents(
    _ x: UnsafePointer<UInt8>, n: Int, steps: Int, nIn: Int,
    stepPtr: UnsafeMutablePointer<Int64>, inputPtr: UnsafeMutablePointer<Int64>, threads: Int
) throws {
    try validateDenseShape(n: n, steps: steps, nIn: nIn)
    let threads = try resolveThreads(threads)
    var invalid = [Int](repeating: -1, count: n)  // first bad element of each sample
    invalid.withUnsafeMutableBufferPointer { invalidPtr in
        parallelFor(n, threads: threads) { s in
            let inputCounts = inputPtr + s * nIn + 1
            inputCounts.update(repeating: 0, count: nIn)
            for t in 0..<steps {
                var count: Int64 = 0
                let valid = forEachSpike(x + (s * steps + t) * nIn, nIn) { i in
                    count += 1
                    inputCounts[i] += 1
                }
                if !valid && invalidPtr[s] < 0 { invalidPtr[s] = t }
                stepPtr[s * steps + t + 1] = count
            }
        }
    }
    if let s = invalid.firstIndex(where: { $0 >= 0 }) {
        let t = invalid[s], row = x + (s * steps + t) * nIn
        let i = (0..<nIn).first { row[$0] > 1 } ?? 0
        throw KernelError.value("spikes must contain only 0 and 1; spikes[\(s), \(t), \(i)] = \(row[i])")
    }
    stepPtr[0] = 0
    inputPtr[0] = 0
    for k in 0..<(n * steps) { stepPtr[k + 1] += stepPtr[k] }
    for k in 0..<(n * nIn) { inputPtr[k + 1] += inputPtr[k] }
}

/// Pass 2: writes the events in both orders (pointers from `indexEvents`).
public func fillEvents(
    _ x: UnsafePointer<UInt8>, n: Int, steps: Int, nIn: Int,
    stepPtr: UnsafePointer<Int64>, inputPtr: UnsafePointer<Int64>,
    stepEvents: UnsafeMutablePointer<UInt16>, inputEvents: UnsafeMutablePointer<UInt16>, threads: Int
) throws {
    try validateDenseShape(n: n, steps: steps, nIn: nIn)
    let threads = try resolveThreads(threads)
    // The pointers must be those of indexEvents for this x: check they are monotone and that
    // every row's count matches the data, so no write can leave the event arrays.
    let total = stepPtr[n * steps]
    try require(stepPtr[0] == 0 && inputPtr[0] == 0 && inputPtr[n * nIn] == total,
                "step_ptr and input_ptr are inconsistent (use spk_events_index first)")
    var bad = [Bool](repeating: false, count: n)
    try bad.withUnsafeMutableBufferPointer { badPtr in
        try parallelFor(n, threads: threads, makeContext: { try Scratch<Int64>(nIn, what: "event cursors") }) { cursor, s in
            let c = cursor.pointer
            for i in 0..<nIn {
                c[i] = inputPtr[s * nIn + i]
                let next = inputPtr[s * nIn + i + 1]
                if c[i] < 0 || next < c[i] || next > total { badPtr[s] = true; return }
            }
            for t in 0..<steps {
                var pos = stepPtr[s * steps + t]
                let end = stepPtr[s * steps + t + 1]
                if pos < 0 || end < pos || end > total { badPtr[s] = true; return }
                var overflow = false
                _ = forEachSpike(x + (s * steps + t) * nIn, nIn) { i in
                    if overflow || pos >= end || c[i] >= inputPtr[s * nIn + i + 1] { overflow = true; return }
                    stepEvents[Int(pos)] = UInt16(truncatingIfNeeded: i)
                    inputEvents[Int(c[i])] = UInt16(truncatingIfNeeded: t)
                    pos += 1
                    c[i] += 1
                }
                if overflow || pos != end { badPtr[s] = true; return }
            }
        }
    }
    if let s = bad.firstIndex(of: true) {
        throw KernelError.value("step_ptr/input_ptr do not match the spikes of sample \(s) (use spk_events_index first)")
    }
}

/// Dense spikes (n_samples x T x N_in bytes) from event lists.
public func eventsToDense(_ data: EventData, _ x: UnsafeMutablePointer<UInt8>, threads: Int) throws {
    try data.validateShape()
    let threads = try resolveThreads(threads)
    let n = data.nSamples, T = data.steps, nIn = data.nIn
    var bad = [Bool](repeating: false, count: n)
    bad.withUnsafeMutableBufferPointer { badPtr in
        parallelFor(n, threads: threads) { s in
            guard data.validateSample(s) else { badPtr[s] = true; return }
            let out = x + s * T * nIn
            out.update(repeating: 0, count: T * nIn)
            for t in 0..<T {
                for e in Int(data.stepPtr[s * T + t])..<Int(data.stepPtr[s * T + t + 1]) {
                    out[t * nIn + Int(data.stepEvents[e])] = 1
                }
            }
        }
    }
    if let s = bad.firstIndex(of: true) {
        throw KernelError.value("events of sample \(s) are inconsistent (corrupted event arrays)")
    }
}
