// The worker pool behind parallelFor: every slot runs exactly once, helpers take part, loops
// posted by several threads at once and loops nested in loops complete.
import Dispatch
import XCTest
@testable import SpikeLocKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class WorkerPoolTests: XCTestCase {
    /// Runs a loop of `slots` slots; returns how often each slot ran.
    private func counts(_ slots: Int, _ extra: (Int) -> Void = { _ in }) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: slots)
        hits.initialize(repeating: 0, count: slots)
        defer { hits.deallocate() }
        WorkerPool.shared.run(slots) { slot in
            hits[slot] += 1
            extra(slot)
        }
        return Array(UnsafeBufferPointer(start: hits, count: slots))
    }

    func testEverySlotRunsExactlyOnce() {
        for slots in [0, 1, 2, 3, 8, 64, 1000] {
            XCTAssertEqual(counts(slots), [Int](repeating: 1, count: slots), "\(slots) slots")
        }
    }

    /// Slot 0 (the caller's) waits until another thread has started slot 1: a helper joins.
    func testHelpersTakePart() throws {
        try XCTSkipIf(WorkerPool.shared.maxHelpers == 0, "one CPU: no helpers")
        let caller = pthread_self()
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        var seen = 0  // guarded by lock: 1 = slot 1 ran on the caller, 2 = on a helper
        func read() -> Int { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return seen }
        let hits = counts(2) { slot in
            if slot == 1 {
                pthread_mutex_lock(lock)
                seen = pthread_equal(pthread_self(), caller) != 0 ? 1 : 2
                pthread_mutex_unlock(lock)
            } else {
                // a generous bound: a sleeping helper wakes in microseconds
                for _ in 0..<10_000 where read() == 0 { usleep(1000) }
            }
        }
        XCTAssertEqual(hits, [1, 1])
        XCTAssertEqual(read(), 2, "slot 1 ran on the calling thread, not on a helper")
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func testLoopsFromSeveralThreadsAtOnce() {
        let results = UnsafeMutablePointer<[Int]>.allocate(capacity: 6)
        results.initialize(repeating: [], count: 6)
        defer { results.deinitialize(count: 6); results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 6) { t in
            var all: [Int] = []
            for round in 0..<50 { all += counts(1 + (t + round) % 7) }
            results[t] = all
        }
        for t in 0..<6 {
            XCTAssertEqual(results[t].count, (0..<50).reduce(0) { $0 + 1 + (t + $1) % 7 })
            XCTAssertTrue(results[t].allSatisfy { $0 == 1 })
        }
    }

    func testNestedLoopsComplete() {
        let inner = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 3)
        inner.initialize(repeating: 0, count: 12)
        defer { inner.deallocate() }
        let outer = counts(4) { slot in
            WorkerPool.shared.run(3) { j in inner[slot * 3 + j] += 1 }
        }
        XCTAssertEqual(outer, [1, 1, 1, 1])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: inner, count: 12)), [Int](repeating: 1, count: 12))
    }

    /// parallelFor's results do not depend on the thread count (each task writes its own output).
    func testParallelForIsIndependentOfThreads() throws {
        func run(_ threads: Int) throws -> [Double] {
            var out = [Double](repeating: 0, count: 257)
            try out.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                try parallelFor(257, threads: threads, makeContext: { [Double](repeating: 0, count: 4) }) { scratch, task in
                    scratch[task % 4] = Double(task).squareRoot()
                    base[task] = scratch[task % 4] * 3
                }
            }
            return out
        }
        let one = try run(1)
        for threads in [2, 3, 8, 300] { XCTAssertEqual(try run(threads), one, "\(threads) threads") }
    }
}
