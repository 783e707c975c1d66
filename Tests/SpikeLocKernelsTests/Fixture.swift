// Test support: the fixture loader (params.json + .npy files written by
// `python -m spikeloc.reference.fixtures`), event-list construction from dense spikes, and
// comparison helpers.
import Foundation
import XCTest
import CSpikeLoc
import SpikeLocKernels

// MARK: - errors

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

// MARK: - .npy arrays

/// A parsed .npy array: the raw little-endian payload plus dtype and shape.
struct NpyArray {
    let path: String
    let descr: String
    let shape: [Int]
    let payload: Data

    var count: Int { shape.reduce(1, *) }

    /// Parses NumPy format v1.0 / v2.0 / v3.0 (C order, little-endian '<f8' '<f4' '<i8' '|u1').
    init(contentsOf url: URL) throws {
        path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FixtureError("cannot read \(url.path): \(error)")
        }
        let bytes = [UInt8](data)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FixtureError("\(url.path): not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FixtureError("\(url.path): truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw FixtureError("\(url.path): unsupported .npy version \(major).\(bytes[7])")
        }
        guard bytes.count >= headerStart + headerLength else {
            throw FixtureError("\(url.path): header length \(headerLength) exceeds the file size \(bytes.count)")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw FixtureError("\(url.path): header is not text")
        }
        descr = try NpyArray.stringValue(of: "descr", in: header, path: url.path)
        let fortran = try NpyArray.rawValue(of: "fortran_order", in: header, path: url.path)
        guard fortran.hasPrefix("False") else {
            throw FixtureError("\(url.path): fortran_order = \(fortran), only C order is supported")
        }
        shape = try NpyArray.shapeValue(in: header, path: url.path)
        let itemSize: Int
        switch descr {
        case "<f8", "<i8": itemSize = 8
        case "<f4": itemSize = 4
        case "|u1", "<u1": itemSize = 1
        default: throw FixtureError("\(url.path): unsupported dtype '\(descr)'")
        }
        let dataStart = headerStart + headerLength
        let expected = shape.reduce(1, *) * itemSize
        guard bytes.count - dataStart == expected else {
            throw FixtureError("\(url.path): payload has \(bytes.count - dataStart) bytes, shape \(shape) of \(descr) needs \(expected)")
        }
        payload = data.subdata(in: dataStart..<data.count)
    }

    private static func rawValue(of key: String, in header: String, path: String) throws -> Substring {
        guard let r = header.range(of: "'\(key)':") else {
            throw FixtureError("\(path): header has no '\(key)': \(header)")
        }
        return header[r.upperBound...].drop(while: { $0 == " " })
    }

    private static func stringValue(of key: String, in header: String, path: String) throws -> String {
        let rest = try rawValue(of: key, in: header, path: path)
        guard let quote = rest.first, quote == "'" || quote == "\"" else {
            throw FixtureError("\(path): '\(key)' is not a string in \(header)")
        }
        let body = rest.dropFirst()
        guard let end = body.firstIndex(of: quote) else { throw FixtureError("\(path): unterminated '\(key)'") }
        return String(body[..<end])
    }

    private static func shapeValue(in header: String, path: String) throws -> [Int] {
        let rest = try rawValue(of: "shape", in: header, path: path)
        guard rest.first == "(", let close = rest.firstIndex(of: ")") else {
            throw FixtureError("\(path): malformed shape in \(header)")
        }
        let inside = rest[rest.index(after: rest.startIndex)..<close]
        var dims: [Int] = []
        for part in inside.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw FixtureError("\(path): bad dimension '\(t)' in shape") }
            dims.append(d)
        }
        return dims
    }

    private func decode<T>(_ type: T.Type, expecting wanted: [String]) throws -> [T] {
        guard wanted.contains(descr) else {
            throw FixtureError("\(path): dtype is '\(descr)', expected \(wanted.joined(separator: " or "))")
        }
        precondition(MemoryLayout<T>.stride * count == payload.count)
        var out = [T]()
        out.reserveCapacity(count)
        payload.withUnsafeBytes { raw in
            for i in 0..<count {
                out.append(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self))
            }
        }
        return out
    }

    // The fixtures are little-endian and so is every platform this package supports.
    func doubles() throws -> [Double] { try decode(Double.self, expecting: ["<f8"]) }
    func floats() throws -> [Float] { try decode(Float.self, expecting: ["<f4"]) }
    func int64s() throws -> [Int64] { try decode(Int64.self, expecting: ["<i8"]) }
    func bytes() throws -> [UInt8] { try decode(UInt8.self, expecting: ["|u1", "<u1"]) }
}

