// The first weight matrix of the general network and its trainable delays (MODEL.md section 7).
//
// A delay d >= 0 (time steps, real), k = floor(d), f = d - k: the input spike at step t reaches
// the synapse at t + d by linear interpolation, i.e. it adds (1 - f) W_ij to the current of
// step t + k and f W_ij to step t + k + 1. Per input i the synapses use a set of lags M_i (the
// k and k + 1 of its synapses; {k_i, k_i + 1} for one delay per input), and the weights are
// stacked into one row per (i, m in M_i):
//   Wc[(i, m), j] = W_ij ((1 - f_ij) [k_ij = m] + f_ij [k_ij + 1 = m])
// so that the current of step n is the sum of the rows (i, m) over the events (t, i) with
// t + m = n: an event touches |M_i| rows (two with one delay per input), never all
// max_steps + 2 lags unless its synapses spread over all of them. Per sample the rows of each
// step are listed by a counting sort over the events, and the current of a step is one
// `addRows` over its list, with the accumulators in registers as without delays.
// Backward, with gI the current's adjoint, the lagged sums G[(i, m)] = sum_{t in events of i}
// gI_{t+m} (one `addRowsShifted` per row and input) give
//   dW_ij = (1 - f_ij) G[(i, k_ij)]_j + f_ij G[(i, k_ij + 1)]_j
//   dd_ij = W_ij (G[(i, k_ij + 1)]_j - G[(i, k_ij)]_j)       (per input: summed over j)
// (at an integer d the right derivative). Without delays the rows are W itself (M_i = {0}).
// The reference is python/spikeloc/reference/delays.py.

public enum DelayKind: Int32 {
    case none = 0, perInput = 1, perSynapse = 2
}

/// The input weights (effective, i.e. after Dale's law) as stacked rows, with the delays.
struct InputProjection {
    let nIn: Int, cols: Int, width: Int
    let kind: DelayKind
    /// Stacked rows (nIn x width without delays).
    let weights: PaddedWeights
    /// Rows of input i: rowStart[i] ..< rowStart[i + 1]; their lags, in increasing order.
    let rowStart: [Int], lag: [Int]
    /// Rows that carry a nonzero weight (the others exist for the gradient only).
    let active: [Bool]
    /// Per delay (per input, or per synapse), the stacked row of its integer part k (the row
    /// of k + 1 is the next one) and its fraction f.
    let rowOfK: [Int32], fraction: [Float]
    /// The effective weights (nIn x cols), for the delay gradient.
    let effective: [Float]
    /// Largest lag of any row (0 without delays).
    let maxLag: Int
    var rows: Int { lag.count }
    var activeRows: Int { active.filter { $0 }.count }

    /// `w` is the effective weight matrix (nIn x cols); `delays` (nIn, or nIn x cols) in
    /// [0, maxDelay] steps, already checked.
    init(_ w: UnsafePointer<Float>, nIn: Int, cols: Int, kind: DelayKind, delays: UnsafePointer<Float>?,
         name: String) throws {
        self.nIn = nIn; self.cols = cols; self.kind = kind
        guard kind != .none, let delays else {
            weights = try PaddedWeights(w, rows: nIn, cols: cols, name: name)
            width = weights.stride
            rowStart = Array(0...nIn); lag = [Int](repeating: 0, count: nIn)
            active = [Bool](repeating: true, count: nIn)
            rowOfK = []; fraction = []; effective = []; maxLag = 0
            return
        }
        let perSynapse = kind == .perSynapse
        let count = perSynapse ? try checkedProduct(nIn, cols, what: "delays") : nIn
        var k = [Int](repeating: 0, count: count), f = [Float](repeating: 0, count: count)
        for e in 0..<count {
            let whole = delays[e].rounded(.down)
            k[e] = Int(whole); f[e] = delays[e] - whole
        }
        // the lags of each input: k and k + 1 of its delays
        var starts = [0], lags: [Int] = []
        var used = [Bool]()
        for i in 0..<nIn {
            let own = perSynapse ? Array(k[(i * cols)..<((i + 1) * cols)]) : [k[i]]
            let top = own.max()! + 1
            if used.count < top + 1 { used = [Bool](repeating: false, count: top + 1) }
            for m in 0...top { used[m] = false }
            for m in own { used[m] = true; used[m + 1] = true }
            for m in 0...top where used[m] { lags.append(m) }
            starts.append(lags.count)
        }
        try require(lags.count <= Int(UInt16.max) + 1,
                    "\(name): the delays need \(lags.count) weight rows (one per input and delay step), "
                    + "more than 65536; use fewer inputs or a smaller max_steps")
        rowStart = starts; lag = lags
        maxLag = lags.max() ?? 0
        let stacked = try Scratch<Float>(try checkedProduct(lags.count, cols, what: name), what: name)
        stacked.zero()
        var rowOf = [Int32](repeating: 0, count: count)
        var copy = [Float](repeating: 0, count: try checkedProduct(nIn, cols, what: name))
        for e in 0..<count {
            // the row of lag k[e] among input i's rows
            let i = perSynapse ? e / cols : e
            var r = starts[i]
            while lags[r] != k[e] { r += 1 }
            rowOf[e] = Int32(r)
        }
        for i in 0..<nIn {
            for j in 0..<cols {
                let e = perSynapse ? i * cols + j : i
                let r = Int(rowOf[e])
                let wij = w[i * cols + j]
                copy[i * cols + j] = wij
                stacked.pointer[r * cols + j] += (1 - f[e]) * wij
                stacked.pointer[(r + 1) * cols + j] += f[e] * wij
            }
        }
        weights = try PaddedWeights(UnsafePointer(stacked.pointer), rows: lags.count, cols: cols, name: name)
        width = weights.stride
        var nonzero = [Bool](repeating: false, count: lags.count)
        for r in 0..<lags.count { for j in 0..<cols where stacked.pointer[r * cols + j] != 0 { nonzero[r] = true; break } }
        active = nonzero
        rowOfK = rowOf; fraction = f; effective = copy
    }

