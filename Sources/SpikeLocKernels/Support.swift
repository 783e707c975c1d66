// Shared plumbing of the kernels: errors, thread counts, the deterministic parallel loop,
// scratch memory and small SIMD helpers.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Width of the SIMD vectors the kernels use (8 float32 lanes = one AVX register).
public typealias Vec = SIMD8<Float>
@usableFromInline let lanes = 8

// MARK: - the CPU variant of this build (setup.py builds one library per variant)

#if SPIKELOC_AVX512
/// The build variant, reported by spk_kernel_variant.
let buildVariant: StaticString = "avx512"
#elseif SPIKELOC_BASELINE
let buildVariant: StaticString = "baseline"
#elseif arch(x86_64)
let buildVariant: StaticString = "avx2"
#else
let buildVariant: StaticString = "generic"
#endif

#if SPIKELOC_BASELINE
// The generic x86-64 target has no FMA instruction, so the standard library's fused
// `addingProduct` becomes one scalar `fmaf` call per lane (~100x slower). In the baseline build
// these overloads (more specific than the standard library's, so they win overload resolution
// everywhere in the kernels) compute an unfused a * b + c instead: results differ from the FMA
// builds in the last bit of some products, well inside the reference tolerance.
extension SIMD8 where Scalar == Float {
    @inline(__always) func addingProduct(_ a: Self, _ b: Self) -> Self { self + a * b }
    @inline(__always) func addingProduct(_ a: Float, _ b: Self) -> Self { self + a * b }
    @inline(__always) func addingProduct(_ a: Self, _ b: Float) -> Self { self + a * b }
}
#endif

/// A kernel failure: a status code of the C ABI and a message naming the argument.
public struct KernelError: Error, CustomStringConvertible {
    public enum Kind: Int32 { case value = -1, type = -2, memory = -3 }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    static func value(_ message: String) -> KernelError { KernelError(.value, message) }
    static func null(_ name: String) -> KernelError { KernelError(.type, "\(name) must not be NULL") }
    static func memory(_ message: String) -> KernelError { KernelError(.memory, message) }
}

// MARK: - argument checks (used by the typed API and the C ABI alike)

@inline(__always) func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw KernelError.value(message()) }
}

func requirePositiveFinite(_ x: Double, _ name: String) throws {
    try require(x.isFinite && x > 0, "\(name) must be a positive finite number, got \(x)")
}

func requireCount(_ n: Int, _ name: String, min: Int = 1, max: Int = Int.max) throws {
    try require(n >= min && n <= max, "\(name) must be in [\(min), \(max)], got \(n)")
}

/// Product of sizes, failing (instead of trapping) on overflow.
func checkedProduct(_ factors: Int..., what: String) throws -> Int {
    var p = 1
    for f in factors {
        let (r, o) = p.multipliedReportingOverflow(by: f)
        if o || f < 0 { throw KernelError.memory("\(what): size overflows") }
        p = r
    }
    return p
}

/// Largest element count any single scratch allocation may have (2^40 bytes).
let maxScratchBytes = 1 << 40

// MARK: - scratch memory

/// Keeps freed scratch blocks for reuse by later calls. Large blocks come from mmap, and
/// unmapping them after every call costs page faults on the next call and, with worker threads
/// on other CPUs, TLB-shootdown interrupts (very expensive in a virtual machine): without the
/// pool the gradient kernels ran slower on two threads than on one. The pool holds at most
/// `limit` bytes; blocks are matched by exact size, which repeats from call to call.
final class ScratchPool {
    static let shared = ScratchPool(limit: 1 << 30)
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var blocks: [Int: [UnsafeMutableRawPointer]] = [:]
    private var pooledBytes = 0
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    /// A 64-byte aligned block of `bytes` bytes, or nil if memory is exhausted.
    func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
        pthread_mutex_lock(lock)
        if let block = blocks[bytes]?.popLast() {
            pooledBytes -= bytes
            pthread_mutex_unlock(lock)
            return block
        }
        pthread_mutex_unlock(lock)
        // 64-byte alignment: rows whose stride is a multiple of 8 floats then never split a
        // 32-byte vector load across two cache lines
        var raw: UnsafeMutableRawPointer?
        return posix_memalign(&raw, 64, bytes) == 0 ? raw : nil
    }

    func give(_ block: UnsafeMutableRawPointer, _ bytes: Int) {
        pthread_mutex_lock(lock)
        if pooledBytes + bytes <= limit {
            blocks[bytes, default: []].append(block)
            pooledBytes += bytes
            pthread_mutex_unlock(lock)
        } else {
            pthread_mutex_unlock(lock)
            free(block)
        }
    }
}

