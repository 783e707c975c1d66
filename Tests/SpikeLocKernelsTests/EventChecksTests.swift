// The checks that every kernel reading event lists runs per sample (EventData.validateSample).
import XCTest
@testable import SpikeLocKernels

final class EventChecksTests: XCTestCase {
    /// nonDecreasing (8 pairs per vector compare, then a scalar tail) finds a decrease at every
    /// position, for row counts on both sides of multiples of 8, and accepts equal neighbours.
    func testNonDecreasingFindsEveryDecrease() {
        func check(_ p: [Int64], _ rows: Int) -> Bool { p.withUnsafeBufferPointer { nonDecreasing($0.baseAddress!, rows) } }
        for rows in 0...26 {
            let ramp = (0...rows).map { Int64(3 * $0) }
            XCTAssertTrue(check(ramp, rows), "ramp, rows \(rows)")
            XCTAssertTrue(check([Int64](repeating: 7, count: rows + 1), rows), "constant, rows \(rows)")
            for r in stride(from: 1, through: rows, by: 1) {
                for (what, value) in [("one less", Int64(3 * r - 4)), ("Int64.min", Int64.min), ("-1", -1)] {
                    var p = ramp
                    p[r] = value
                    XCTAssertFalse(check(p, rows), "\(what) at \(r), rows \(rows)")
                }
                var p = ramp
                p[r - 1] = Int64.max  // the decrease is after the huge value
                XCTAssertFalse(check(p, rows), "Int64.max at \(r - 1), rows \(rows)")
            }
            // only entries 0 ... rows are read: a decrease after them does not count
            XCTAssertTrue(check(ramp + [-5], rows), "entry past rows, rows \(rows)")
        }
    }
}

/// The bit-matrix transposition from_dense uses for its dense samples.
final class BitTransposeTests: XCTestCase {
    func testTranspose64MatchesTheDefinition() {
        var rng = TestRNG(seed: 11)
        for trial in 0..<20 {
            var a = (0..<64).map { _ in rng.next() & (trial % 2 == 0 ? UInt64.max : rng.next()) }
            if trial == 0 { a = (0..<64).map { UInt64(1) << UInt64($0) } }  // identity
            let original = a
            a.withUnsafeMutableBufferPointer { transpose64($0.baseAddress!) }
            for r in 0..<64 {
                for c in 0..<64 {
                    XCTAssertEqual((a[r] >> UInt64(c)) & 1, (original[c] >> UInt64(r)) & 1, "trial \(trial), (\(r), \(c))")
                }
            }
        }
    }
}
