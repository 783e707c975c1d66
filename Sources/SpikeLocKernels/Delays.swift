// The first weight matrix of the general network and its trainable delays (MODEL.md section 7).
//
// A delay d >= 0 (time steps, real), k = floor(d), f = d - k: the input spike at step t reaches
// the synapse at t + d by linear interpolation, i.e. it adds (1 - f) W_ij to the current of
// step t + k and f W_ij to step t + k + 1. Per sample, every event's weight rows are listed
// under the steps they reach, and the current of step n is one `addRows` over its list, with
// the accumulators in registers as without delays. Nothing is dense over the lags:
//   one delay per input: a run of consecutive spikes t0 .. t1 reaches steps t0 + k .. t1 + k + 1
//     with the rows (1 - f) W_i (its first step), W_i (the steps in between, where the spike
//     of t and the fraction of t - 1 meet) and f W_i (its last step): an event adds one row,
//     and one more where a run ends (none for an integer delay);
//   one delay per synapse: input i's synapses use a set of lags M_i (the k and k + 1 of its
//     synapses) and its weights are stacked into one row per lag m,
//       Wc[(i, m), j] = W_ij ((1 - f_ij) [k_ij = m] + f_ij [k_ij + 1 = m]),
//     so an event adds |M_i| rows (few where the delays of an input are close in time).
// Backward, with gI the current's adjoint, the lagged sums G[(i, m)] = sum over the events t of
// input i of gI_{t+m} (one `addRowsShifted` each) give
//   dW_ij = (1 - f_ij) G[(i, k_ij)]_j + f_ij G[(i, k_ij + 1)]_j
//   dd_ij = W_ij (G[(i, k_ij + 1)]_j - G[(i, k_ij)]_j)       (per input: summed over j)
// (at an integer d the right derivative). Without delays the rows are W itself and the data's
// own step lists serve. The reference is python/spikeloc/reference/delays.py.

public enum DelayKind: Int32 {
    case none = 0, perInput = 1, perSynapse = 2
}

/// The input weights (effective, i.e. after Dale's law) as rows for the forward pass, with the
/// delays and the rows of their gradient.
struct InputProjection {
    let nIn: Int, cols: Int, width: Int
    let kind: DelayKind
    /// Forward rows (padded): W (no delays); per input i: 3i = (1 - f_i) W_i (a run's first
    /// step), 3i + 1 = W_i (inside a run), 3i + 2 = f_i W_i (after a run's last spike); per
    /// synapse: the rows (i, m), m in M_i.
    let weights: PaddedWeights
    /// Gradient rows: one per input (no delays), two per input (lags k_i and k_i + 1), or the
    /// forward rows (per synapse).
    let gradientRows: Int
    /// Per input: the integer part k_i (per input) or the first row and lag of each row
    /// (per synapse: rows of input i are rowStart[i] ..< rowStart[i + 1]).
    let shift: Scratch<Int32>, rowStart: Scratch<Int32>, lag: Scratch<Int32>
    /// Forward rows with a nonzero weight (per input: 3i + 2 only where f_i > 0).
    let active: Scratch<UInt8>
    /// Per delay (per input, or per synapse): the gradient row of its integer part k (that of
    /// k + 1 is the next one) and its fraction f.
    let rowOfK: [Int32], fraction: [Float]
    /// The effective weights (nIn x cols), for the delay gradient.
    let effective: [Float]
    /// Largest lag of any row (0 without delays).
    let maxLag: Int
    /// Most rows that can reach one step (the length of a step's list).
    let slotCapacity: Int

