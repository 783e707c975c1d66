// Research variants of the spiking network (MODEL.md section 4): resets (delayed, same-step,
// subtractive, zero), surrogates (sigmoid, fast sigmoid, arctan, piecewise linear), per-neuron time
// constants with their gradients, an adaptive threshold, Dale's law, spiking output units read
// out by spike count, the hidden firing-rate regulariser and dropout on hidden spikes. They are
// the general network (GeneralNetwork.swift, C ABI spk_network_*) with one feed-forward
// hidden layer; this file holds their codes and the checks and Dale's law helpers the general
// network uses. The default network keeps its tuned fast path (Network.swift).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ResetKind: Int32 {
    case delayed = 0, sameStep = 1, subtractive = 2, zero = 3
}

public enum SurrogateKind: Int32 {
    case sigmoid = 0, fastSigmoid = 1, arctan = 2, piecewiseLinear = 3
}

func checkTaus(_ tau: UnsafePointer<Float>, _ n: Int, _ name: String) throws {
    for j in 0..<n {
        try require(tau[j].isFinite && tau[j] > 0, "\(name)[\(j)] must be a positive finite number, got \(tau[j])")
    }
}

/// Dale's signs: +1 or -1 per row (and 0, a free row, where `free`).
func checkSigns(_ sign: UnsafePointer<Float>, _ n: Int, _ name: String, free: Bool = false) throws {
    for i in 0..<n {
        try require(sign[i] == 1 || sign[i] == -1 || (free && sign[i] == 0),
                    "\(name)[\(i)] must be +1 or -1\(free ? " (or 0: unconstrained)" : ""), got \(sign[i])")
    }
}

/// Dale's law: W_eff = |W| * sign (a sign per row; sign 0 leaves the row as it is), or nil
/// (use W itself) without signs.
func daleEffective(_ w: UnsafePointer<Float>, rows: Int, cols: Int, sign: UnsafePointer<Float>?,
                   name: String) throws -> Scratch<Float>? {
    guard let sign else { return nil }
    let out = try Scratch<Float>(try checkedProduct(rows, cols, what: name), what: name)
    for i in 0..<rows {
        for j in 0..<cols {
            let x = w[i * cols + j]
            out.pointer[i * cols + j] = sign[i] == 0 ? x : Swift.abs(x) * sign[i]
        }
    }
    return out
}

/// dW = dW_eff * sign * sgn(W), sgn(0) = 0 (a weight at exactly 0 stays culled), in place;
/// rows with sign 0 keep dW_eff.
func daleGradient(_ g: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, rows: Int, cols: Int,
                  sign: UnsafePointer<Float>?) {
    guard let sign else { return }
    for i in 0..<rows where sign[i] != 0 {
        for j in 0..<cols {
            let x = w[i * cols + j]
            let sgn: Float = x > 0 ? 1 : (x < 0 ? -1 : 0)
            g[i * cols + j] *= sign[i] * sgn
        }
    }
}
