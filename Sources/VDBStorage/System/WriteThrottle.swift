#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Paces background file writes (compaction, index builds in the server) so they leave the
/// disk to the WAL's fsyncs and the page cache to the mapped segments that searches read.
///
/// A token bucket: writers ask for bytes with ``admit(_:)`` and sleep until the rate allows
/// them. One throttle may be shared by several writers; the rate is their total.
public final class WriteThrottle: Sendable {
    /// Bytes a second, over all writers sharing this throttle.
    public let bytesPerSecond: Int
    /// A throttled writer pushes its dirty pages to the disk every this many bytes, so the
    /// kernel never holds a large writeback that would stall a WAL `fdatasync` behind it.
    public let writebackInterval: Int
    /// When the next byte may be written, in `CLOCK_MONOTONIC` nanoseconds.
    private let nextSlot = Mutex<UInt64>(0)

    public init(bytesPerSecond: Int, writebackInterval: Int = 8 << 20) {
        precondition(bytesPerSecond > 0, "a throttle needs a positive rate")
        self.bytesPerSecond = bytesPerSecond
        self.writebackInterval = writebackInterval
    }

    /// Waits until `bytes` more may be written. Short bursts (up to a tenth of a second's
    /// worth) pass at once; past that the caller sleeps for as long as the rate asks.
    public func admit(_ bytes: Int) {
        let now = Self.monotonicNanoseconds()
        let cost = UInt64(Double(bytes) / Double(bytesPerSecond) * 1e9)
        let burst = UInt64(100_000_000)
        let wait: UInt64 = nextSlot.withLock { next in
            let start = max(next, now &- min(now, burst))
            next = start + cost
            return next > now ? next - now : 0
        }
        if wait > 0 { Self.sleep(nanoseconds: wait) }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
