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
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch Errno.noSuchFileOrDirectory {
            throw StorageError(.notFound, "\(path) does not exist")
        } catch {
            throw StorageError(.io, "cannot open \(path)", cause: error)
        }
        defer { try? fd.close() }
        do {
            let size = try fd.fileSize()
            bytes = try fd.mapReadOnly(length: size)
        } catch {
            throw StorageError(.io, "cannot map \(path)", cause: error)
        }
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
