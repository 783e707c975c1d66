// Binary spike data as event lists (spikeloc.h, "spike data as event lists").
//
// The networks never touch dense spike arrays: the forward pass sums the weight rows of the
// inputs that spike at a step (step order), and the weight gradient sums the backpropagated
// current over the steps at which an input spikes (input order). Both orders are built once
// per data set, so each epoch only reads indices.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// True if p[0] <= p[1] <= ... <= p[rows]. Branch-free over 8 pairs at a time (one vector
/// compare each): an early exit per entry would keep the loop scalar, and this check runs for
/// every sample of every batch.
@inline(__always)
func nonDecreasing(_ p: UnsafePointer<Int64>, _ rows: Int) -> Bool {
    var decreases = SIMDMask<SIMD8<Int64>>(repeating: false)
    var r = 1
    while r + 8 <= rows + 1 {
        let next = UnsafeRawPointer(p + r).loadUnaligned(as: SIMD8<Int64>.self)
        let previous = UnsafeRawPointer(p + r - 1).loadUnaligned(as: SIMD8<Int64>.self)
        decreases = decreases .| (next .< previous)
        r += 8
    }
    var ok = !any(decreases)
    while r <= rows {
        ok = ok && p[r] >= p[r - 1]
        r += 1
    }
    return ok
}

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
            guard first >= 0, last >= first, last <= Int64(nEvents), nonDecreasing(ptr + s * rows, rows)
            else { return false }
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

// MARK: - event lists built in one pass (spk_stimulus_events; spk_events_from_dense below)
//
// A producer (the stimulus) visits each sample once, step by step,
// and writes the sample's events in step order. Their number is known only at the end, while
// the caller's arrays must have their final size (Python keeps them as immutable `bytes`), so:
//   1. step_ptr and input_ptr (sizes known) come from the caller's allocator; each worker
//      produces its samples' step-order events into its own blocks (`EventArena`) and the
//      per-step and per-input counts into the pointer arrays (one pass over the draws / data);
//   2. step_events comes from the allocator; the counts become offsets and the blocks are
//      copied, then unmapped;
//   3. input_events comes from the allocator and is filled by transposing each sample's step
//      events (in cache: a few thousand events per sample).
// Peak memory is about the event lists' own size: the blocks (the size of step_events) are
// gone before input_events exists.

/// Storage for built event lists: `allocate(bytes)` returns `bytes` bytes aligned to 8 that the
/// caller owns, or nil if it has none. Called on the calling thread only, once per array, in the
/// order step_ptr, input_ptr, step_events, input_events.
public typealias EventStorage = (Int) -> UnsafeMutableRawPointer?

/// Event lists written into the caller's storage (see `EventData` for the layout).
public struct BuiltEvents {
    public let nSamples: Int, steps: Int, nIn: Int, nEvents: Int
    public let stepPtr: UnsafeMutablePointer<Int64>, stepEvents: UnsafeMutablePointer<UInt16>
    public let inputPtr: UnsafeMutablePointer<Int64>, inputEvents: UnsafeMutablePointer<UInt16>

    /// A read-only view for the network kernels.
    public var data: EventData {
        EventData(nSamples: nSamples, steps: steps, nIn: nIn, nEvents: nEvents, stepPtr: stepPtr,
                  stepEvents: stepEvents, inputPtr: inputPtr, inputEvents: inputEvents)
    }
}

/// Size of a transparent huge page (x86-64 and arm64 Linux with 4 KiB pages).
let hugePageBytes = 1 << 21

/// Asks Linux to back [p, p + bytes) with transparent huge pages where whole ones fit (advice
/// only; no effect elsewhere). First touches of fresh memory then fault once per 2 MiB instead
/// of once per 4 KiB: in this virtual machine 4 KiB faults cost about as much as generating the
/// spikes (NumPy gives its large arrays the same advice).
func adviseHugePages(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
    #if os(Linux)
    let start = roundUp(Int(bitPattern: p), hugePageBytes), end = (Int(bitPattern: p) + bytes) / hugePageBytes * hugePageBytes
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
    #endif
}

/// `bytes` (a multiple of 2 MiB) of fresh memory aligned to 2 MiB, advised to use huge pages;
/// nil without memory. Give it back with munmap.
func mapHugePages(_ bytes: Int) -> UnsafeMutableRawPointer? {
    let failed = UnsafeMutableRawPointer(bitPattern: -1)
    guard let raw = mmap(nil, bytes + hugePageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
          raw != failed else { return nil }
    let address = Int(bitPattern: raw), aligned = roundUp(address, hugePageBytes)
    if aligned > address { munmap(raw, aligned - address) }
    let tail = address + hugePageBytes - aligned
    if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + bytes), tail) }
    let block = UnsafeMutableRawPointer(bitPattern: aligned)!
    adviseHugePages(block, bytes)
    return block
}

/// bitIndices[2 m] lists the set bits of the byte m in increasing order (then zeros);
/// bitIndices[2 m + 1] has lane l = bit l of m (the byte's bits as counts).
let bitIndices: UnsafePointer<SIMD8<UInt16>> = {
    let table = UnsafeMutablePointer<SIMD8<UInt16>>.allocate(capacity: 512)
    for m in 0..<256 {
        var v = SIMD8<UInt16>(), ones = SIMD8<UInt16>(), k = 0
        for l in 0..<8 where m & (1 << l) != 0 { v[k] = UInt16(l); ones[l] = 1; k += 1 }
        table[2 * m] = v
        table[2 * m + 1] = ones
    }
    return UnsafePointer(table)
}()

