// The kernels' worker threads: persistent pthreads, woken for each parallel loop.
//
// Why not Dispatch: `DispatchQueue.concurrentPerform` retries forever (in
// `_dispatch_temporary_resource_shortage`) when it cannot create a worker thread, for example
// near an address-space limit, and the kernel call then hangs, deaf to Ctrl-C. Here a thread
// that cannot be started is simply absent: a loop is split into `slots` (the `workers` of
// `parallelFor`), helpers claim slots as they come, and the calling thread runs every slot
// that no helper has claimed. A loop therefore always completes, on fewer threads if need be,
// with the same results (they never depend on which thread runs a slot, or on how many do).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One parallel loop: `body(slot)` for slot in 0..<slots. Lives on the caller's stack while
/// the loop runs; the pool refers to it by pointer only, so no other thread retains `body`.
struct PoolJob {
    let slots: Int
    let body: (Int) -> Void
    /// Slots handed out so far (slot 0 is the caller's); guarded by the pool's lock.
    var claimed = 1
    /// Helpers inside `body` right now; guarded by the pool's lock.
    var running = 0
}

/// Helper threads shared by all kernel calls of the process. At most `maxHelpers` (online
/// CPUs - 1: the calling thread is the other one) are started, lazily, when a loop first asks
/// for them; they then sleep on a condition variable between loops. Several threads may run
/// loops at once: each helper takes the oldest loop with an unclaimed slot.
final class WorkerPool {
    static let shared = WorkerPool()

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Signalled when a loop with unclaimed slots is posted (helpers wait on it).
    private let work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Broadcast when a helper leaves a loop whose slots are all claimed (callers wait on it).
    private let left = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Loops with unclaimed slots, oldest first.
    private var open: [UnsafeMutablePointer<PoolJob>] = []
    private var helpers = 0
    private var idle = 0
    let maxHelpers: Int

    private init() {
        maxHelpers = Swift.max(onlineCPUs() - 1, 0)
        initializeLocks()
        // A child of fork() has none of the helpers (only the forking thread survives) and may
        // inherit the lock held by a thread that no longer exists: start afresh there.
        pthread_atfork(nil, nil) { WorkerPool.shared.forgetHelpersAfterFork() }
    }

    private func initializeLocks() {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(work, nil)
        pthread_cond_init(left, nil)
    }

    private func forgetHelpersAfterFork() {
        initializeLocks()
        open = []
        helpers = 0
        idle = 0
    }

    /// Runs `body(slot)` for slot in 0..<slots, on up to `slots` threads (the caller and
    /// helpers); returns when every call has returned. `body` must be safe to run concurrently
    /// for different slots.
    func run(_ slots: Int, _ body: (Int) -> Void) {
        if slots <= 1 {
            if slots == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = PoolJob(slots: slots, body: body)
            withUnsafeMutablePointer(to: &job) { job in
                pthread_mutex_lock(lock)
                open.append(job)
                let wake = callHelpers(slots - 1)
                pthread_mutex_unlock(lock)
                // signalled after unlocking, so that a woken helper does not block on the lock
                for _ in 0..<wake { pthread_cond_signal(work) }
                job.pointee.body(0)
                pthread_mutex_lock(lock)
                while let slot = claim(job) {  // slots no helper has taken (yet)
                    pthread_mutex_unlock(lock)
                    job.pointee.body(slot)
                    pthread_mutex_lock(lock)
                }
                while job.pointee.running > 0 { pthread_cond_wait(left, lock) }
                pthread_mutex_unlock(lock)
            }
        }
    }

    /// The next unclaimed slot of `job`, or nil; the job leaves `open` with its last slot.
    /// Call with the lock held.
    private func claim(_ job: UnsafeMutablePointer<PoolJob>) -> Int? {
        guard job.pointee.claimed < job.pointee.slots else { return nil }
        let slot = job.pointee.claimed
        job.pointee.claimed += 1
        if job.pointee.claimed == job.pointee.slots, let i = open.firstIndex(of: job) {
            open.remove(at: i)
        }
        return slot
    }

    /// Starts helpers for `wanted` slots if there are too few idle ones; returns how many idle
    /// helpers to wake. A helper that cannot be started (no memory for its stack, a thread
    /// limit) is not an error: the caller runs its slots. Call with the lock held.
    private func callHelpers(_ wanted: Int) -> Int {
        var missing = Swift.min(wanted, maxHelpers) - idle
        while missing > 0 && helpers < maxHelpers && startHelper() {
            helpers += 1
            missing -= 1
        }
        return Swift.min(idle, wanted)
    }

    /// Starts one detached helper with every signal blocked (signals go to the caller's
    /// threads, where Python handles Ctrl-C). False if the thread could not be created.
    private func startHelper() -> Bool {
        var all = sigset_t(), saved = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
#if canImport(Darwin)
        var thread: pthread_t? = nil
#else
        var thread = pthread_t()
#endif
        guard pthread_create(&thread, nil, { _ in WorkerPool.shared.serve() }, nil) == 0 else {
            return false
        }
#if canImport(Darwin)
        pthread_detach(thread!)
#else
        pthread_detach(thread)
#endif
        return true
    }

    /// A helper's life: claim a slot of the oldest open loop and run it, or sleep until a loop
    /// is posted.
    private func serve() -> Never {
        pthread_mutex_lock(lock)
        while true {
            guard let job = open.first, let slot = claim(job) else {
                idle += 1
                pthread_cond_wait(work, lock)
                idle -= 1
                continue
            }
            job.pointee.running += 1
            pthread_mutex_unlock(lock)
            job.pointee.body(slot)
            pthread_mutex_lock(lock)
            job.pointee.running -= 1
            if job.pointee.running == 0 && job.pointee.claimed == job.pointee.slots {
                // the job is done: its caller may return (and `job` dangle) once we unlock
                pthread_mutex_unlock(lock)
                pthread_cond_broadcast(left)
                pthread_mutex_lock(lock)
            }
        }
    }
}