/// Aligned scratch buffer from the pool; allocation failure is reported as an error, never a trap.
final class Scratch<T> {
    let pointer: UnsafeMutablePointer<T>
    let count: Int
    private let bytes: Int
    init(_ count: Int, what: String) throws {
        bytes = try checkedProduct(Swift.max(count, 1), MemoryLayout<T>.stride, what: what)
        guard bytes <= maxScratchBytes, let raw = ScratchPool.shared.take(bytes) else {
            throw KernelError.memory("\(what): cannot allocate \(bytes) bytes")
        }
        self.pointer = raw.bindMemory(to: T.self, capacity: Swift.max(count, 1))
        self.count = count
    }
    deinit { ScratchPool.shared.give(UnsafeMutableRawPointer(pointer), bytes) }
    func zero() where T: Numeric { pointer.update(repeating: 0, count: count) }
}

// MARK: - threads

/// Number of online CPUs.
public func onlineCPUs() -> Int {
    let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    return n > 0 ? Int(n) : 1
}

/// Resolves a requested thread count (0 = one per online CPU).
func resolveThreads(_ requested: Int) throws -> Int {
    try require(requested >= 0 && requested <= 4096, "threads must be in [0, 4096], got \(requested)")
    return requested == 0 ? onlineCPUs() : requested
}

/// Runs `body` with subnormal floats flushed to zero on this thread (MXCSR flush-to-zero and
/// denormals-are-zero, restored afterwards), as TensorFlow's ScopedFlushDenormal does. Every
/// parallel loop of the kernels runs its workers this way (`parallelFor`). Without it, a
/// membrane or an adjoint that decays for a few hundred steps, or a sigmoid surrogate far
/// below threshold (~1e-38) times an adjoint, is subnormal, and every vector instruction that
/// touches one takes a microcode assist: an epoch of a trained tutorial network ran ~2x
/// slower, a recurrent one 3x (benchmarks/RESULTS.md). Results move by less than the smallest
/// normal float (1.2e-38); all threads compute in the same mode, so thread counts stay
/// bit-identical. Other CPUs than x86-64: IEEE subnormals (slower, same results to tolerance).
@inline(__always)
func withoutSubnormals<R>(_ body: () throws -> R) rethrows -> R {
    #if arch(x86_64) && canImport(Glibc)
    var saved = fenv_t()
    fegetenv(&saved)
    var env = saved
    env.__mxcsr |= 0x8040  // FTZ (bit 15) and DAZ (bit 6)
    fesetenv(&env)
    defer { fesetenv(&saved) }
    #endif
    return try body()
}

/// Runs `body(task)` for task in 0..<count on `threads` workers (`WorkerPool`: the calling
/// thread and helper threads), with subnormals flushed to zero; `body` must write disjoint
/// outputs. Tasks are assigned round-robin; results do not depend on the assignment because
/// every reduction over tasks is done afterwards in task order.
func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    let workers = Swift.min(threads, count)
    if workers <= 1 {
        withoutSubnormals { for task in 0..<count { body(task) } }
        return
    }
    WorkerPool.shared.run(workers) { worker in
        withoutSubnormals {
            var task = worker
            while task < count {
                body(task)
                task += workers
            }
        }
    }
}