/// Adds bit l of the byte `mask` to counts[l], l < 8 (counts may be unaligned).
@inline(__always)
func addBits(_ table: UnsafePointer<SIMD8<UInt16>>, _ counts: UnsafeMutablePointer<UInt16>, _ mask: UInt64) {
    let c = UnsafeMutableRawPointer(counts)
    c.storeBytes(of: c.loadUnaligned(as: SIMD8<UInt16>.self) &+ table[2 * Int(mask) + 1], as: SIMD8<UInt16>.self)
}

/// Writes i0 + l for the set bits l of the byte `mask`, in order, at out[k...] (storing 8
/// entries: out needs room for k + 8) and returns k + their number. No branch per event.
@inline(__always)
func appendBits(_ table: UnsafePointer<SIMD8<UInt16>>, _ out: UnsafeMutablePointer<UInt16>, _ k: Int,
                _ i0: Int, _ mask: UInt64) -> Int {
    let v = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: i0)) &+ table[2 * Int(mask)]
    UnsafeMutableRawPointer(out + k).storeBytes(of: v, as: SIMD8<UInt16>.self)
    return k + mask.nonzeroBitCount
}

/// Memory in mmap'd huge-page blocks, handed out front to back and unmapped together by
/// `release`: where a worker keeps what it produced (`EventArena`, `DenseSampleRecords`).
final class HugePageBlocks {
    private let blockBytes: Int
    private var blocks: [(UnsafeMutableRawPointer, Int)] = []
    private var spare: UnsafeMutablePointer<UInt16>? = nil
    private var spareCount = 0

    init(blockBytes: Int) { self.blockBytes = blockBytes }

    /// Room for `count` >= 1 UInt16 (nil without memory).
    func take(_ count: Int) -> UnsafeMutablePointer<UInt16>? {
        if count > spareCount {
            let bytes = roundUp(Swift.max(blockBytes, count * 2), hugePageBytes)
            guard let block = mapHugePages(bytes) else { return nil }
            blocks.append((block, bytes))
            spare = block.bindMemory(to: UInt16.self, capacity: bytes / 2)
            spareCount = bytes / 2
        }
        guard let dest = spare else { return nil }
        spare = dest + count
        spareCount -= count
        return dest
    }

    /// Unmaps every block.
    func release() {
        for (block, bytes) in blocks { munmap(block, bytes) }
        blocks = []
        spare = nil
        spareCount = 0
    }
}

/// One worker's output of the producing pass: the events of the sample being produced (a
/// growable row buffer with room for one more step), and the events of its finished samples
/// in mmap'd blocks that `release` gives back to the system at once.
final class EventArena {
    private let nIn: Int
    private let store = HugePageBlocks(blockBytes: 2 * hugePageBytes)
    /// A step found no memory: the current sample is lost (`keep` returns nil).
    private var starved = false
    /// The current sample's events so far.
    private(set) var events: UnsafeMutablePointer<UInt16>
    private(set) var count = 0
    private var capacity: Int
    /// Events of each input in the current sample (T <= 65535 fits), padded by 8 for SIMD adds.
    let inputCounts: Scratch<UInt16>
    /// `bitIndices`, for `appendBits`.
    let table = bitIndices

    init(nIn: Int, steps: Int) throws {
        self.nIn = nIn
        inputCounts = try Scratch<UInt16>(roundUp(nIn, 8) + 8, what: "input counts")
        inputCounts.zero()
        capacity = Swift.max(nIn + 8, Swift.min(steps * nIn, 1 << 16))
        guard let p = malloc(capacity * 2) else { throw KernelError.memory("event buffer: cannot allocate \(capacity * 2) bytes") }
        events = p.bindMemory(to: UInt16.self, capacity: capacity)
    }

    deinit {
        release()
        free(events)
    }

    /// Where the next step's events go (room for N_in + 8 of them: `appendBits` stores 8), or
    /// nil without memory.
    @inline(__always) func stepRoom() -> UnsafeMutablePointer<UInt16>? {
        if count + nIn + 8 > capacity {
            let wanted = Swift.max(2 * capacity, count + nIn + 8)
            guard let p = realloc(events, wanted * 2) else { starved = true; return nil }
            events = p.bindMemory(to: UInt16.self, capacity: wanted)
            capacity = wanted
        }
        return events + count
    }

    /// Counts `k` events written at `stepRoom()`.
    @inline(__always) func commit(_ k: Int) { count += k }

