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