    /// `w` is the effective weight matrix (nIn x cols); `delays` (nIn, or nIn x cols) in
    /// [0, maxDelay] steps, already checked.
    init(_ w: UnsafePointer<Float>, nIn: Int, cols: Int, kind: DelayKind, delays: UnsafePointer<Float>?,
         name: String) throws {
        self.nIn = nIn; self.cols = cols; self.kind = delays == nil ? .none : kind
        let size = try checkedProduct(nIn, cols, what: name)
        guard kind != .none, let delays else {
            weights = try PaddedWeights(w, rows: nIn, cols: cols, name: name)
            width = weights.stride
            gradientRows = nIn
            shift = try Scratch(1, what: name); rowStart = try Scratch(1, what: name); lag = try Scratch(1, what: name)
            active = try Scratch(1, what: name)
            rowOfK = []; fraction = []; effective = []; maxLag = 0; slotCapacity = 0
            return
        }
        effective = Array(UnsafeBufferPointer(start: w, count: size))
        if kind == .perInput {
            let stacked = try Scratch<Float>(try checkedProduct(3 * nIn, cols, what: name), what: name)
            shift = try Scratch(nIn, what: name); active = try Scratch(3 * nIn, what: name)
            var f = [Float](repeating: 0, count: nIn), rows = [Int32](repeating: 0, count: nIn)
            var top = 0
            for i in 0..<nIn {
                let whole = delays[i].rounded(.down)
                shift.pointer[i] = Int32(whole); f[i] = delays[i] - whole
                top = Swift.max(top, Int(whole) + 1)
                rows[i] = Int32(2 * i)
                for j in 0..<cols {
                    let wij = w[i * cols + j]
                    stacked.pointer[(3 * i) * cols + j] = (1 - f[i]) * wij
                    stacked.pointer[(3 * i + 1) * cols + j] = wij
                    stacked.pointer[(3 * i + 2) * cols + j] = f[i] * wij
                }
                active.pointer[3 * i] = 1; active.pointer[3 * i + 1] = 1; active.pointer[3 * i + 2] = f[i] > 0 ? 1 : 0
            }
            weights = try PaddedWeights(UnsafePointer(stacked.pointer), rows: 3 * nIn, cols: cols, name: name)
            width = weights.stride
            gradientRows = 2 * nIn
            rowStart = try Scratch(1, what: name); lag = try Scratch(1, what: name)
            rowOfK = rows; fraction = f; maxLag = top; slotCapacity = nIn
            return
        }
        // per synapse: the lags of each input are the k and k + 1 of its delays
        var k = [Int](repeating: 0, count: size), f = [Float](repeating: 0, count: size)
        for e in 0..<size {
            let whole = delays[e].rounded(.down)
            k[e] = Int(whole); f[e] = delays[e] - whole
        }
        var starts = [Int32(0)], lags: [Int32] = []
        var used = [Bool]()
        for i in 0..<nIn {
            let own = k[(i * cols)..<((i + 1) * cols)]
            let top = own.max()! + 1
            if used.count < top + 1 { used = [Bool](repeating: false, count: top + 1) }
            for m in 0...top { used[m] = false }
            for m in own { used[m] = true; used[m + 1] = true }
            for m in 0...top where used[m] { lags.append(Int32(m)) }
            starts.append(Int32(lags.count))
        }
        try require(lags.count <= Int(UInt16.max) + 1,
                    "\(name): the delays need \(lags.count) weight rows (one per input and delay step), "
                    + "more than 65536; use fewer inputs or a smaller max_steps")
        let rows = lags.count
        maxLag = Int(lags.max() ?? 0)
        let stacked = try Scratch<Float>(try checkedProduct(rows, cols, what: name), what: name)
        stacked.zero()
        var rowOf = [Int32](repeating: 0, count: size)
        for e in 0..<size {
            let i = e / cols, j = e % cols
            var r = Int(starts[i])
            while lags[r] != k[e] { r += 1 }
            rowOf[e] = Int32(r)
            stacked.pointer[r * cols + j] += (1 - f[e]) * w[e]
            stacked.pointer[(r + 1) * cols + j] += f[e] * w[e]
        }
        weights = try PaddedWeights(UnsafePointer(stacked.pointer), rows: rows, cols: cols, name: name)
        width = weights.stride
        gradientRows = rows
        rowStart = try Scratch(nIn + 1, what: name); lag = try Scratch(rows, what: name)
        active = try Scratch(rows, what: name)
        for i in 0...nIn { rowStart.pointer[i] = starts[i] }
        var capacity = 0
        for r in 0..<rows {
            lag.pointer[r] = lags[r]
            var nonzero: UInt8 = 0
            for j in 0..<cols where stacked.pointer[r * cols + j] != 0 { nonzero = 1; break }
            active.pointer[r] = nonzero
            capacity += Int(nonzero)
        }
        shift = try Scratch(1, what: name)
        rowOfK = rowOf; fraction = f; slotCapacity = Swift.max(capacity, 1)
    }