    /// Appends the events of one step from its N_in bytes (0 or 1; any other bits are ORed
    /// into `invalid`) and counts them per input; returns their number (nil without memory).
    /// Branch-free per event: 8 bytes at a time, their bits' indices from `bitIndices`.
    @inline(__always) func appendRow(_ row: UnsafePointer<UInt8>, invalid: inout UInt64) -> Int? {
        guard let out = stepRoom() else { return nil }
        let counts = inputCounts.pointer
        var k = 0, i = 0
        while i + 8 <= nIn {
            let word = UInt64(littleEndian: UnsafeRawPointer(row + i).loadUnaligned(as: UInt64.self))
            if word != 0 {
                invalid |= word & 0xFEFE_FEFE_FEFE_FEFE
                // byte l (0 or 1) moves to bit 56 + l: all partial products on distinct bits
                let mask = ((word & 0x0101_0101_0101_0101) &* 0x0102_0408_1020_4080) >> 56
                k = appendBits(table, out, k, i, mask)
                addBits(table, counts + i, mask)
            }
            i += 8
        }
        while i < nIn {
            let v = row[i]
            if v != 0 {
                invalid |= UInt64(v & 0xFE)
                out[k] = UInt16(truncatingIfNeeded: i)
                k += 1
                counts[i] &+= 1
            }
            i += 1
        }
        count += k
        return k
    }

    /// Moves the current sample's events into the blocks; returns their address (nil without
    /// memory) and starts the next sample.
    func keep() -> UnsafePointer<UInt16>? {
        defer { count = 0; starved = false }
        if starved { return nil }
        if count == 0 { return UnsafePointer(events) }  // no events: any address will do
        guard let dest = store.take(count) else { return nil }
        dest.update(from: events, count: count)
        return UnsafePointer(dest)
    }

    /// Unmaps every block.
    func release() { store.release() }
}

/// Per-sample counts c[0 ..< n] -> their exclusive prefix sums in place, c[n] = the total
/// (returned): the offset of each sample's events in the joined lists.
func countsToOffsets(_ c: UnsafeMutablePointer<Int64>, _ n: Int) -> Int64 {
    var total: Int64 = 0
    for s in 0..<n {
        let count = c[s]
        c[s] = total
        total += count
    }
    c[n] = total
    return total
}

/// `count` elements of the caller's storage (`allocate`), checked for alignment and advised
/// onto huge pages; `what` names the array in errors.
func callerStorage<T>(_ allocate: EventStorage, _ count: Int, _ what: String) throws -> UnsafeMutablePointer<T> {
    let bytes = try checkedProduct(count, MemoryLayout<T>.stride, what: what)
    guard let raw = allocate(bytes) else { throw KernelError.memory("\(what): no storage for \(bytes) bytes") }
    try require(Int(bitPattern: raw) % MemoryLayout<T>.alignment == 0, "\(what): storage is not aligned")
    adviseHugePages(raw, bytes)
    return raw.bindMemory(to: T.self, capacity: count)
}

/// Builds event lists in one pass over the data. `produce(context, arena, s, stepCounts)`
/// writes sample s's events in step order through `arena.stepRoom()` / `arena.commit(k)` (one
/// step at a time), the number of events of step t at stepCounts[t], and counts the events of
/// input i at arena.inputCounts[i] (zero at the start of each sample); it returns false if
/// the sample's data are invalid, and `invalid(s)` makes the error of the first such sample.
/// Results do not depend on the thread count.
func buildEvents<Context>(
    n: Int, steps: Int, nIn: Int, threads: Int, allocate: EventStorage,
    makeContext: () throws -> Context,
    produce: (inout Context, EventArena, Int, UnsafeMutablePointer<Int64>) -> Bool,
    invalid: (Int) -> KernelError
) throws -> BuiltEvents {
    let stepEntries = try checkedProduct(n, steps, what: "events.step_ptr") + 1
    let inputEntries = try checkedProduct(n, nIn, what: "events.input_ptr") + 1
    func storage<T>(_ count: Int, _ what: String) throws -> UnsafeMutablePointer<T> {
        try callerStorage(allocate, count, what)
    }
    let stepPtr: UnsafeMutablePointer<Int64> = try storage(stepEntries, "events.step_ptr")
    let inputPtr: UnsafeMutablePointer<Int64> = try storage(inputEntries, "events.input_ptr")
    stepPtr[0] = 0
    inputPtr[0] = 0

    // 1. produce every sample once: counts into the pointer arrays, events into the arenas
    let sampleEvents = try Scratch<UnsafePointer<UInt16>?>(n, what: "sample events")
    let totals = try Scratch<Int64>(n + 1, what: "sample offsets")
    let failures = try TaskFailures(n), noMemory = try TaskFailures(n)
    var arenas: [EventArena] = []
    try parallelFor(n, threads: threads, makeContext: { () throws -> (Context, EventArena) in
        let arena = try EventArena(nIn: nIn, steps: steps)
        arenas.append(arena)
        return (try makeContext(), arena)
    }) { ctx, s in
        let arena = ctx.1
        if !produce(&ctx.0, arena, s, stepPtr + s * steps + 1) { failures.fail(s) }
        let counts = arena.inputCounts.pointer, inputCounts = inputPtr + s * nIn + 1
        for i in 0..<nIn { inputCounts[i] = Int64(counts[i]) }
        arena.inputCounts.zero()
        totals.pointer[s] = Int64(arena.count)
        sampleEvents.pointer[s] = arena.keep()
        if sampleEvents.pointer[s] == nil { noMemory.fail(s) }
    }
    if let s = failures.failed.first { throw invalid(s) }
    if !noMemory.failed.isEmpty { throw KernelError.memory("events: cannot allocate blocks for the sample events") }

    // 2. offsets; step_events from the blocks
    let nEvents = Int(countsToOffsets(totals.pointer, n))
    let stepEvents: UnsafeMutablePointer<UInt16> = try storage(nEvents, "events.step_events")
    parallelFor(n, threads: threads) { s in
        let base = totals.pointer[s]
        var offset = base
        let stepRow = stepPtr + s * steps + 1
        for t in 0..<steps { offset += stepRow[t]; stepRow[t] = offset }
        var inputOffset = base
        let inputRow = inputPtr + s * nIn + 1
        for i in 0..<nIn { inputOffset += inputRow[i]; inputRow[i] = inputOffset }
        if let source = sampleEvents.pointer[s] {
            (stepEvents + Int(base)).update(from: source, count: Int(totals.pointer[s + 1] - base))
        }
    }
    for arena in arenas { arena.release() }
    arenas = []

    // 3. input_events by transposing each sample's step events; every write is checked to stay
    // inside the sample's own range (the storage is the caller's)
    let inputEvents: UnsafeMutablePointer<UInt16> = try storage(nEvents, "events.input_events")
    let changed = try TaskFailures(n)
    try parallelFor(n, threads: threads, makeContext: { try Scratch<UInt32>(nIn, what: "event cursors") }) { cursor, s in
        // cursors relative to the sample's first event (a sample has < 2^32 events: T, N_in
        // <= 65535); each checked once against the sample's size
        let first = Int(totals.pointer[s]), size = Int(totals.pointer[s + 1]) - first
        let c = cursor.pointer, out = inputEvents + first, inputs = inputPtr + s * nIn
        for i in 0..<nIn {
            let offset = Int(inputs[i]) - first
            guard offset >= 0, offset <= size else { changed.fail(s); return }
            c[i] = UInt32(truncatingIfNeeded: offset)
        }
        let limit = UInt32(truncatingIfNeeded: size)
        var e = first
        for t in 0..<steps {
            let end = Int(stepPtr[s * steps + t + 1])
            guard end >= e, end <= first + size else { changed.fail(s); return }
            let step = UInt16(truncatingIfNeeded: t)
            while e < end {
                let i = Int(stepEvents[e])
                guard i < nIn else { changed.fail(s); return }
                let position = c[i]
                guard position < limit else { changed.fail(s); return }
                out[Int(position)] = step
                c[i] = position &+ 1
                e += 1
            }
        }
    }
    if let s = changed.failed.first {
        throw KernelError.value("events of sample \(s) changed while they were built (storage shared with another writer)")
    }
    return BuiltEvents(nSamples: n, steps: steps, nIn: nIn, nEvents: nEvents, stepPtr: stepPtr,
                       stepEvents: stepEvents, inputPtr: inputPtr, inputEvents: inputEvents)
}

