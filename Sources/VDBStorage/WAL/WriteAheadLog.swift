public import SystemPackage
public import VDBCore
public import VDBKernels

/// When an appended record counts as durable.
public enum FsyncPolicy: Sendable, Hashable, CustomStringConvertible {
    /// `fdatasync` after every append: each write pays one sync.
    case always
    /// Appends are written at once and synchronised together every `milliseconds`; a writer
    /// waits for the sync that covers its record (group commit).
    case groupCommit(milliseconds: Int)
    /// Never synchronised: survives a killed process (the page cache keeps it), not a power cut.
    case never

    public var description: String {
        switch self {
        case .always: "always"
        case .groupCommit(let ms): "group commit every \(ms) ms"
        case .never: "never"
        }
    }
}

/// A shard's write-ahead log: numbered records in files `wal/<first sequence>.log`.
///
/// File format 1 (little-endian). A 16-byte header — magic `VDBWAL\r\n`, format version (u32),
/// reserved (u32) — then records:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | payload length L |
/// | 4 | 8 | sequence number (consecutive across files) |
/// | 12 | L | payload (one transaction) |
/// | 12 + L | 4 | CRC32C of bytes 0 ..< 12 + L |
///
/// Recovery reads every file in order. A record that is cut short or fails its checksum with no
/// valid record after it is a torn tail — the write the crash interrupted, never acknowledged —
/// and is dropped (the file is truncated there). A bad record followed by valid ones is
/// corruption in the middle of the log, and recovery fails naming the file and offset.
public final class WriteAheadLog {
    public static let magic: [UInt8] = [0x56, 0x44, 0x42, 0x57, 0x41, 0x4C, 0x0D, 0x0A]
    public static let formatVersion: UInt32 = 1
    public static let headerSize = 16
    static let recordOverhead = 16
    /// Larger payloads are refused: no transaction is this big, so a length this large is damage.
    public static let maximumPayload = 256 << 20

    public let directory: FilePath
    public let policy: FsyncPolicy
    private var fd: FileDescriptor?
    private(set) var currentFile: FilePath?
    /// After `rotate()`, the next append starts a new file instead of continuing the newest.
    private var startNewFile = false
    /// The sequence number the next append gets.
    public private(set) var nextSequence: UInt64
    /// The highest sequence number known to be on stable storage.
    public private(set) var durableSequence: UInt64

    /// One record read back by recovery.
    public struct Record: Sendable, Hashable {
        public var sequence: UInt64
        public var payload: [UInt8]

        public init(sequence: UInt64, payload: [UInt8]) {
            self.sequence = sequence
            self.payload = payload
        }
    }

    /// What recovery found.
    public struct Recovery: Sendable {
        public var records: [Record]
        /// Torn tails dropped, as "file at offset" descriptions, for a warning in the log.
        public var droppedTails: [String]
    }

    /// Opens the log for appending after recovery: `nextSequence` continues from the last
    /// record recovered (or `after + 1` when there is none).
    public init(directory: FilePath, policy: FsyncPolicy, nextSequence: UInt64) throws(StorageError) {
        self.directory = directory
        self.policy = policy
        self.nextSequence = nextSequence
        durableSequence = nextSequence - 1
        do {
            try createDirectories(directory)
        } catch {
            throw StorageError(.io, "cannot create WAL directory \(directory)", cause: error)
        }
    }

    deinit { try? fd?.close() }

    /// The log files in `directory`, by first sequence number.
    public static func files(in directory: FilePath) -> [(first: UInt64, path: FilePath)] {
        guard let names = try? listDirectory(directory) else { return [] }
        return names.compactMap { name -> (UInt64, FilePath)? in
            guard name.hasSuffix(".log"), let first = UInt64(name.dropLast(4)) else { return nil }
            return (first, directory.appending(name))
        }.sorted { $0.0 < $1.0 }
    }

