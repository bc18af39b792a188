/// A read view of the blob-list encoding (see ``SegmentFormat``).
struct BlobList: @unchecked Sendable {
    // @unchecked Sendable: views into a read-only mapping.
    let count: Int
    private let offsets: UnsafeRawBufferPointer
    private let data: UnsafeRawBufferPointer

    /// Validates the layout; nil when it is inconsistent.
    init?(_ section: UnsafeRawBufferPointer, expectedCount: Int) {
        guard section.count >= 8 else { return nil }
        let count = section.loadLittleEndian(at: 0, as: UInt64.self)
        guard count == UInt64(expectedCount), UInt64(section.count - 8) / 8 > count else { return nil }
        self.count = Int(count)
        let offsetsEnd = 8 + (self.count + 1) * 8
        offsets = UnsafeRawBufferPointer(rebasing: section[8..<offsetsEnd])
        data = UnsafeRawBufferPointer(rebasing: section[offsetsEnd...])
        var previous: UInt64 = 0
        for i in 0...self.count {
            let o = offsets.loadLittleEndian(at: i * 8, as: UInt64.self)
            guard o >= previous, o <= UInt64(data.count) else { return nil }
            previous = o
        }
        guard previous == UInt64(data.count), offsets.loadLittleEndian(at: 0, as: UInt64.self) == 0 else { return nil }
    }

    subscript(index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < count, "blob index out of range")
        let start = Int(offsets.loadLittleEndian(at: index * 8, as: UInt64.self))
        let end = Int(offsets.loadLittleEndian(at: index * 8 + 8, as: UInt64.self))
        return UnsafeRawBufferPointer(rebasing: data[start..<end])
    }
}

/// Builds the blob-list encoding (see ``SegmentFormat``).
struct BlobListBuilder {
    private var offsets: [UInt64] = [0]
    private var bytes: [UInt8] = []

    mutating func append(_ blob: [UInt8]) {
        bytes.append(contentsOf: blob)
        offsets.append(UInt64(bytes.count))
    }

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + offsets.count * 8 + bytes.count)
        out.appendLittleEndian(UInt64(offsets.count - 1))
        for o in offsets { out.appendLittleEndian(o) }
        out.append(contentsOf: bytes)
        return out
    }
}

/// A blob-list section as stored: plain, or compressed in blocks.
enum BlobSection: Sendable {
    case plain(BlobList)
    case compressed(CompressedBlobList)

    /// Views a blob-list section stored with `encoding`; nil when its layout is inconsistent.
    init?(_ section: UnsafeRawBufferPointer, encoding: SegmentFormat.Encoding, expectedCount: Int) {
        switch encoding {
        case .plain:
            guard let list = BlobList(section, expectedCount: expectedCount) else { return nil }
            self = .plain(list)
        case .zstdBlocks:
            guard let list = CompressedBlobList(section, expectedCount: expectedCount) else { return nil }
            self = .compressed(list)
        case .float16:
            return nil
        }
    }

    var encoding: SegmentFormat.Encoding {
        switch self {
        case .plain: .plain
        case .compressed: .zstdBlocks
        }
    }

    /// Calls `body` with blob `index`'s bytes (valid only inside `body`).
    func withBlob<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch self {
        case .plain(let list): body(list[index])
        case .compressed(let list): list.withBlob(index, body)
        }
    }
}

/// Builds a blob-list section in the encoding asked for.
struct BlobSectionBuilder {
    private var plain: BlobListBuilder?
    private var compressed: CompressedBlobListBuilder?

    init(compressed: Bool) {
        if compressed { self.compressed = CompressedBlobListBuilder() } else { plain = BlobListBuilder() }
    }

    var encoding: SegmentFormat.Encoding { compressed == nil ? .plain : .zstdBlocks }

    mutating func append(_ blob: [UInt8]) {
        if compressed != nil { compressed!.append(blob) } else { plain!.append(blob) }
    }

    func encoded() -> [UInt8] { compressed?.encoded() ?? plain!.encoded() }
}