// MARK: - dense spikes to event lists in one pass (spk_events_from_dense)
//
// 1. Each worker scans its samples' bytes once, 64 at a time: the low bits of 64 bytes become
//    a 64-bit mask (no branch per byte). A sparse sample keeps the indices of the set bits
//    (its step-order events) and its step counts; a dense one keeps the masks themselves (its
//    rows as bits, smaller then). Records go to the worker's blocks (private memory; nothing
//    is written to the caller's storage yet).
// 2. The four arrays are allocated (their sizes are known now) and each sample is written
//    from its record in one task: the pointer rows, its step events and its input events
//    (sparse: a copy, and a transposition through per-input cursors in cache; dense: the set
//    bits of the rows, and of the rows transposed 64 x 64 bits at a time). Every index comes
//    from the private record, built by this code, so no write can leave the sample's range
//    (still checked, at the cost of a compare).
// Results do not depend on the thread count: each sample is built by one task alone.

/// The low bits of 64 bytes (8 little-endian words) as a mask: bit 8 w + l = low bit of byte l
/// of word w. For each word, the multiply moves byte l's low bit to bit 56 + l (all partial
/// products on distinct bits, nothing carries); the vector truncation gathers the 8 top bytes.
@inline(__always)
func lowBitMask(_ v: SIMD8<UInt64>) -> UInt64 {
    let bits = ((v & 0x0101_0101_0101_0101) &* 0x0102_0408_1020_4080) &>> 56
    return unsafeBitCast(SIMD8<UInt8>(truncatingIfNeeded: bits), to: UInt64.self)
}

/// Appends base + l for the set bits l of `mask` (increasing) at out[k...] and returns k + their
/// number. Stores up to 8 entries past the last one it appends (out needs room for k + 64 + 8).
/// Sparse masks (at most 4 bits) take four unconditional trailing-zero steps; denser ones the
/// byte table (8 entries per byte), so no branch depends on each bit.
@inline(__always)
func appendSetBits(_ table: UnsafePointer<SIMD8<UInt16>>, _ out: UnsafeMutablePointer<UInt16>, _ k: Int,
                   _ base: Int, _ mask: UInt64) -> Int {
    let count = mask.nonzeroBitCount
    if count <= 4 {
        let b = UInt16(truncatingIfNeeded: base)
        var m = mask
        // trailingZeroBitCount of 0 is 64: the entries past `count` are stored but not counted
        out[k] = b &+ UInt16(truncatingIfNeeded: m.trailingZeroBitCount); m &= m &- 1
        out[k + 1] = b &+ UInt16(truncatingIfNeeded: m.trailingZeroBitCount); m &= m &- 1
        out[k + 2] = b &+ UInt16(truncatingIfNeeded: m.trailingZeroBitCount); m &= m &- 1
        out[k + 3] = b &+ UInt16(truncatingIfNeeded: m.trailingZeroBitCount)
        return k + count
    }
    var j = k
    for byte in 0..<8 {
        j = appendBits(table, out, j, base + 8 * byte, (mask &>> UInt64(8 * byte)) & 0xFF)
    }
    return j
}

