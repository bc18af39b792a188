public import SystemPackage
public import VDBCore

/// Publishing files so that a crash leaves either the old or the new content, never a mix:
/// write under a temporary name, `fsync`, `rename` over the target, `fsync` the directory.
public enum DurableFile {
    /// Writes `bytes` to `path` atomically and durably.
    public static func write(_ bytes: some Collection<UInt8>, to path: FilePath) throws(StorageError) {
        let temporary = temporaryPath(for: path)
        do {
            let fd = try FileDescriptor.open(
                temporary, .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            do {
                _ = try fd.writeAll(bytes)
                try fd.synchronize()
                try fd.close()
            } catch {
                try? fd.close()
                throw error
            }
            try renameFile(temporary, to: path)
        } catch {
            try? removeFileIfPresent(temporary)
            throw StorageError(.io, "cannot write \(path)", cause: error)
        }
        try synchronizeDirectory(path.removingLastComponent())
    }

    /// Renames a finished, already synchronised file into place and makes the rename durable.
    public static func publish(_ temporary: FilePath, as path: FilePath) throws(StorageError) {
        do {
            try renameFile(temporary, to: path)
        } catch {
            throw StorageError(.io, "cannot rename \(temporary) to \(path)", cause: error)
        }
        try synchronizeDirectory(path.removingLastComponent())
    }

    /// `fsync` on a directory, so that entries created or renamed in it survive a crash.
    public static func synchronizeDirectory(_ directory: FilePath) throws(StorageError) {
        let dir = directory.isEmpty ? FilePath(".") : directory
        do {
            let fd = try FileDescriptor.open(dir, .readOnly, options: [.directory, .closeOnExec])
            defer { try? fd.close() }
            try fd.synchronize()
        } catch {
            throw StorageError(.io, "cannot synchronize directory \(dir)", cause: error)
        }
    }

    /// The name a file is written under before it is published.
    public static func temporaryPath(for path: FilePath) -> FilePath {
        FilePath(path.string + ".tmp")
    }
}
