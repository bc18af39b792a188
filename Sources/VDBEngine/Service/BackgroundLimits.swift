import CVDBKernels
import Foundation
public import VDBCore
public import VDBStorage

/// How much of the machine the server's background work — compactions, index jobs, the index
/// builds flushes call for — may take from requests: a few threads at a lower scheduling
/// priority, and paced writes. Searches keep their latency while it runs; the work takes longer.
public struct BackgroundLimits: Sendable {
    /// Build threads per job. The first is the job's own, niced; more come from Dispatch's
    /// pool at normal priority, so the default is one.
    public var threads: Int
    /// The `nice` increment of the job's threads (0 ... 19): under contention the kernel gives
    /// request threads the cores first.
    public var niceness: Int32
    /// Shared by every job's segment writes; nil writes unpaced.
    public var throttle: WriteThrottle?

    public init(threads: Int = 1, niceness: Int32 = 10, writeBytesPerSecond: Int? = 64 << 20) {
        self.threads = max(1, threads)
        self.niceness = min(19, max(0, niceness))
        throttle = writeBytesPerSecond.map { WriteThrottle(bytesPerSecond: $0) }
    }

    /// No limits: every core at normal priority, writes unpaced (offline tools, tests).
    public static let none = BackgroundLimits(threads: ProcessorCount.active, niceness: 0, writeBytesPerSecond: nil)

    /// Runs CPU-heavy synchronous work on a thread of its own, at this priority, and awaits it,
    /// so it neither blocks nor starves the cooperative pool that serves requests.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let niceness = self.niceness
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                if niceness > 0 { lowerCurrentThreadPriority(by: niceness) }
                continuation.resume(with: Result { try work() })
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// Raises the calling thread's `nice` value; failure only leaves the priority as it was.
func lowerCurrentThreadPriority(by increment: Int32) {
    _ = vdb_thread_lower_priority(increment)
}

/// The scheduling priority (`nice`) of the calling thread, for tests.
func currentThreadNiceness() -> Int32 { vdb_thread_niceness() }