/// Transposes the 64 x 64 bit matrix a (row r = a[r], column c = bit c) in place: afterwards
/// bit c of a[r] is what bit r of a[c] was. Six rounds of block swaps (32, 16, ..., 1 wide;
/// Hacker's Delight 7-3, for bits numbered from the least significant). The rounds that swap
/// rows 8 or more apart do it 8 rows per vector operation.
@inline(__always)
func transpose64(_ a: UnsafeMutablePointer<UInt64>) {
    let rows = UnsafeMutableRawPointer(a)
    @inline(__always) func swapBlocks(_ j: Int, _ m: UInt64) {
        let q = j / 8  // rows k and k + j are lanes of vectors k / 8 and k / 8 + q
        for k in 0..<8 where k & q == 0 {
            let x = rows.loadUnaligned(fromByteOffset: 64 * k, as: SIMD8<UInt64>.self)
            let y = rows.loadUnaligned(fromByteOffset: 64 * (k + q), as: SIMD8<UInt64>.self)
            let t = ((x &>> UInt64(j)) ^ y) & m
            rows.storeBytes(of: y ^ t, toByteOffset: 64 * (k + q), as: SIMD8<UInt64>.self)
            rows.storeBytes(of: x ^ (t &<< UInt64(j)), toByteOffset: 64 * k, as: SIMD8<UInt64>.self)
        }
    }
    swapBlocks(32, 0x0000_0000_FFFF_FFFF)
    swapBlocks(16, 0x0000_FFFF_0000_FFFF)
    swapBlocks(8, 0x00FF_00FF_00FF_00FF)
    var j = 4
    var m: UInt64 = 0x0F0F_0F0F_0F0F_0F0F
    while j != 0 {
        var k = 0
        while k < 64 {  // the rows k with bit j clear, against rows k + j
            let t = ((a[k] &>> UInt64(j)) ^ a[k + j]) & m
            a[k + j] ^= t
            a[k] ^= t &<< UInt64(j)
            k = (k + j + 1) & ~j
        }
        j >>= 1
        m ^= m &<< UInt64(j)
    }
}

/// One worker's private records of the samples it scanned, in mmap'd blocks that `release`
/// unmaps, each starting on 8 bytes: for a sparse sample, T step counts and its step-order
/// events (UInt16 each; the input counts are a histogram of the events, made when they are
/// transposed); for a dense one (more than 4 T W events, W = 64-bit
/// words per row), its rows as bit masks (T x W UInt64), which are then smaller. A sample is
/// scanned in the form its worker's previous sample needed (`dense`); either form is exact.
final class DenseSampleRecords {
    let steps: Int, nIn: Int
    private let store = HugePageBlocks(blockBytes: 2 * hugePageBytes)
    /// The sample being scanned: step counts, and a growable event buffer with room for one
    /// more row.
    let stepCounts: Scratch<UInt16>
    private(set) var events: UnsafeMutablePointer<UInt16>
    private var capacity: Int
    let table = bitIndices
    /// 64-bit words per row of bits.
    let words: Int
    /// The form to scan the next sample in (the one its predecessor needed).
    var dense = false

    /// True if a sample of `count` events is kept as bits (smaller than as events).
    static func keepsBits(_ count: Int, steps: Int, words: Int) -> Bool { count > 4 * steps * words }

    init(steps: Int, nIn: Int) throws {
        self.steps = steps
        self.nIn = nIn
        words = (nIn + 63) / 64
        stepCounts = try Scratch<UInt16>(steps, what: "step counts")
        capacity = Swift.max(nIn + 72, Swift.min(steps * nIn + 72, 1 << 16))
        guard let p = malloc(capacity * 2) else { throw KernelError.memory("event buffer: cannot allocate \(capacity * 2) bytes") }
        events = p.bindMemory(to: UInt16.self, capacity: capacity)
    }

    deinit {
        release()
        free(events)
    }

    /// Room for a row's events after the first `count` (N_in + 72 entries: `appendSetBits`
    /// stores past its last entry); nil without memory.
    @inline(__always) func rowRoom(_ count: Int) -> UnsafeMutablePointer<UInt16>? {
        if count + nIn + 72 > capacity {
            let wanted = Swift.max(2 * capacity, count + nIn + 72)
            guard let p = realloc(events, wanted * 2) else { return nil }
            events = p.bindMemory(to: UInt16.self, capacity: wanted)
            capacity = wanted
        }
        return events + count
    }