    /// Rows of `weights` that sum to the current of each step of sample `s`, for steps
    /// 0 ..< `steps`: without delays the data's own step lists, with delays a counting sort of
    /// the sample's events into `lists`.
    func prepare(sample s: Int, _ data: EventData, steps: Int, lists: DelayLists) {
        guard kind != .none else { return }
        let start = lists.start.pointer
        start.update(repeating: 0, count: steps + 1)
        // count the rows landing on each step (shifted by one: start[n + 1] counts step n)
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            for r in rowStart[i]..<rowStart[i + 1] where active[r] {
                for e in first..<last {
                    let n = Int(data.inputEvents[e]) + lag[r]
                    if n < steps { start[n + 1] += 1 }
                }
            }
        }
        for n in 0..<steps { start[n + 1] += start[n] }
        let entries = lists.entries.pointer, cursor = lists.cursor.pointer
        cursor.update(from: start, count: steps)
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            for e in first..<last {
                let t = Int(data.inputEvents[e])
                for r in rowStart[i]..<rowStart[i + 1] where active[r] {
                    let n = t + lag[r]
                    if n < steps { entries[cursor[n]] = UInt16(truncatingIfNeeded: r); cursor[n] += 1 }
                }
            }
        }
    }

    /// The rows of step n (after `prepare` for the sample).
    @inline(__always)
    func rows(step n: Int, sample s: Int, _ data: EventData, lists: DelayLists?) -> (UnsafePointer<UInt16>, Int) {
        guard let lists else {
            let first = Int(data.stepPtr[s * data.steps + n])
            return (data.stepEvents + first, Int(data.stepPtr[s * data.steps + n + 1]) - first)
        }
        let first = lists.start.pointer[n]
        return (UnsafePointer(lists.entries.pointer + first), lists.start.pointer[n + 1] - first)
    }

    /// Adds the lagged sums G (rows x width) of one sample: G[(i, m)] += sum over the events t
    /// of input i of gI_{t+m}. gI has rows up to the largest t + m, zero beyond the steps.
    func accumulate(sample s: Int, _ data: EventData, gI: UnsafePointer<Float>, into G: UnsafeMutablePointer<Float>) {
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            for r in rowStart[i]..<rowStart[i + 1] {
                addRowsShifted(data.inputEvents + first, last - first, shift: -lag[r], from: gI, stride: width,
                               into: G + r * width, width: width)
            }
        }
    }

    /// dL/dW_eff (nIn x cols) and dL/dd (per input or per synapse) from the summed G (rows x cols).
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

/// Per-worker lists of `InputProjection.prepare`: row indices per step. A row (i, m) lands on
/// step n only from the event of input i at n - m, so a step lists each active row at most once
/// and `steps x active rows` entries always suffice.
final class DelayLists {
    let entries: Scratch<UInt16>
    let start: Scratch<Int>, cursor: Scratch<Int>

    init(steps: Int, activeRows: Int) throws {
        entries = try Scratch(try checkedProduct(steps, activeRows, what: "delay lists"), what: "delay lists")
        start = try Scratch(steps + 1, what: "delay lists"); cursor = try Scratch(steps + 1, what: "delay lists")
        start.zero()
    }
}