/// Like `parallelFor`, but each worker first gets a private context (scratch memory) from
/// `makeContext`, so that no allocation happens per task. Errors from `makeContext` are rethrown.
func parallelFor<Context>(
    _ count: Int, threads: Int, makeContext: () throws -> Context, _ body: (inout Context, Int) -> Void
) throws {
    let workers = Swift.max(1, Swift.min(threads, count))
    var contexts: [Context] = []
    contexts.reserveCapacity(workers)
    for _ in 0..<workers { contexts.append(try makeContext()) }
    if workers == 1 {
        withoutSubnormals { for task in 0..<count { body(&contexts[0], task) } }
        return
    }
    contexts.withUnsafeMutableBufferPointer { ctx in
        let base = ctx.baseAddress!
        WorkerPool.shared.run(workers) { worker in
            withoutSubnormals {
                var task = worker
                while task < count {
                    body(&base[worker], task)
                    task += workers
                }
            }
        }
    }
}

/// Flags that parallel tasks raise when they meet bad input; checked after all tasks ended.
final class TaskFailures {
    private let flags: Scratch<UInt8>
    init(_ tasks: Int) throws {
        flags = try Scratch<UInt8>(tasks, what: "task flags")
        flags.zero()
    }
    func fail(_ task: Int) { flags.pointer[task] = 1 }
    /// The tasks that failed, in order.
    var failed: [Int] { (0..<flags.count).filter { flags.pointer[$0] != 0 } }
}

// MARK: - SIMD helpers

@inline(__always) func roundUp(_ n: Int, _ multiple: Int) -> Int { (n + multiple - 1) / multiple * multiple }

@inline(__always) func loadVec(_ p: UnsafePointer<Float>) -> Vec {
    UnsafeRawPointer(p).loadUnaligned(as: Vec.self)
}

/// 16 float32 lanes (one AVX-512 register), for the avx512 build's event sums.
typealias Wide = SIMD16<Float>
@inline(__always) func loadWide(_ p: UnsafePointer<Float>) -> Wide {
    UnsafeRawPointer(p).loadUnaligned(as: Wide.self)
}
@inline(__always) func storeWide(_ v: Wide, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Wide.self)
}

@inline(__always) func storeVec(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
}

/// exp(x) for x <= 0 (inputs below -87.3 give 0), about 2 ulp: Cody-Waite range reduction
/// x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r and 2^n built in the exponent bits.
/// Rounding to an integer uses the 1.5 * 2^23 trick: adding it leaves round(y) in the low
/// mantissa bits (no float-to-int conversion, which the generic SIMD API does lane by lane).
@inline(__always) func expNonPositive(_ x: Vec) -> Vec {
    let magic: Float = 12_582_912  // 1.5 * 2^23
    let clamped = x.replacing(with: -87.3, where: x .< -87.3)
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    let r = clamped.addingProduct(n, -0.693_145_751_953_125).addingProduct(n, -1.428_606_765_330_187_045e-6)
    // Horner with fused multiply-adds (addingProduct is a single vfmadd with -target-cpu haswell)
    var p = Vec(repeating: 1.0 / 120).addingProduct(r, 1.0 / 720)
    p = Vec(repeating: 1.0 / 24).addingProduct(p, r)
    p = Vec(repeating: 1.0 / 6).addingProduct(p, r)
    p = Vec(repeating: 0.5).addingProduct(p, r)
    p = Vec(repeating: 1).addingProduct(p, r)
    p = Vec(repeating: 1).addingProduct(p, r)
    // integer n sits in the low bits of `shifted`: (n + 127) << 23 is the float 2^n
    let bits = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    let scale = unsafeBitCast(bits, to: Vec.self)
    return (p * scale).replacing(with: 0, where: x .< -87.3)
}

/// The sigmoid surrogate derivative beta sig(beta x) (1 - sig(beta x)), evaluated as
/// beta e / (1 + e)^2 with e = exp(-beta |x|) so that it never overflows.
@inline(__always) func sigmoidSurrogate(_ x: Vec, beta: Float) -> Vec {
    let e = expNonPositive(-beta * abs(x))
    let d = 1 + e
    return beta * e / (d * d)
}

@inline(__always) func abs(_ v: Vec) -> Vec {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Vec.self)
}