    /// Reads back every record with a sequence number above `after`, in order, truncating a torn
    /// tail in place so appends continue after the last good record.
    public static func recover(directory: FilePath, after: UInt64) throws(StorageError) -> Recovery {
        var records: [Record] = []
        var dropped: [String] = []
        var expected: UInt64? = nil
        let files = files(in: directory)
        for (index, file) in files.enumerated() {
            let bytes = try readWholeFile(file.path)
            let isLast = index == files.count - 1
            var offset = headerSize
            guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic else {
                if isLast && bytes.count < headerSize && Array(magic.prefix(bytes.count)) == bytes {
                    // Crashed while writing the header of a fresh file: nothing in it.
                    try truncate(file.path, at: 0)
                    try? removeFileIfPresent(file.path)
                    dropped.append("\(file.path) (incomplete header)")
                    continue
                }
                throw StorageError(.corruptSegment, "WAL file \(file.path): bad header at offset 0")
            }
            let version = bytes.withUnsafeBytes { $0.loadLittleEndian(at: 8, as: UInt32.self) }
            guard version == formatVersion else {
                throw StorageError(.versionMismatch, "WAL file \(file.path) has format version \(version); this build reads \(formatVersion)")
            }
            while offset < bytes.count {
                switch parseRecord(bytes, at: offset, expectedSequence: expected) {
                case .record(let record, let end):
                    expected = record.sequence + 1
                    if record.sequence > after { records.append(record) }
                    offset = end
                case .bad(let reason):
                    // Torn tail if nothing valid follows in this file and no later file exists.
                    let laterValid = hasValidRecord(bytes, after: offset, expectedSequence: expected)
                    if laterValid || !isLast {
                        throw StorageError(.corruptSegment, "WAL file \(file.path): \(reason) at offset \(offset), with valid records after it")
                    }
                    try truncate(file.path, at: offset)
                    dropped.append("\(file.path) at offset \(offset) (\(reason))")
                    offset = bytes.count
                }
            }
        }
        return Recovery(records: records, droppedTails: dropped)
    }

    /// Drops every record with a sequence number above `after` (a replica's tail its new leader
    /// never had): later files are removed, the file holding the cut is truncated at it. Run
    /// while no log is open for appending in `directory`.
    public static func discardRecords(directory: FilePath, after: UInt64) throws(StorageError) {
        for file in files(in: directory).reversed() {
            if file.first > after {
                do { try removeFileIfPresent(file.path) } catch { throw StorageError(.io, "cannot remove WAL file \(file.path)", cause: error) }
                continue
            }
            let bytes = try readWholeFile(file.path)
            var offset = headerSize
            while offset < bytes.count, case .record(let record, let end) = parseRecord(bytes, at: offset, expectedSequence: nil),
                  record.sequence <= after {
                offset = end
            }
            if offset < bytes.count { try truncate(file.path, at: offset) }
            break
        }
        try DurableFile.synchronizeDirectory(directory)
    }

    /// How many valid records with a sequence number above `after` the log holds, read
    /// without repairing anything (another process may be appending): what offline tools ask
    /// before replacing a version a server still has unflushed writes for. A torn tail counts
    /// as the end.
    public static func countRecords(directory: FilePath, after: UInt64) -> Int {
        var count = 0
        for file in files(in: directory) {
            guard let bytes = try? readWholeFile(file.path), bytes.count >= headerSize, Array(bytes[0..<8]) == magic else { continue }
            var offset = headerSize
            while offset < bytes.count, case .record(let record, let end) = parseRecord(bytes, at: offset, expectedSequence: nil) {
                if record.sequence > after { count += 1 }
                offset = end
            }
        }
        return count
    }

    private enum Parsed {
        case record(Record, end: Int)
        case bad(String)
    }

