import Foundation

/// A value guarded by a `pthread` mutex (through `NSLock`).
///
/// We use this rather than `Synchronization.Mutex`: on Linux the latter is a futex lock that
/// ThreadSanitizer does not see, so every value it guards was reported as racing, and a
/// sanitizer run that cries wolf protects nothing.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only reached inside `withLock`, under `lock`.
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
