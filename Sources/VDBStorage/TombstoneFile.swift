public import SystemPackage
public import VDBCore
public import VDBKernels

/// What a flush records about a shard's published segments that the segments themselves cannot
/// say, being immutable: which of their rows are dead (deleted or replaced) and which documents
/// they list no longer exist.
///
/// Stored as `shards/<n>/tombstones-<epoch>.bin`, format 1, little-endian:
///
/// | size | field |
/// |-----:|-------|
/// | 8 | magic `VDBTOMB\n` |
/// | 4 | format version (1) |
/// | 4 | segment count s |
/// | per segment | segment id (u32), row count n (u32), ⌈n/64⌉ u64 words of dead-row bits |
/// | 8 | deleted document count d |
/// | 16·d | document ids (low word, then high word) |
/// | 4 | CRC32C of everything before |
public struct ShardTombstones: Sendable, Hashable {
    /// Dead rows per segment id.
    public var deadRows: [UInt32: RowSet]
    public var deletedDocuments: Set<DocumentID>

    public init(deadRows: [UInt32: RowSet] = [:], deletedDocuments: Set<DocumentID> = []) {
        self.deadRows = deadRows
        self.deletedDocuments = deletedDocuments
    }

    static let magic: [UInt8] = Array("VDBTOMB\n".utf8)
    static let formatVersion: UInt32 = 1

    func encoded() -> [UInt8] {
        var out = Self.magic
        out.appendLittleEndian(Self.formatVersion)
        out.appendLittleEndian(UInt32(deadRows.count))
        for id in deadRows.keys.sorted() {
            let set = deadRows[id]!
            out.appendLittleEndian(id)
            out.appendLittleEndian(UInt32(set.capacity))
            for word in set.words { out.appendLittleEndian(word) }
        }
        out.appendLittleEndian(UInt64(deletedDocuments.count))
        for document in deletedDocuments.sorted() { out.append((document.high, document.low)) }
        out.appendLittleEndian(CRC32C.checksum(out))
        return out
    }

    /// Writes the file durably.
    public func write(to path: FilePath) throws(StorageError) {
        try DurableFile.write(encoded(), to: path)
    }

    /// Reads and checks a tombstone file.
    public static func read(_ path: FilePath) throws(StorageError) -> ShardTombstones {
        let bytes = try readWholeFile(path)
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "tombstone file \(path): \(what)") }
        guard bytes.count >= 28, Array(bytes[0..<8]) == magic else { throw bad("bad header") }
        return try bytes.withUnsafeBufferPointer { (typed) throws(StorageError) -> ShardTombstones in
            let raw = UnsafeRawBufferPointer(typed)
            let stored: UInt32 = raw.loadLittleEndian(at: bytes.count - 4)
            guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<bytes.count - 4])) else {
                throw bad("checksum mismatch")
            }
            guard raw.loadLittleEndian(at: 8, as: UInt32.self) == formatVersion else {
                throw StorageError(.versionMismatch, "tombstone file \(path): unknown format version")
            }
            var offset = 16
            var result = ShardTombstones()
            for _ in 0..<Int(raw.loadLittleEndian(at: 12, as: UInt32.self)) {
                guard offset + 8 <= bytes.count - 4 else { throw bad("truncated") }
                let id: UInt32 = raw.loadLittleEndian(at: offset)
                let rows = Int(raw.loadLittleEndian(at: offset + 4, as: UInt32.self))
                offset += 8
                var set = RowSet(capacity: rows)
                guard offset + set.words.count * 8 <= bytes.count - 4 else { throw bad("truncated") }
                for w in 0..<set.words.count { set.words[w] = raw.loadLittleEndian(at: offset + 8 * w) }
                offset += set.words.count * 8
                result.deadRows[id] = set
            }
            guard offset + 8 <= bytes.count - 4 else { throw bad("truncated") }
            let documents = Int(raw.loadLittleEndian(at: offset, as: UInt64.self))
            offset += 8
            guard offset + 16 * documents == bytes.count - 4 else { throw bad("length does not match its counts") }
            for i in 0..<documents {
                result.deletedDocuments.insert(DocumentID(
                    high: raw.loadLittleEndian(at: offset + 16 * i + 8), low: raw.loadLittleEndian(at: offset + 16 * i)))
            }
            return result
        }
    }
}