    /// Lists, for every step n < `steps`, the rows whose sum is the current of step n for
    /// sample s: input by input, each event's rows go to the list of the step they reach (no
    /// chain of dependent updates: consecutive events of an input reach different steps).
    func prepare(sample s: Int, _ data: EventData, steps: Int, lists: DelayLists) {
        let cap = slotCapacity, entries = lists.entries.pointer, count = lists.count.pointer
        count.update(repeating: 0, count: steps)
        @inline(__always) func append(_ row: Int, _ n: Int) {
            if n < steps {
                let c = count[n]
                entries[n * cap + c] = UInt16(truncatingIfNeeded: row)
                count[n] = c + 1
            }
        }
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            let times = data.inputEvents
            if kind == .perInput {
                // a run's first spike adds (1 - f) W_i, the others W_i, and its end f W_i
                let k = Int(shift.pointer[i]), ends = active.pointer[3 * i + 2] != 0
                var previous = -2
                for e in first..<last {
                    let t = Int(times[e])
                    append(3 * i + (t == previous + 1 ? 1 : 0), t + k)
                    if ends && (e + 1 == last || Int(times[e + 1]) != t + 1) { append(3 * i + 2, t + k + 1) }
                    previous = t
                }
            } else {
                for r in Int(rowStart.pointer[i])..<Int(rowStart.pointer[i + 1]) where active.pointer[r] != 0 {
                    let m = Int(lag.pointer[r])
                    for e in first..<last { append(r, Int(times[e]) + m) }
                }
            }
        }
    }

    /// Rows of `weights` whose sum is the current of step n (after `prepare`); `lists` nil:
    /// no delays, the data's own list.
    @inline(__always)
    func rows(step n: Int, sample s: Int, _ data: EventData, lists: DelayLists?) -> (UnsafePointer<UInt16>, Int) {
        guard let lists else {
            let first = Int(data.stepPtr[s * data.steps + n])
            return (data.stepEvents + first, Int(data.stepPtr[s * data.steps + n + 1]) - first)
        }
        return (UnsafePointer(lists.entries.pointer + n * slotCapacity), lists.count.pointer[n])
    }

    /// Adds the lagged sums of one sample to G (gradientRows x width): G[(i, m)] += sum over the
    /// events t of input i of gI_{t+m}. gI has rows up to the largest t + m, zero beyond the steps.
    func accumulate(sample s: Int, _ data: EventData, gI: UnsafePointer<Float>, into G: UnsafeMutablePointer<Float>) {
        let start = rowStart.pointer, lags = lag.pointer, k = shift.pointer
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            let events = data.inputEvents + first, count = last - first
            switch kind {
            case .none:
                addRows(events, count, from: gI, stride: width, into: G + i * width, width: width)
            case .perInput:
                let m = Int(k[i])
                addRowsShifted(events, count, shift: -m, from: gI, stride: width, into: G + 2 * i * width, width: width)
                addRowsShifted(events, count, shift: -m - 1, from: gI, stride: width, into: G + (2 * i + 1) * width,
                               width: width)
            case .perSynapse:
                for r in Int(start[i])..<Int(start[i + 1]) {
                    addRowsShifted(events, count, shift: -Int(lags[r]), from: gI, stride: width, into: G + r * width,
                                   width: width)
                }
            }
        }
    }

    /// dL/dW_eff (nIn x cols) and dL/dd (per input or per synapse) from the summed G (gradientRows x cols).
    func finish(_ G: UnsafePointer<Float>, gradW: UnsafeMutablePointer<Float>, gradDelays: UnsafeMutablePointer<Float>?) {
        guard kind != .none else {
            gradW.update(from: G, count: nIn * cols)
            return
        }
        let perSynapse = kind == .perSynapse
        for i in 0..<nIn {
            var total = 0.0
            for j in 0..<cols {
                let e = perSynapse ? i * cols + j : i
                let r = Int(rowOfK[e]), f = Double(fraction[e])
                let atK = Double(G[r * cols + j]), atNext = Double(G[(r + 1) * cols + j])
                gradW[i * cols + j] = Float((1 - f) * atK + f * atNext)
                let dd = Double(effective[i * cols + j]) * (atNext - atK)
                if perSynapse { gradDelays?[e] = Float(dd) } else { total += dd }
            }
            if !perSynapse { gradDelays?[i] = Float(total) }
        }
    }
}

/// Per-worker lists of `InputProjection.prepare`: for each step, up to `slotCapacity` rows
/// (a row reaches a step from at most one event, and per input at most one of its three rows
/// reaches a step with one delay per input).
final class DelayLists {
    let entries: Scratch<UInt16>, count: Scratch<Int>

    init(_ projection: InputProjection, steps: Int) throws {
        entries = try Scratch(try checkedProduct(steps, projection.slotCapacity, what: "delay lists"), what: "delay lists")
        count = try Scratch(steps, what: "delay lists")
    }
}
