// Optimiser steps, in place on float32 arrays (MODEL.md section 3).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One step of torch.optim.Adam (no weight decay, no amsgrad); `step` is t >= 1:
///   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
///   w -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
public func adamStep(w: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                     v: UnsafeMutablePointer<Float>, count: Int, lr: Double, beta1: Double, beta2: Double,
                     eps: Double, step: Int) throws {
    try requireCount(count, "n", min: 0)
    try require(lr.isFinite && lr >= 0, "lr must be finite and >= 0, got \(lr)")
    try require(beta1.isFinite && beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
    try require(beta2.isFinite && beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
    try require(eps.isFinite && eps >= 0, "eps must be finite and >= 0, got \(eps)")
    try require(step >= 1, "step must be >= 1, got \(step)")
    let stepSize = Float(lr / (1 - pow(beta1, Double(step))))
    let correction2 = Float(sqrt(1 - pow(beta2, Double(step))))
    let b1 = Float(beta1), b2 = Float(beta2), e = Float(eps)
    // eight lanes at a time (vsqrtps / vdivps), then the same arithmetic lane by lane
    var i = 0
    while i + lanes <= count {
        let g = loadVec(grad + i)
        let mi = b1 * loadVec(m + i) + (1 - b1) * g
        let vi = b2 * loadVec(v + i) + (1 - b2) * g * g
        storeVec(mi, m + i)
        storeVec(vi, v + i)
        storeVec(loadVec(w + i) - stepSize * mi / (vi.squareRoot() / correction2 + e), w + i)
        i += lanes
    }
    while i < count {
        let g = grad[i]
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        w[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + e)
        i += 1
    }
}

/// Plain gradient descent: w -= lr grad.
public func sgdStep(w: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>, count: Int, lr: Double) throws {
    try requireCount(count, "n", min: 0)
    try require(lr.isFinite && lr >= 0, "lr must be finite and >= 0, got \(lr)")
    let rate = Float(lr)
    for i in 0..<count { w[i] -= rate * grad[i] }
}
