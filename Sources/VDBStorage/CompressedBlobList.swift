import CZstd
import VDBCore

/// A blob list (see ``SegmentFormat``) compressed with zstd in blocks, so one blob is read by
/// decompressing one block of about ``CompressedBlobListBuilder/defaultBlockBytes`` — the scheme
/// Lucene uses for stored fields. Section encoding `zstdBlocks`, little-endian:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 8 | blob count n |
/// | 8 | 8 | block count b |
/// | 16 | 16·(b+1) | blocks: index of the first blob (u64), offset of the frame from the first frame byte (u64); entry b is (n, total frame bytes) |
/// | … | … | one zstd frame per block, with its content size |
///
/// A frame decompresses to `k + 1` u32 offsets (relative to the bytes after them,
/// non-decreasing, the last equal to their count) and then the `k` blobs' bytes.
struct CompressedBlobList: @unchecked Sendable {
    // @unchecked Sendable: the section is a read-only mapping; the cache is behind its lock.
    let count: Int
    private let blocks: Int
    private let table: UnsafeRawBufferPointer
    private let frames: UnsafeRawBufferPointer
    /// The block read last, decompressed: sequential readers (rewrites, state rebuilds)
    /// decompress each block once.
    private let cache = Locked<(block: Int, bytes: [UInt8])?>(nil)

    /// Validates the block table and every frame header; nil when inconsistent.
    init?(_ section: UnsafeRawBufferPointer, expectedCount: Int) {
        guard section.count >= 16 else { return nil }
        let count = section.loadLittleEndian(at: 0, as: UInt64.self)
        let blocks = section.loadLittleEndian(at: 8, as: UInt64.self)
        guard count == UInt64(expectedCount), blocks <= count, blocks < UInt64(section.count) / 16 else { return nil }
        self.count = Int(count)
        self.blocks = Int(blocks)
        let tableEnd = 16 + 16 * (self.blocks + 1)
        guard section.count >= tableEnd else { return nil }
        table = UnsafeRawBufferPointer(rebasing: section[16..<tableEnd])
        frames = UnsafeRawBufferPointer(rebasing: section[tableEnd...])
        guard entry(0) == (0, 0), entry(self.blocks) == (count, UInt64(frames.count)) else { return nil }
        for b in 0..<self.blocks {
            let (first, offset) = entry(b), (nextFirst, nextOffset) = entry(b + 1)
            guard nextFirst > first, nextFirst <= count, nextOffset > offset, nextOffset <= UInt64(frames.count) else { return nil }
            let frame = UnsafeRawBufferPointer(rebasing: frames[Int(offset)..<Int(nextOffset)])
            let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
            // Unknown (UInt64.max) or an error (UInt64.max − 1) both fail the bound.
            guard size >= 4 * (nextFirst - first + 1), size <= UInt64(Int32.max) else { return nil }
        }
    }

    private func entry(_ block: Int) -> (first: UInt64, offset: UInt64) {
        (table.loadLittleEndian(at: 16 * block, as: UInt64.self), table.loadLittleEndian(at: 16 * block + 8, as: UInt64.self))
    }