    /// Scans sample `x` (T rows of N_in bytes); returns its number of events, or nil without
    /// memory. Bits other than the low one of any byte are ORed into `invalid`.
    func scan(_ x: UnsafePointer<UInt8>, invalid: inout UInt64) -> Int? {
        let steps = stepCounts.pointer, table = self.table
        var bad = SIMD8<UInt64>(), badWord: UInt64 = 0, count = 0
        for t in 0..<self.steps {
            guard let out = rowRoom(count) else { return nil }
            let row = x + t * nIn
            var k = 0, i = 0
            while i + 64 <= nIn {
                let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<UInt64>.self)
                bad |= v
                k = appendSetBits(table, out, k, i, lowBitMask(v))
                i += 64
            }
            while i + 8 <= nIn {
                let word = UnsafeRawPointer(row + i).loadUnaligned(as: UInt64.self)
                badWord |= word
                let mask = ((word & 0x0101_0101_0101_0101) &* 0x0102_0408_1020_4080) >> 56
                k = appendBits(table, out, k, i, mask)
                i += 8
            }
            while i < nIn {
                let v = row[i]
                badWord |= UInt64(v)
                out[k] = UInt16(truncatingIfNeeded: i)
                k += Int(v & 1)
                i += 1
            }
            steps[t] = UInt16(truncatingIfNeeded: k)
            count += k
        }
        for lane in 0..<8 { badWord |= bad[lane] }
        invalid |= badWord & 0xFEFE_FEFE_FEFE_FEFE
        return count
    }

    /// Scans sample `x` into a record of its bit rows (bit i of row t's word i / 64 = low bit
    /// of x[t, i]), written straight into the blocks; returns the record and the number of
    /// events (nil without memory). Bits other than the low one of any byte are ORed into
    /// `invalid`.
    func scanBits(_ x: UnsafePointer<UInt8>, invalid: inout UInt64) -> (UnsafePointer<UInt16>, Int)? {
        guard let record = reserve(4 * steps * words) else { return nil }
        let bits = UnsafeMutableRawPointer(record).assumingMemoryBound(to: UInt64.self), words = self.words
        var bad = SIMD8<UInt64>(), badWord: UInt64 = 0, count = 0
        for t in 0..<steps {
            let row = x + t * nIn, out = bits + t * words
            var i = 0, w = 0
            while i + 64 <= nIn {
                let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<UInt64>.self)
                bad |= v
                let mask = lowBitMask(v)
                out[w] = mask
                count += mask.nonzeroBitCount
                i += 64
                w += 1
            }
            if i < nIn {  // the last, partial word
                let base = i
                var mask: UInt64 = 0
                while i + 8 <= nIn {
                    let word = UnsafeRawPointer(row + i).loadUnaligned(as: UInt64.self)
                    badWord |= word
                    mask |= (((word & 0x0101_0101_0101_0101) &* 0x0102_0408_1020_4080) >> 56) &<< UInt64(i - base)
                    i += 8
                }
                while i < nIn {
                    let v = row[i]
                    badWord |= UInt64(v)
                    mask |= UInt64(v & 1) &<< UInt64(i - base)
                    i += 1
                }
                out[w] = mask
                count += mask.nonzeroBitCount
            }
        }
        for lane in 0..<8 { badWord |= bad[lane] }
        invalid |= badWord & 0xFEFE_FEFE_FEFE_FEFE
        return (UnsafePointer(record), count)
    }

    /// A place for a record of `size` UInt16 (rounded up to 8 bytes), nil without memory.
    private func reserve(_ size: Int) -> UnsafeMutablePointer<UInt16>? {
        store.take(roundUp(Swift.max(size, 1), 4))
    }

    /// Moves the scanned sample (`count` events) into the blocks and returns its record
    /// (step counts, events), nil without memory.
    func keep(_ count: Int) -> UnsafePointer<UInt16>? {
        guard let dest = reserve(steps + count) else { return nil }
        dest.update(from: stepCounts.pointer, count: steps)
        (dest + steps).update(from: events, count: count)
        return UnsafePointer(dest)
    }

    /// Unmaps every block.
    func release() { store.release() }
}

/// Writes the input-order events of a sample (steps, at out[cursors[i]...] for input i) from its
/// step-order events and step counts; false if an event or a cursor leaves [0, nIn) or
/// [0, size) (then out is partly written). A function of its own: the loop then keeps its
/// pointers in registers.
@inline(never)
func transposeEvents(_ events: UnsafePointer<UInt16>, _ stepCounts: UnsafePointer<UInt16>, steps: Int, nIn: Int,
                     cursors c: UnsafeMutablePointer<UInt32>, out: UnsafeMutablePointer<UInt16>, size: Int) -> Bool {
    let limit = UInt32(truncatingIfNeeded: size)
    var e = 0
    for t in 0..<steps {
        let end = e + Int(stepCounts[t]), step = UInt16(truncatingIfNeeded: t)
        while e < end {
            let i = Int(events[e])
            let position = c[i]
            guard i < nIn, position < limit else { return false }
            out[Int(position)] = step
            c[i] = position &+ 1
            e += 1
        }
    }
    return true
}