    private static func parseRecord(_ bytes: [UInt8], at offset: Int, expectedSequence: UInt64?) -> Parsed {
        guard bytes.count - offset >= recordOverhead else { return .bad("record cut short") }
        return bytes.withUnsafeBytes { raw -> Parsed in
            let length = Int(raw.loadLittleEndian(at: offset, as: UInt32.self))
            let sequence = raw.loadLittleEndian(at: offset + 4, as: UInt64.self)
            guard length <= maximumPayload else { return .bad("implausible record length \(length)") }
            let end = offset + 12 + length + 4
            guard end <= bytes.count else { return .bad("record cut short") }
            let stored = raw.loadLittleEndian(at: offset + 12 + length, as: UInt32.self)
            let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 12 + length]))
            guard stored == computed else { return .bad("checksum mismatch") }
            if let expectedSequence, sequence != expectedSequence {
                return .bad("sequence \(sequence) where \(expectedSequence) was expected")
            }
            return .record(Record(sequence: sequence, payload: Array(bytes[offset + 12..<offset + 12 + length])), end: end)
        }
    }

    /// Whether a valid record with the expected sequence starts anywhere after `offset`.
    private static func hasValidRecord(_ bytes: [UInt8], after offset: Int, expectedSequence: UInt64?) -> Bool {
        var probe = offset + 1
        while probe + recordOverhead <= bytes.count {
            if case .record(let record, _) = parseRecord(bytes, at: probe, expectedSequence: nil),
               expectedSequence == nil || record.sequence >= expectedSequence! {
                return true
            }
            probe += 1
        }
        return false
    }

    private static func truncate(_ path: FilePath, at offset: Int) throws(StorageError) {
        do {
            let fd = try FileDescriptor.open(path, .writeOnly, options: [.closeOnExec])
            defer { try? fd.close() }
            try fd.resize(to: offset)
            try fd.synchronize()
        } catch {
            throw StorageError(.io, "cannot truncate the torn tail of \(path)", cause: error)
        }
    }

    /// Appends one record (one transaction) and returns its sequence number. The record is
    /// durable when this returns under `.always`; under the other policies, when
    /// ``synchronize()`` has covered it.
    @discardableResult
    public func append(_ payload: [UInt8]) throws(StorageError) -> UInt64 {
        try Traces.span("vdb.wal.append") { (span) throws(StorageError) in
            span?.attributes["vdb.wal.bytes"] = payload.count
            return try appendRecord(payload)
        }
    }

    private func appendRecord(_ payload: [UInt8]) throws(StorageError) -> UInt64 {
        guard payload.count <= Self.maximumPayload else {
            throw StorageError(.invalidArgument, "a transaction of \(payload.count) bytes exceeds the WAL's \(Self.maximumPayload)-byte limit")
        }
        let started = ContinuousClock.now
        defer { WALMetrics.append.record(since: started) }
        let fd = try openForAppend()
        let sequence = nextSequence
        var record: [UInt8] = []
        record.reserveCapacity(payload.count + Self.recordOverhead)
        record.appendLittleEndian(UInt32(payload.count))
        record.appendLittleEndian(sequence)
        record.append(contentsOf: payload)
        record.appendLittleEndian(CRC32C.checksum(record))
        do {
            _ = try fd.writeAll(record)
        } catch {
            throw StorageError(.io, "cannot append to \(currentFile!)", cause: error)
        }
        nextSequence += 1
        if policy == .always { try synchronize() }
        return sequence
    }

    /// Makes every appended record durable.
    public func synchronize() throws(StorageError) {
        guard let fd, durableSequence < nextSequence - 1 else { return }
        try Traces.span("vdb.wal.fsync") { (span) throws(StorageError) in
            span?.attributes["vdb.wal.records"] = Int(nextSequence - 1 - durableSequence)
            try synchronizeData(fd)
        }
    }

    private func synchronizeData(_ fd: FileDescriptor) throws(StorageError) {
        let started = ContinuousClock.now
        defer { WALMetrics.fsync.record(since: started) }
        do {
            try fd.synchronizeData()
        } catch {
            throw StorageError(.io, "cannot synchronize \(currentFile!)", cause: error)
        }
        durableSequence = nextSequence - 1
    }

    /// Closes the current file; the next append starts a new one. Called after a flush, so
    /// files wholly covered by a published segment can be deleted.
    public func rotate() throws(StorageError) {
        try synchronize()
        try? fd?.close()
        fd = nil
        currentFile = nil
        startNewFile = true
    }

    /// Deletes log files whose records all have sequence numbers ≤ `sequence`.
    public func removeFiles(coveredThrough sequence: UInt64) {
        let files = Self.files(in: directory)
        for (i, file) in files.enumerated() where file.path != currentFile {
            let nextFirst = i + 1 < files.count ? files[i + 1].first : nextSequence
            if nextFirst - 1 <= sequence { try? removeFileIfPresent(file.path) }
        }
    }

    private func openForAppend() throws(StorageError) -> FileDescriptor {
        if let fd { return fd }
        // Continue the newest file if there is one; a fresh log starts a file at `nextSequence`.
        let existing = startNewFile ? nil : Self.files(in: directory).last
        let path = existing?.path ?? directory.appending(zeroPadded(nextSequence, 20) + ".log")
        do {
            let fd = try FileDescriptor.open(
                path, .writeOnly, options: [.create, .append, .closeOnExec], permissions: [.ownerReadWrite, .groupRead])
            if try fd.fileSize() == 0 {
                var header = Self.magic
                header.appendLittleEndian(Self.formatVersion)
                header.appendLittleEndian(UInt32(0))
                _ = try fd.writeAll(header)
                try fd.synchronize()
                try DurableFile.synchronizeDirectory(directory)
            }
            self.fd = fd
            currentFile = path
            return fd
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.io, "cannot open WAL file \(path)", cause: error)
        }
    }
}

/// The names in a directory.
func listDirectory(_ path: FilePath) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path.string)
}

import Foundation