    /// Calls `body` with blob `index`'s bytes (empty if the block fails to decompress, which
    /// the section checksum verified on open rules out short of a bug).
    func withBlob<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        precondition(index >= 0 && index < count, "blob index out of range")
        // The block holding `index`: the last whose first blob is ≤ index.
        var low = 0, high = blocks - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if entry(mid).first <= UInt64(index) { low = mid } else { high = mid - 1 }
        }
        let block = low
        let first = Int(entry(block).first), k = Int(entry(block + 1).first) - first
        // A block that holds only its offsets has no blob bytes: every blob in it is empty
        // (rows without text or metadata), known from the frame header without decompressing.
        if frameContentSize(block) == 4 * (k + 1) { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let bytes = cache.withLock { cached -> [UInt8]? in
            if let cached, cached.block == block { return cached.bytes }
            guard let bytes = decompress(block) else { return nil }
            cached = (block, bytes)
            return bytes
        }
        guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return bytes.withUnsafeBytes { raw in
            let i = index - first
            let dataStart = 4 * (k + 1)
            let start = Int(raw.loadLittleEndian(at: 4 * i, as: UInt32.self))
            let end = Int(raw.loadLittleEndian(at: 4 * i + 4, as: UInt32.self))
            guard start <= end, dataStart + end <= raw.count else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            return body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + start)..<(dataStart + end)]))
        }
    }

    private func frameContentSize(_ block: Int) -> Int {
        let (offset, end) = (Int(entry(block).offset), Int(entry(block + 1).offset))
        return Int(ZSTD_getFrameContentSize(frames.baseAddress! + offset, end - offset))
    }

    private func decompress(_ block: Int) -> [UInt8]? {
        let (offset, end) = (Int(entry(block).offset), Int(entry(block + 1).offset))
        let frame = UnsafeRawBufferPointer(rebasing: frames[offset..<end])
        let size = frameContentSize(block)
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, size, frame.baseAddress, frame.count) }
        guard ZSTD_isError(written) == 0, written == size else { return nil }
        return out
    }
}

/// Builds the `zstdBlocks` encoding of a blob list.
struct CompressedBlobListBuilder {
    /// Uncompressed bytes per block: small enough that fetching one blob stays cheap (tens of
    /// microseconds), large enough for zstd to find the repetition in JSON and prose.
    static let defaultBlockBytes = 16 << 10
    static let level: Int32 = 3
    static let maximumBlobsPerBlock = 1024

    private let blockBytes: Int
    private var count = 0
    private var table: [(first: UInt64, offset: UInt64)] = []
    private var frames: [UInt8] = []
    private var pendingOffsets: [UInt32] = [0]
    private var pendingBytes: [UInt8] = []
    private var pendingFirst = 0

    init(blockBytes: Int = CompressedBlobListBuilder.defaultBlockBytes) {
        self.blockBytes = max(1, blockBytes)
    }

    mutating func append(_ blob: [UInt8]) {
        pendingBytes.append(contentsOf: blob)
        pendingOffsets.append(UInt32(pendingBytes.count))
        count += 1
        // Many empty blobs (rows without text) would make one huge block: cap the count too.
        if pendingBytes.count >= blockBytes || pendingOffsets.count > Self.maximumBlobsPerBlock { seal() }
    }

    private mutating func seal() {
        guard count > pendingFirst else { return }
        var raw: [UInt8] = []
        raw.reserveCapacity(4 * pendingOffsets.count + pendingBytes.count)
        for o in pendingOffsets { raw.appendLittleEndian(o) }
        raw.append(contentsOf: pendingBytes)
        table.append((UInt64(pendingFirst), UInt64(frames.count)))
        let bound = ZSTD_compressBound(raw.count)
        let start = frames.count
        frames.append(contentsOf: repeatElement(0, count: bound))
        let written = frames.withUnsafeMutableBytes { out in
            raw.withUnsafeBytes { ZSTD_compress(out.baseAddress! + start, bound, $0.baseAddress, $0.count, Self.level) }
        }
        // Compression into a buffer of ZSTD_compressBound bytes cannot fail but for memory.
        precondition(ZSTD_isError(written) == 0, "zstd compression failed")
        frames.removeLast(bound - written)
        pendingFirst = count
        pendingOffsets = [0]
        pendingBytes.removeAll(keepingCapacity: true)
    }

    func encoded() -> [UInt8] {
        var builder = self
        builder.seal()
        var out: [UInt8] = []
        out.reserveCapacity(16 + 16 * (builder.table.count + 1) + builder.frames.count)
        out.appendLittleEndian(UInt64(builder.count))
        out.appendLittleEndian(UInt64(builder.table.count))
        for (first, offset) in builder.table {
            out.appendLittleEndian(first)
            out.appendLittleEndian(offset)
        }
        out.appendLittleEndian(UInt64(builder.count))
        out.appendLittleEndian(UInt64(builder.frames.count))
        out.append(contentsOf: builder.frames)
        return out
    }
}