/// Runs `body(context, range)` over `chunks` contiguous ranges of 0..<count, on up to `threads`
/// workers that each take the next unclaimed range (so a worker slowed by other processes does
/// fewer), each with a private context from `makeContext`; `body` must write disjoint outputs.
/// Results do not depend on which worker runs which range.
func parallelChunks<Context>(
    _ count: Int, chunks: Int, threads: Int, makeContext: () throws -> Context,
    _ body: (inout Context, Range<Int>) -> Void
) throws {
    let chunks = Swift.max(1, Swift.min(chunks, count))
    let workers = Swift.max(1, Swift.min(threads, chunks))
    var contexts: [Context] = []
    for _ in 0..<workers { contexts.append(try makeContext()) }
    func range(_ c: Int) -> Range<Int> { (c * count / chunks)..<((c + 1) * count / chunks) }
    if workers == 1 {
        for c in 0..<chunks { body(&contexts[0], range(c)) }
        return
    }
    let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
    defer { pthread_mutex_destroy(lock); lock.deallocate() }
    var next = 0
    contexts.withUnsafeMutableBufferPointer { ctx in
        let base = ctx.baseAddress!
        WorkerPool.shared.run(workers) { worker in
            while true {
                pthread_mutex_lock(lock)
                let c = next
                next += 1
                pthread_mutex_unlock(lock)
                if c >= chunks { break }
                body(&base[worker], range(c))
            }
        }
    }
}

