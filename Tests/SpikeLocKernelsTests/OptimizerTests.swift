// Adam and SGD against the reference trajectories.
import XCTest
import CSpikeLoc
import SpikeLocKernels

final class OptimizerTests: XCTestCase {
    /// |a - b| <= max(rel |b|, floor) elementwise.
    func assertRowClose(_ actual: [Float], _ expected: ArraySlice<Double>, rel: Double, floor: Double, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        for (i, (a, b)) in zip(actual, expected).enumerated() {
            let tol = Swift.max(rel * Swift.abs(b), floor)
            XCTAssertLessThanOrEqual(Swift.abs(Double(a) - b), tol, "\(what), element \(i): \(a) vs \(b)", file: file, line: line)
        }
    }

    func testAdamTrajectory() throws {
        let f = try Fixture("adam")
        let n = try f.int("n"), steps = try f.int("steps")
        let lr = try f.double("lr"), b1 = try f.double("beta1"), b2 = try f.double("beta2"), eps = try f.double("eps")
        let w0 = try f.array("w0", shape: [n]).floats()
        let grads = try f.array("grads", shape: [steps, n]).floats()
        let trajectory = try f.array("trajectory", shape: [steps, n]).doubles()
        var w = w0, m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        for t in 1...steps {
            let g = Array(grads[((t - 1) * n)..<(t * n)])
            try adamStep(w: &w, grad: g, m: &m, v: &v, count: n, lr: lr, beta1: b1, beta2: b2, eps: eps, step: t)
            assertRowClose(w, trajectory[((t - 1) * n)..<(t * n)], rel: 1e-5, floor: 1e-7, "adam step \(t)")
            // a zero gradient never moves a weight
            XCTAssertEqual(w[0].bitPattern, w0[0].bitPattern, "adam step \(t): weight with zero gradient moved")
        }
        // the first step moves every weight with a nonzero gradient by about lr
        var w1 = w0, m1 = [Float](repeating: 0, count: n), v1 = [Float](repeating: 0, count: n)
        try adamStep(w: &w1, grad: Array(grads[0..<n]), m: &m1, v: &v1, count: n, lr: lr, beta1: b1, beta2: b2, eps: eps, step: 1)
        for i in 1..<n {
            XCTAssertEqual(Swift.abs(Double(w1[i] - w0[i])), lr, accuracy: 1e-5, "adam first step, element \(i)")
        }
        // the C ABI agrees bitwise
        var wc = w0, mc = [Float](repeating: 0, count: n), vc = [Float](repeating: 0, count: n)
        for t in 1...steps {
            let g = Array(grads[((t - 1) * n)..<(t * n)])
            XCTAssertEqual(spk_adam_step(&wc, g, &mc, &vc, Int64(n), lr, b1, b2, eps, Int64(t)), SPK_OK, lastError())
        }
        XCTAssertEqual(bitPatterns(wc), bitPatterns(w))
    }

    func testSGDTrajectory() throws {
        let f = try Fixture("sgd")
        let n = try f.int("n"), steps = try f.int("steps"), lr = try f.double("lr")
        let w0 = try f.array("w0", shape: [n]).floats()
        let grads = try f.array("grads", shape: [steps, n]).floats()
        let trajectory = try f.array("trajectory", shape: [steps, n]).doubles()
        var w = w0, wc = w0
        for t in 1...steps {
            let g = Array(grads[((t - 1) * n)..<(t * n)])
            try sgdStep(w: &w, grad: g, count: n, lr: lr)
            XCTAssertEqual(spk_sgd_step(&wc, g, Int64(n), lr), SPK_OK, lastError())
            assertRowClose(w, trajectory[((t - 1) * n)..<(t * n)], rel: 1e-5, floor: 1e-7, "sgd step \(t)")
        }
        XCTAssertEqual(bitPatterns(wc), bitPatterns(w))
        XCTAssertNotEqual(bitPatterns(w), bitPatterns(w0))
    }

    func testOptimizerArgumentChecks() {
        var w: [Float] = [1, 2], m: [Float] = [0, 0], v: [Float] = [0, 0]
        let g: [Float] = [0.5, -0.5]
        let cases: [(String, () -> Int32)] = [
            ("step", { spk_adam_step(&w, g, &m, &v, 2, 0.01, 0.9, 0.999, 1e-8, 0) }),
            ("beta1", { spk_adam_step(&w, g, &m, &v, 2, 0.01, 1.0, 0.999, 1e-8, 1) }),
            ("beta2", { spk_adam_step(&w, g, &m, &v, 2, 0.01, 0.9, -0.1, 1e-8, 1) }),
            ("lr", { spk_adam_step(&w, g, &m, &v, 2, .nan, 0.9, 0.999, 1e-8, 1) }),
            ("eps", { spk_adam_step(&w, g, &m, &v, 2, 0.01, 0.9, 0.999, -1, 1) }),
            ("n", { spk_adam_step(&w, g, &m, &v, -1, 0.01, 0.9, 0.999, 1e-8, 1) }),
            ("lr", { spk_sgd_step(&w, g, 2, .infinity) }),
        ]
        for (name, call) in cases {
            XCTAssertEqual(call(), SPK_ERR_VALUE, name)
            XCTAssertTrue(lastError().contains(name), "'\(lastError())' does not name \(name)")
        }
        XCTAssertEqual(spk_adam_step(&w, nil, &m, &v, 2, 0.01, 0.9, 0.999, 1e-8, 1), SPK_ERR_TYPE)
        XCTAssertTrue(lastError().contains("grad"), lastError())
        XCTAssertEqual(spk_sgd_step(nil, g, 2, 0.1), SPK_ERR_TYPE)
        XCTAssertTrue(lastError().contains("w"), lastError())
        XCTAssertEqual(w, [1, 2], "a failing call modified w")
    }
}
