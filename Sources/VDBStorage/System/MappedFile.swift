public import VDBCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemPackage

/// A whole file mapped read-only into memory.
///
/// `@unchecked Sendable` is safe: the mapping is `PROT_READ`, never written through, and lives
/// until `deinit`, so any thread may read it while a reference is held. Files we map are
/// immutable by construction (written under a temporary name, then renamed into place).
public final class MappedFile: @unchecked Sendable {
    public let path: FilePath
    public let bytes: UnsafeRawBufferPointer

    /// Opens and maps `path`.
    public init(path: FilePath) throws(StorageError) {
        self.path = path
        let fd = try FileDescriptor.openForReading(path)
        defer { try? fd.close() }
        do {
            let size = try fd.fileSize()
            bytes = try fd.mapReadOnly(length: size)
        } catch {
            throw StorageError(.io, "cannot map \(path)", cause: error)
        }
    }

    /// Bytes of `offset ..< offset + length` whose pages are in memory now (mincore(2)); pages
    /// shared with a neighbouring range count for both. 0 when the kernel cannot say.
    public func residentBytes(offset: Int, length: Int) -> Int {
        guard length > 0, offset >= 0, offset < bytes.count, let base = bytes.baseAddress else { return 0 }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min(bytes.count, offset + length)
        var pages = [UInt8](repeating: 0, count: (end - start + page - 1) / page)
        guard mincore(UnsafeMutableRawPointer(mutating: base + start), end - start, &pages) == 0 else { return 0 }
        return min(end - offset, pages.reduce(0) { $0 + Int($1 & 1) } * page)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