// MARK: - fixture cases

/// One fixture case directory: params.json and its arrays.
struct Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    let name: String
    let directory: URL
    let params: [String: Any]

    init(_ name: String) throws {
        self.name = name
        directory = Fixture.root.appendingPathComponent(name)
        let url = directory.appendingPathComponent("params.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FixtureError("fixture \(name): cannot read \(url.path): \(error)")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError("fixture \(name): params.json is not a JSON object")
        }
        params = object
    }

    func array(_ key: String) throws -> NpyArray {
        try NpyArray(contentsOf: directory.appendingPathComponent(key + ".npy"))
    }

    /// Loads `key` and checks its shape.
    func array(_ key: String, shape: [Int]) throws -> NpyArray {
        let a = try array(key)
        guard a.shape == shape else {
            throw FixtureError("fixture \(name)/\(key).npy: shape \(a.shape), expected \(shape)")
        }
        return a
    }

    private func value(_ key: String) throws -> Any {
        guard let v = params[key] else { throw FixtureError("fixture \(name): params.json has no '\(key)'") }
        return v
    }

    func double(_ key: String) throws -> Double {
        guard let n = try value(key) as? NSNumber else { throw FixtureError("fixture \(name): '\(key)' is not a number") }
        return n.doubleValue
    }

    func int(_ key: String) throws -> Int {
        guard let n = try value(key) as? NSNumber else { throw FixtureError("fixture \(name): '\(key)' is not a number") }
        let d = n.doubleValue
        guard d == d.rounded() else { throw FixtureError("fixture \(name): '\(key)' = \(d) is not an integer") }
        return n.intValue
    }

    /// Unsigned 64-bit integers (JSON numbers up to 2^64 - 1, parsed exactly).
    func uint64(_ key: String) throws -> UInt64 {
        let v = try value(key)
        if let s = v as? String, let u = UInt64(s) { return u }
        guard let n = v as? NSNumber else { throw FixtureError("fixture \(name): '\(key)' is not a number") }
        // NSNumber.stringValue keeps every digit of integers parsed from JSON
        guard let u = UInt64(n.stringValue) else {
            throw FixtureError("fixture \(name): '\(key)' = \(n) is not an unsigned 64-bit integer")
        }
        return u
    }

    func bool(_ key: String) throws -> Bool {
        guard let n = try value(key) as? NSNumber else { throw FixtureError("fixture \(name): '\(key)' is not a boolean") }
        return n.boolValue
    }

    func string(_ key: String) throws -> String {
        guard let s = try value(key) as? String else { throw FixtureError("fixture \(name): '\(key)' is not a string") }
        return s
    }

    /// A hexadecimal string "0x..." as UInt64.
    func hex(_ key: String) throws -> UInt64 {
        let s = try string(key)
        guard s.hasPrefix("0x"), let u = UInt64(s.dropFirst(2), radix: 16) else {
            throw FixtureError("fixture \(name): '\(key)' = \(s) is not a hex string")
        }
        return u
    }
}

// MARK: - event lists from dense spikes

/// An event-list data set built from dense 0/1 spikes with the public `indexEvents` and
/// `fillEvents`. Owns its arrays; use `with { data in ... }` so that they stay alive while a
/// kernel reads them.
final class EventSet {
    let nSamples: Int, steps: Int, nIn: Int
    let stepPtr: UnsafeMutablePointer<Int64>
    let inputPtr: UnsafeMutablePointer<Int64>
    let stepEvents: UnsafeMutablePointer<UInt16>
    let inputEvents: UnsafeMutablePointer<UInt16>
    let nEvents: Int

