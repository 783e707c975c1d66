// The first weight matrix of the general network and its trainable delays (MODEL.md section 7).
//
// A delay d >= 0 (time steps, real), k = floor(d), f = d - k: the input spike at step t reaches
// the synapse at t + d by linear interpolation, i.e. it adds (1 - f) W_ij to the current of
// step t + k and f W_ij to step t + k + 1. The current of step n is the sum of the weight rows
// that reach it, one `addRows` over a list of rows with the accumulators in registers, as
// without delays. The list of step n comes from bitsets over the inputs: X_t (the inputs that
// spike at step t) and, per lag m, the inputs with a row at lag m; a step costs a few word
// operations per lag in use plus one per listed row, nothing per lag and event:
//   one delay per input: with Y_n = the inputs whose delayed spike falls on step n
//     (X_{n-k_i}, over the groups of equal k), runs of spikes merge: step n gets W_i where
//     Y_n and Y_{n-1} (the spike of n - k and the fraction of the one before), (1 - f_i) W_i
//     where only Y_n (a run's first step) and f_i W_i where only Y_{n-1} (after its last), so
//     a run of r spikes costs r + 1 rows (none extra for an integer delay);
//   one delay per synapse: input i's synapses use a set of lags M_i (the k and k + 1 of its
//     synapses) and its weights are stacked into one row per lag m,
//       Wc[(i, m), j] = W_ij ((1 - f_ij) [k_ij = m] + f_ij [k_ij + 1 = m]),
//     and an event adds |M_i| rows (few where the delays of an input are close in time).
// Backward, with gI the current's adjoint, the lagged sums G[(i, m)] = sum over the events t of
// input i of gI_{t+m} (one `addRowsShifted` per input and lag, over the data's own lists) give
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
    /// Gradient rows: one per input (no delays), the lags k_i and k_i + 1 per input, or the
    /// forward rows (per synapse).
    let gradientRows: Int
    /// 64-bit words of a bitset over the inputs.
    let words: Int
    /// The lags in use: per input the distinct k_i (groups of inputs), per synapse the lags of
    /// the rows with a nonzero weight; `masks` (lags x words) the inputs of each.
    let lags: [Int]
    let masks: Scratch<UInt64>
    /// Per synapse: the forward row of (lag index, input), valid where the mask has the input.
    let rowOfLag: Scratch<UInt16>
    /// Per input: the inputs with f > 0 (words), and k_i.
    let fractional: Scratch<UInt64>, shift: [Int]
    /// Per synapse: rows of input i are rowStart[i] ..< rowStart[i + 1], with their lags.
    let rowStart: [Int], rowLag: [Int]
    /// Per delay (per input, or per synapse): the gradient row of its integer part k (that of
    /// k + 1 is the next one) and its fraction f.
    let rowOfK: [Int32], fraction: [Float]
    /// The effective weights (nIn x cols), for the delay gradient.
    let effective: [Float]
    /// Largest lag of any row (0 without delays).
    let maxLag: Int
    /// Most rows one step can list.
    let listCapacity: Int

    /// `w` is the effective weight matrix (nIn x cols); `delays` (nIn, or nIn x cols) in
    /// [0, maxDelay] steps, already checked.
    init(_ w: UnsafePointer<Float>, nIn: Int, cols: Int, kind: DelayKind, delays: UnsafePointer<Float>?,
         name: String) throws {
        self.nIn = nIn; self.cols = cols; self.kind = delays == nil ? .none : kind
        let size = try checkedProduct(nIn, cols, what: name)
        words = (nIn + 63) / 64
        guard kind != .none, let delays else {
            weights = try PaddedWeights(w, rows: nIn, cols: cols, name: name)
            width = weights.stride
            gradientRows = nIn
            lags = []; masks = try Scratch(1, what: name); rowOfLag = try Scratch(1, what: name)
            fractional = try Scratch(1, what: name); shift = []; rowStart = []; rowLag = []
            rowOfK = []; fraction = []; effective = []; maxLag = 0; listCapacity = 0
            return
        }
        effective = Array(UnsafeBufferPointer(start: w, count: size))
        let W = words
        if kind == .perInput {
            let stacked = try Scratch<Float>(try checkedProduct(3 * nIn, cols, what: name), what: name)
            var f = [Float](repeating: 0, count: nIn), k = [Int](repeating: 0, count: nIn)
            for i in 0..<nIn {
                let whole = delays[i].rounded(.down)
                k[i] = Int(whole); f[i] = delays[i] - whole
                for j in 0..<cols {
                    let wij = w[i * cols + j]
                    stacked.pointer[(3 * i) * cols + j] = (1 - f[i]) * wij
                    stacked.pointer[(3 * i + 1) * cols + j] = wij
                    stacked.pointer[(3 * i + 2) * cols + j] = f[i] * wij
                }
            }
            weights = try PaddedWeights(UnsafePointer(stacked.pointer), rows: 3 * nIn, cols: cols, name: name)
            width = weights.stride
            gradientRows = 2 * nIn
            let groups = Array(Set(k)).sorted()
            masks = try Scratch(try checkedProduct(groups.count, W, what: name), what: name)
            masks.zero()
            fractional = try Scratch(W, what: name)
            fractional.zero()
            for i in 0..<nIn {
                let g = groups.firstIndex(of: k[i])!
                masks.pointer[g * W + i / 64] |= 1 << UInt64(i % 64)
                if f[i] > 0 { fractional.pointer[i / 64] |= 1 << UInt64(i % 64) }
            }
            lags = groups; shift = k
            rowOfLag = try Scratch(1, what: name); rowStart = []; rowLag = []
            rowOfK = (0..<nIn).map { Int32(2 * $0) }; fraction = f
            maxLag = (k.max() ?? 0) + 1; listCapacity = nIn
            return
        }
        // per synapse: the lags of each input are the k and k + 1 of its delays
        var k = [Int](repeating: 0, count: size), f = [Float](repeating: 0, count: size)
        for e in 0..<size {
            let whole = delays[e].rounded(.down)
            k[e] = Int(whole); f[e] = delays[e] - whole
        }
        var starts = [0], rowLags: [Int] = []
        var used = [Bool]()
        for i in 0..<nIn {
            let own = k[(i * cols)..<((i + 1) * cols)]
            let top = own.max()! + 1
            if used.count < top + 1 { used = [Bool](repeating: false, count: top + 1) }
            for m in 0...top { used[m] = false }
            for m in own { used[m] = true; used[m + 1] = true }
            for m in 0...top where used[m] { rowLags.append(m) }
            starts.append(rowLags.count)
        }
        try require(rowLags.count <= Int(UInt16.max) + 1,
                    "\(name): the delays need \(rowLags.count) weight rows (one per input and delay step), "
                    + "more than 65536; use fewer inputs or a smaller max_steps")
        let rows = rowLags.count
        let stacked = try Scratch<Float>(try checkedProduct(rows, cols, what: name), what: name)
        stacked.zero()
        var rowOf = [Int32](repeating: 0, count: size)
        for e in 0..<size {
            let i = e / cols, j = e % cols
            var r = starts[i]
            while rowLags[r] != k[e] { r += 1 }
            rowOf[e] = Int32(r)
            stacked.pointer[r * cols + j] += (1 - f[e]) * w[e]
            stacked.pointer[(r + 1) * cols + j] += f[e] * w[e]
        }
        weights = try PaddedWeights(UnsafePointer(stacked.pointer), rows: rows, cols: cols, name: name)
        width = weights.stride
        gradientRows = rows
        // the lags of the rows that carry a weight, each with its inputs and their rows
        var active = [Bool](repeating: false, count: rows)
        for r in 0..<rows { for j in 0..<cols where stacked.pointer[r * cols + j] != 0 { active[r] = true; break } }
        let inUse = Array(Set((0..<rows).filter { active[$0] }.map { rowLags[$0] })).sorted()
        masks = try Scratch(try checkedProduct(Swift.max(inUse.count, 1), W, what: name), what: name)
        masks.zero()
        rowOfLag = try Scratch(try checkedProduct(Swift.max(inUse.count, 1), nIn, what: name), what: name)
        var index = [Int: Int]()
        for (g, m) in inUse.enumerated() { index[m] = g }
        for i in 0..<nIn {
            for r in starts[i]..<starts[i + 1] where active[r] {
                let g = index[rowLags[r]]!
                masks.pointer[g * W + i / 64] |= 1 << UInt64(i % 64)
                rowOfLag.pointer[g * nIn + i] = UInt16(truncatingIfNeeded: r)
            }
        }
        lags = inUse; rowStart = starts; rowLag = rowLags
        fractional = try Scratch(1, what: name); shift = []
        rowOfK = rowOf; fraction = f
        maxLag = rowLags.max() ?? 0
        listCapacity = Swift.max(active.filter { $0 }.count, 1)
    }

    /// Starts sample s: the bitsets X_t of the data's steps (state.spikes, steps x words).
    func start(sample s: Int, _ data: EventData, _ state: DelayState) {
        let T = data.steps, W = words, X = state.spikes.pointer
        X.update(repeating: 0, count: T * W)
        for t in 0..<T {
            for e in Int(data.stepPtr[s * T + t])..<Int(data.stepPtr[s * T + t + 1]) {
                let i = Int(data.stepEvents[e])
                X[t * W + i / 64] |= 1 << UInt64(i % 64)
            }
        }
        state.previous.pointer.update(repeating: 0, count: W)
    }

    /// The rows of `weights` whose sum is the current of step n (after `start`; call for
    /// n = 0, 1, 2, ... in order, as the per-input runs carry Y_{n-1}).
    @inline(__always)
    func rows(step n: Int, _ data: EventData, _ state: DelayState) -> (UnsafePointer<UInt16>, Int) {
        let W = words, X = state.spikes.pointer, list = state.list.pointer, T = data.steps
        let groups = state.lags.pointer, masks = masks.pointer
        var count = 0
        if kind == .perInput {
            // Y_n over the groups of equal k, then the three kinds of rows against Y_{n-1}
            let Y = state.current.pointer, P = state.previous.pointer, F = fractional.pointer
            Y.update(repeating: 0, count: W)
            for g in 0..<lags.count {
                let t = n - groups[g]
                if t < 0 || t >= T { continue }
                for w in 0..<W { Y[w] |= X[t * W + w] & masks[g * W + w] }
            }
            for type in 0..<3 {
                for w in 0..<W {
                    var bits = type == 0 ? Y[w] & P[w] : (type == 1 ? Y[w] & ~P[w] : P[w] & ~Y[w] & F[w])
                    let offset = type == 0 ? 1 : (type == 1 ? 0 : 2)
                    while bits != 0 {
                        list[count] = UInt16(truncatingIfNeeded: 3 * (64 * w + bits.trailingZeroBitCount) + offset)
                        count += 1
                        bits &= bits - 1
                    }
                }
            }
            P.update(from: Y, count: W)
        } else {
            let rowOf = rowOfLag.pointer
            for g in 0..<lags.count {
                let t = n - groups[g]
                if t < 0 || t >= T { continue }
                for w in 0..<W {
                    var bits = X[t * W + w] & masks[g * W + w]
                    while bits != 0 {
                        list[count] = rowOf[g * nIn + 64 * w + bits.trailingZeroBitCount]
                        count += 1
                        bits &= bits - 1
                    }
                }
            }
        }
        return (UnsafePointer(list), count)
    }

    /// Adds the lagged sums of one sample to G (gradientRows x width): G[(i, m)] += sum over the
    /// events t of input i of gI_{t+m}. gI has rows up to the largest t + m, zero beyond the steps.
    func accumulate(sample s: Int, _ data: EventData, gI: UnsafePointer<Float>, into G: UnsafeMutablePointer<Float>) {
        for i in 0..<nIn {
            let first = Int(data.inputPtr[s * nIn + i]), last = Int(data.inputPtr[s * nIn + i + 1])
            if first == last { continue }
            let events = data.inputEvents + first, count = last - first
            switch kind {
            case .none:
                addRows(events, count, from: gI, stride: width, into: G + i * width, width: width)
            case .perInput:
                for m in 0..<2 {
                    addRowsShifted(events, count, shift: -shift[i] - m, from: gI, stride: width,
                                   into: G + (2 * i + m) * width, width: width)
                }
            case .perSynapse:
                for r in rowStart[i]..<rowStart[i + 1] {
                    addRowsShifted(events, count, shift: -rowLag[r], from: gI, stride: width, into: G + r * width,
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

/// Per-worker state of the delayed forward pass: the sample's spikes as bitsets over the inputs
/// (steps x words), Y_n and Y_{n-1} (per input), and the list of the current step.
final class DelayState {
    let spikes: Scratch<UInt64>, current: Scratch<UInt64>, previous: Scratch<UInt64>
    let list: Scratch<UInt16>
    /// The projection's lags in use (copied out of its array for the step loop).
    let lags: Scratch<Int>

    init(_ projection: InputProjection, steps: Int) throws {
        spikes = try Scratch(try checkedProduct(steps, projection.words, what: "delay state"), what: "delay state")
        current = try Scratch(projection.words, what: "delay state")
        previous = try Scratch(projection.words, what: "delay state")
        list = try Scratch(projection.listCapacity, what: "delay state")
        lags = try Scratch(Swift.max(projection.lags.count, 1), what: "delay state")
        for (g, m) in projection.lags.enumerated() { lags.pointer[g] = m }
    }
}
