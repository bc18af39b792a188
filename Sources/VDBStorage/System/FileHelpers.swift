public import SystemPackage
public import VDBCore

extension FileDescriptor {
    /// Opens `path` read-only, with a missing file as `.notFound` and other failures as `.io`.
    package static func openForReading(_ path: FilePath) throws(StorageError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch Errno.noSuchFileOrDirectory {
            throw StorageError(.notFound, "\(path) does not exist")
        } catch {
            throw StorageError(.io, "cannot open \(path)", cause: error)
        }
    }
}

/// Reads a whole (small) file.
package func readWholeFile(_ path: FilePath) throws(StorageError) -> [UInt8] {
    let fd = try FileDescriptor.openForReading(path)
    defer { try? fd.close() }
    do {
        // Read to end of file rather than trusting the size: /proc files report 0.
        var bytes = [UInt8](repeating: 0, count: max(4096, try fd.fileSize() + 1))
        var done = 0
        while true {
            if done == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
            let n = try bytes.withUnsafeMutableBytes { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[done...])) }
            if n == 0 { break }
            done += n
        }
        return Array(bytes[0..<done])
    } catch {
        throw StorageError(.io, "cannot read \(path)", cause: error)
    }
}

package func zeroPadded(_ value: UInt64, _ width: Int) -> String {
    let s = String(value)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}
