#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemPackage

/// The system calls swift-system does not wrap, in its shape: Swift names, `Errno` on failure,
/// `retryOnInterrupt` where the call can be interrupted.
extension FileDescriptor {
    /// `fsync(2)`: data and metadata reach stable storage.
    public func synchronize(retryOnInterrupt: Bool = true) throws(Errno) {
        try retrying(retryOnInterrupt) { fsync(rawValue) }
    }

    /// `fdatasync(2)`: data reaches stable storage; metadata only as far as reading it back needs.
    public func synchronizeData(retryOnInterrupt: Bool = true) throws(Errno) {
        try retrying(retryOnInterrupt) { fdatasync(rawValue) }
    }

    /// The file's size in bytes (`fstat(2)`).
    public func fileSize() throws(Errno) -> Int {
        var info = Glibc.stat()
        guard Glibc.fstat(rawValue, &info) == 0 else { throw Errno(rawValue: errno) }
        return Int(info.st_size)
    }

    /// Sets the file's size (`ftruncate(2)`).
    public func resize(to size: Int, retryOnInterrupt: Bool = true) throws(Errno) {
        try retrying(retryOnInterrupt) { ftruncate(rawValue, off_t(size)) }
    }

    /// Maps `length` bytes of the file read-only and shared (`mmap(2)`).
    /// The caller owns the mapping and must `munmap` it; ``MappedFile`` does.
    public func mapReadOnly(length: Int) throws(Errno) -> UnsafeRawBufferPointer {
        guard length > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let address = mmap(nil, length, PROT_READ, MAP_SHARED, rawValue, 0)
        guard let address, address != MAP_FAILED else { throw Errno(rawValue: errno) }
        return UnsafeRawBufferPointer(start: address, count: length)
    }

    private func retrying(_ retry: Bool, _ body: () -> CInt) throws(Errno) {
        while true {
            if body() == 0 { return }
            let e = Errno(rawValue: errno)
            if retry && e == .interrupted { continue }
            throw e
        }
    }
}

/// Renames `source` to `destination` atomically, replacing it (`rename(2)`).
public func renameFile(_ source: FilePath, to destination: FilePath) throws(Errno) {
    let result = source.withPlatformString { s in destination.withPlatformString { d in rename(s, d) } }
    guard result == 0 else { throw Errno(rawValue: errno) }
}

/// Removes a file (`unlink(2)`); a file that is already gone is not an error.
public func removeFileIfPresent(_ path: FilePath) throws(Errno) {
    let result = path.withPlatformString { unlink($0) }
    guard result == 0 || errno == ENOENT else { throw Errno(rawValue: errno) }
}

/// Creates a directory and its missing parents (`mkdir -p`).
public func createDirectories(_ path: FilePath) throws(Errno) {
    // The usual case is a new leaf under a directory that exists: one mkdir. Only when the
    // parent is missing too is it created first (walking every component from the root for
    // each of a library's 1,024 shards made creating the library take seconds).
    let result = path.withPlatformString { mkdir($0, 0o755) }
    if result == 0 || errno == EEXIST { return }
    let failure = errno
    var parent = path
    guard failure == ENOENT, parent.removeLastComponent(), !parent.isEmpty else { throw Errno(rawValue: failure) }
    try createDirectories(parent)
    let again = path.withPlatformString { mkdir($0, 0o755) }
    guard again == 0 || errno == EEXIST else { throw Errno(rawValue: errno) }
}

/// Whether something exists at `path`.
public func fileExists(_ path: FilePath) -> Bool {
    path.withPlatformString { access($0, F_OK) } == 0
}