    init(dense x: [UInt8], n: Int, steps: Int, nIn: Int, threads: Int = 1) throws {
        precondition(x.count == n * steps * nIn, "dense spikes have \(x.count) bytes, expected \(n) x \(steps) x \(nIn)")
        nSamples = n; self.steps = steps; self.nIn = nIn
        let sp = UnsafeMutablePointer<Int64>.allocate(capacity: n * steps + 1)
        let ip = UnsafeMutablePointer<Int64>.allocate(capacity: n * nIn + 1)
        sp.initialize(repeating: -1, count: n * steps + 1)
        ip.initialize(repeating: -1, count: n * nIn + 1)
        stepPtr = sp; inputPtr = ip
        do {
            try x.withUnsafeBufferPointer {
                try indexEvents($0.baseAddress!, n: n, steps: steps, nIn: nIn, stepPtr: sp, inputPtr: ip, threads: threads)
            }
        } catch {
            sp.deallocate(); ip.deallocate()
            throw error
        }
        let total = Int(sp[n * steps])
        nEvents = total
        let se = UnsafeMutablePointer<UInt16>.allocate(capacity: Swift.max(total, 1))
        let ie = UnsafeMutablePointer<UInt16>.allocate(capacity: Swift.max(total, 1))
        se.initialize(repeating: 0xFFFF, count: Swift.max(total, 1))
        ie.initialize(repeating: 0xFFFF, count: Swift.max(total, 1))
        stepEvents = se; inputEvents = ie
        // all members are set: a failure from here on is cleaned up by deinit
        try x.withUnsafeBufferPointer {
            try fillEvents($0.baseAddress!, n: n, steps: steps, nIn: nIn, stepPtr: sp, inputPtr: ip,
                           stepEvents: se, inputEvents: ie, threads: threads)
        }
    }

    deinit {
        stepPtr.deallocate(); inputPtr.deallocate(); stepEvents.deallocate(); inputEvents.deallocate()
    }

    var data: EventData {
        EventData(nSamples: nSamples, steps: steps, nIn: nIn, nEvents: nEvents,
                  stepPtr: stepPtr, stepEvents: stepEvents, inputPtr: inputPtr, inputEvents: inputEvents)
    }

    /// Runs `body` with the event view, keeping the arrays alive meanwhile.
    func with<R>(_ body: (EventData) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(data) }
    }
}

// MARK: - deterministic test data

/// A small deterministic generator for test inputs (SplitMix64 stream).
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return CounterRNG.mix64(state)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Uniform integer in [0, n).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// Dense 0/1 spikes with probability p.
    mutating func spikes(count: Int, p: Double) -> [UInt8] { (0..<count).map { _ in uniform() < p ? 1 : 0 } }
    /// float32 weights, multiples of 1/64 in [lo, hi) / 64.
    mutating func weights(count: Int, lo: Int, hi: Int) -> [Float] {
        (0..<count).map { _ in Float(lo + below(hi - lo)) / 64 }
    }
}

// MARK: - comparisons

/// SPIKELOC_TEST_VERBOSE=1 prints every relative error that `assertClose` checks.
let verbose = ProcessInfo.processInfo.environment["SPIKELOC_TEST_VERBOSE"] != nil

/// Norm-based relative error max|a - b| / max|b| (max|a - b| when b is all zero).
func relativeError<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(_ a: [A], _ b: [B]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
    var diff = 0.0, scale = 0.0
    for i in 0..<a.count {
        let x = Double(a[i]), y = Double(b[i])
        if !(x.isFinite) { return .infinity }
        diff = Swift.max(diff, Swift.abs(x - y))
        scale = Swift.max(scale, Swift.abs(y))
    }
    return scale > 0 ? diff / scale : diff
}

func assertClose<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(
    _ actual: [A], _ expected: [B], relative tolerance: Double, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(what): element count", file: file, line: line)
    guard actual.count == expected.count else { return }
    XCTAssertFalse(expected.isEmpty, "\(what): nothing to compare", file: file, line: line)
    let err = relativeError(actual, expected)
    if verbose { print(String(format: "relative error %.3e (tolerance %.0e): ", err, tolerance) + what) }
    XCTAssertLessThanOrEqual(err, tolerance, "\(what): relative error \(err) > \(tolerance)", file: file, line: line)
}

/// Bitwise equality of float arrays (distinguishes -0 and +0, compares NaN payloads).
func bitPatterns(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

/// The C string of the last error of this thread.
func lastError() -> String { String(cString: spk_last_error()) }

/// Asserts a call's status and that spk_last_error() names `fragment`.
func expectStatus(_ status: Int32, _ expected: Int32, naming fragment: String, _ what: String,
                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(status, expected, "\(what): status (message '\(lastError())')", file: file, line: line)
    XCTAssertTrue(lastError().contains(fragment), "\(what): '\(lastError())' does not name '\(fragment)'",
                  file: file, line: line)
}