/// Event lists of dense spikes (n x T x N_in bytes, 0 or 1) in one pass over the array (the
/// one-pass successor of indexEvents + fillEvents, with the same results). The caller's storage
/// is requested after the scan, in the order step_ptr, input_ptr, step_events, input_events;
/// values other than 0 and 1 are refused before any request. Peak memory: the event lists plus
/// the private records (per sample, the smaller of its bit rows and its events with T
/// counts), which never exceed about twice the dense array the caller holds. Measured extra peak
/// RSS / event lists' bytes, 4096 samples: 1.17 for the tutorial (82 MB dense; records as bits),
/// 1.41 at 250 Hz (819 MB dense; records as events); 1.01 before the records existed.
public func eventsFromDense(_ x: UnsafePointer<UInt8>, n: Int, steps: Int, nIn: Int, threads: Int,
                            allocate: EventStorage) throws -> BuiltEvents {
    try validateDenseShape(n: n, steps: steps, nIn: nIn)
    let threads = try resolveThreads(threads)
    let stepEntries = try checkedProduct(n, steps, what: "events.step_ptr") + 1
    let inputEntries = try checkedProduct(n, nIn, what: "events.input_ptr") + 1
    func storage<T>(_ count: Int, _ what: String) throws -> UnsafeMutablePointer<T> {
        try callerStorage(allocate, count, what)
    }

    // 1. scan every sample once into the workers' private records
    let records = try Scratch<UnsafePointer<UInt16>?>(n, what: "sample records")
    let asBits = try Scratch<UInt8>(n, what: "sample record forms")  // 1: bits, 0: events
    let offsets = try Scratch<Int64>(n + 1, what: "sample offsets")
    let failures = try TaskFailures(n), noMemory = try TaskFailures(n)
    var workers: [DenseSampleRecords] = []
    // ranges of samples taken one after another by the workers (8 per worker: balance when a
    // core is busy with something else)
    let chunks = 8 * threads
    try parallelChunks(n, chunks: chunks, threads: threads, makeContext: { () throws -> DenseSampleRecords in
        let w = try DenseSampleRecords(steps: steps, nIn: nIn)
        workers.append(w)
        return w
    }) { w, range in for s in range {
        var invalid: UInt64 = 0
        let sample = x + s * steps * nIn
        if w.dense {
            guard let (record, count) = w.scanBits(sample, invalid: &invalid) else {
                noMemory.fail(s)
                continue
            }
            offsets.pointer[s] = Int64(count)
            asBits.pointer[s] = 1
            records.pointer[s] = record
            w.dense = DenseSampleRecords.keepsBits(count, steps: steps, words: w.words)
        } else {
            guard let count = w.scan(sample, invalid: &invalid) else {
                noMemory.fail(s)
                continue
            }
            offsets.pointer[s] = Int64(count)
            asBits.pointer[s] = 0
            records.pointer[s] = w.keep(count)
            w.dense = DenseSampleRecords.keepsBits(count, steps: steps, words: w.words)
        }
        if invalid != 0 { failures.fail(s) }
        if records.pointer[s] == nil { noMemory.fail(s) }
    } }
    defer { for w in workers { w.release() } }
    if let s = failures.failed.first {
        for t in 0..<steps {
            let row = x + (s * steps + t) * nIn
            if let i = (0..<nIn).first(where: { row[$0] > 1 }) {
                throw KernelError.value("spikes must contain only 0 and 1; spikes[\(s), \(t), \(i)] = \(row[i])")
            }
        }
        throw KernelError.value("spikes of sample \(s) changed during the call")
    }
    if !noMemory.failed.isEmpty { throw KernelError.memory("events: cannot allocate the sample records") }

    // 2. offsets, then the four arrays, each sample written from its record by one task
    let nEvents = Int(countsToOffsets(offsets.pointer, n))
    let stepPtr: UnsafeMutablePointer<Int64> = try storage(stepEntries, "events.step_ptr")
    let inputPtr: UnsafeMutablePointer<Int64> = try storage(inputEntries, "events.input_ptr")
    let stepEvents: UnsafeMutablePointer<UInt16> = try storage(nEvents, "events.step_events")
    let inputEvents: UnsafeMutablePointer<UInt16> = try storage(nEvents, "events.input_events")
    stepPtr[0] = 0
    inputPtr[0] = 0
    let broken = try TaskFailures(n)
    // The workers write contiguous ranges of samples (the chunks of pass 1): their output is
    // then contiguous too, and their first touches of the fresh storage fall on different
    // huge pages (when they alternate samples, one waits for the other to clear the page they
    // share). 8 ranges per worker of 4096 tutorial samples write 4.8 MB each.
    // Per worker: cursors, and a sample's input events, transposed in cache and then copied
    // (scattered stores straight into fresh output memory each wait for their cache line).
    let largest = (0..<n).reduce(0) { Swift.max($0, Int(offsets.pointer[$1 + 1] - offsets.pointer[$1])) }
    let words = (nIn + 63) / 64, stepWords = (steps + 63) / 64, table = bitIndices
    /// A sample kept as bits: both orders by appending the set bits of its rows and of its
    /// columns (the rows transposed 64 x 64 at a time into `columns`, N_in rows of T bits).
    func writeSampleFromBits(_ s: Int, buffer: UnsafeMutablePointer<UInt16>, columns: UnsafeMutablePointer<UInt64>,
                             block: UnsafeMutablePointer<UInt64>) -> Bool {
        let bits = UnsafeRawPointer(records.pointer[s]!).assumingMemoryBound(to: UInt64.self)
        let first = offsets.pointer[s], size = Int(offsets.pointer[s + 1] - first)
        var total = 0
        for j in 0..<(steps * words) { total += bits[j].nonzeroBitCount }
        guard total == size else { return false }  // then no append below passes size + 8
        let stepRow = stepPtr + s * steps + 1, inputRow = inputPtr + s * nIn + 1
        var k = 0
        for t in 0..<steps {
            for w in 0..<words { k = appendSetBits(table, buffer, k, 64 * w, bits[t * words + w]) }
            stepRow[t] = first + Int64(k)
        }
        (stepEvents + Int(first)).update(from: buffer, count: size)
        for u in 0..<stepWords {
            for w in 0..<words {
                for r in 0..<64 {
                    let t = 64 * u + r
                    block[r] = t < steps ? bits[t * words + w] : 0
                }
                transpose64(block)
                for j in 0..<64 { columns[(64 * w + j) * stepWords + u] = block[j] }
            }
        }
        k = 0
        for i in 0..<nIn {
            for u in 0..<stepWords { k = appendSetBits(table, buffer, k, 64 * u, columns[i * stepWords + u]) }
            inputRow[i] = first + Int64(k)
        }
        guard k == size else { return false }
        (inputEvents + Int(first)).update(from: buffer, count: size)
        return true
    }
    func writeSample(_ s: Int, cursors c: UnsafeMutablePointer<UInt32>, buffer: UnsafeMutablePointer<UInt16>) -> Bool {
        let record = records.pointer[s]!, stepCounts = record, events = record + steps
        let first = offsets.pointer[s], size = Int(offsets.pointer[s + 1] - first)
        // pointer rows; cursors relative to the sample's first event, from a histogram of the
        // events (sparse samples: fewer operations than counting every input while scanning)
        let stepRow = stepPtr + s * steps + 1, inputRow = inputPtr + s * nIn + 1
        var sum = 0
        for t in 0..<steps { sum += Int(stepCounts[t]); stepRow[t] = first + Int64(sum) }
        guard sum == size else { return false }
        c.update(repeating: 0, count: nIn)
        for e in 0..<size {
            let i = Int(events[e])
            guard i < nIn else { return false }
            c[i] &+= 1
        }
        sum = 0
        for i in 0..<nIn {
            let count = Int(c[i])
            c[i] = UInt32(truncatingIfNeeded: sum)
            sum += count
            inputRow[i] = first + Int64(sum)
        }
        guard sum == size else { return false }
        (stepEvents + Int(first)).update(from: events, count: size)
        guard transposeEvents(events, stepCounts, steps: steps, nIn: nIn, cursors: c, out: buffer, size: size) else {
            return false
        }
        (inputEvents + Int(first)).update(from: buffer, count: size)
        return true
    }
    let columnWords = try checkedProduct(64 * words, stepWords, what: "columns")
    try parallelChunks(n, chunks: chunks, threads: threads, makeContext: {
        (try Scratch<UInt32>(nIn, what: "event cursors"), try Scratch<UInt16>(largest + 72, what: "sample events"),
         try Scratch<UInt64>(columnWords, what: "columns"), try Scratch<UInt64>(64, what: "bit block"))
    }) { scratch, range in
        for s in range {
            let ok = asBits.pointer[s] != 0
                ? writeSampleFromBits(s, buffer: scratch.1.pointer, columns: scratch.2.pointer, block: scratch.3.pointer)
                : writeSample(s, cursors: scratch.0.pointer, buffer: scratch.1.pointer)
            if !ok { broken.fail(s) }
        }
    }
    if let s = broken.failed.first {
        throw KernelError.value("events of sample \(s): internal inconsistency while building them")
    }
    return BuiltEvents(nSamples: n, steps: steps, nIn: nIn, nEvents: nEvents, stepPtr: stepPtr,
                       stepEvents: stepEvents, inputPtr: inputPtr, inputEvents: inputEvents)
}
