public import SystemPackage
public import VDBCore
#if canImport(Glibc)
import Glibc
#endif

/// An advisory `flock` on a file, held until ``unlock()`` or until the process dies, so a lock
/// left by a crashed process is never stale. Locks taken through different opens of the same
/// file exclude each other even within one process.
public final class FileLock {
    public enum Mode: Sendable {
        /// Many holders at once (drafts of new versions).
        case shared
        /// One holder (a publish, an orphan collection).
        case exclusive
    }

    public let path: FilePath
    private var fd: CInt

    private init(path: FilePath, fd: CInt) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock, waiting for holders of a conflicting mode.
    public static func acquire(_ path: FilePath, _ mode: Mode) throws(StorageError) -> FileLock {
        let lock = try open(path)
        try lock.change(to: mode, wait: true)
        return lock
    }

    /// Takes the lock only if nobody holds a conflicting mode; nil otherwise.
    public static func tryAcquire(_ path: FilePath, _ mode: Mode) throws(StorageError) -> FileLock? {
        let lock = try open(path)
        do {
            try lock.change(to: mode, wait: false)
            return lock
        } catch where lock.lastErrno == EWOULDBLOCK {
            lock.unlock()
            return nil
        }
    }

    private var lastErrno: CInt = 0

    /// Converts a held lock to another mode (exclusive to shared never waits).
    public func change(to mode: Mode, wait: Bool) throws(StorageError) {
        let operation = (mode == .shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB)
        while flock(fd, operation) != 0 {
            if errno == EINTR { continue }
            lastErrno = errno
            throw StorageError(.io, "cannot lock \(path)", cause: Errno(rawValue: errno))
        }
    }

    /// Releases the lock (closing the descriptor releases it too).
    public func unlock() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { unlock() }

    private static func open(_ path: FilePath) throws(StorageError) -> FileLock {
        let fd = path.withPlatformString { Glibc.open($0, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw StorageError(.io, "cannot open \(path)", cause: Errno(rawValue: errno)) }
        return FileLock(path: path, fd: fd)
    }
}
