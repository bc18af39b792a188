import VDBCore
import VDBStorage
/// An HNSW graph over the rows of one segment, as flat `UInt32` arrays that are either owned
/// (just built) or point into a mapped segment (no copy, no rebuild on open).
///
/// Invariants (checked by `checkInvariants()`): every node's layer-0 degree is ≤ `maxDegree0`
/// (2M) and upper-layer degree ≤ `maxDegree` (M); no self links; every link names a node that
/// exists on that layer; the entry point is on the top layer.
///
/// Nodes are numbered either as the segment's rows (format 1) or in an order of their own
/// (format 2, ``LocalityOrder``), in which case `rows` maps each node to its row and the
/// segment's codes are stored in node order too.
///
/// Serialized as the segment section `hnsw graph`, format 1 or 2, little-endian:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | graph format (1 or 2) |
/// | 4 | 4 | M (upper-layer degree) |
/// | 8 | 4 | layer-0 degree (2M) |
/// | 12 | 4 | ef_construction used |
/// | 16 | 4 | node count |
/// | 20 | 4 | entry point |
/// | 24 | 4 | top level |
/// | 28 | 4 | upper-layer block count |
/// | 32 | 32 | reserved, zero |
/// | 64 | n·(2M+1)·4 | layer 0: per node, count then 2M slots |
/// | aligned 64 | n | level of each node (UInt8) |
/// | aligned 64 | n·4 | first upper block of each node |
/// | aligned 64 | blocks·(M+1)·4 | upper layers: per (node, level ≥ 1), count then M slots |
/// | aligned 64 | n·4 | format 2 only: the row of each node (a permutation) |
final class HNSWGraph: @unchecked Sendable {
    // @unchecked Sendable: after `build` returns, nothing writes these arrays; while building,
    // writes to a node's lists happen only under that node's lock (HNSWBuilder).
    let nodeCount: Int
    let maxDegree: Int
    let maxDegree0: Int
    let efConstruction: Int
    var entryPoint: UInt32
    var topLevel: Int
    let level0: UnsafeMutablePointer<UInt32>
    let levels: UnsafeMutablePointer<UInt8>
    let upperStart: UnsafeMutablePointer<UInt32>
    let upperLinks: UnsafeMutablePointer<UInt32>
    let upperBlockCount: Int
    /// The row of each node, when nodes are not numbered as rows (format 2).
    private(set) var rows: UnsafeMutablePointer<UInt32>?
    /// The memory the arrays live in when they are not owned (a mapped segment).
    private let backing: AnyObject?

    /// Nodes numbered as rows.
    static let formatVersion: UInt32 = 1
    /// Nodes in an order of their own, with the row of each.
    static let orderedFormatVersion: UInt32 = 2
    static let headerSize = 64

    var stride0: Int { maxDegree0 + 1 }
    var strideUpper: Int { maxDegree + 1 }

    /// Allocates an empty graph for `levels` (one level per node).
    init(levels nodeLevels: [UInt8], maxDegree: Int, efConstruction: Int) {
        nodeCount = nodeLevels.count
        self.maxDegree = maxDegree
        maxDegree0 = 2 * maxDegree
        self.efConstruction = efConstruction
        entryPoint = 0
        topLevel = Int(nodeLevels.first ?? 0)
        level0 = .allocate(capacity: max(1, nodeCount * (2 * maxDegree + 1)))
        level0.initialize(repeating: 0, count: max(1, nodeCount * (2 * maxDegree + 1)))
        levels = .allocate(capacity: max(1, nodeCount))
        upperStart = .allocate(capacity: max(1, nodeCount))
        var blocks = 0
        for (i, l) in nodeLevels.enumerated() {
            levels[i] = l
            upperStart[i] = UInt32(blocks)
            blocks += Int(l)
        }
        upperBlockCount = blocks
        upperLinks = .allocate(capacity: max(1, blocks * (maxDegree + 1)))
        upperLinks.initialize(repeating: 0, count: max(1, blocks * (maxDegree + 1)))
        backing = nil
    }

    /// A view of a serialized graph; `section` must stay valid while `backing` lives.
    init(section: UnsafeRawBufferPointer, backing: AnyObject, expectedNodes: Int, name: String) throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): hnsw graph section: \(what)") }
        guard section.count >= Self.headerSize else { throw bad("shorter than its header") }
        let format: UInt32 = section.loadLittleEndian(at: 0)
        guard format == Self.formatVersion || format == Self.orderedFormatVersion else {
            throw StorageError(
                .versionMismatch, "\(name): hnsw graph format \(format); this build reads \(Self.formatVersion) and \(Self.orderedFormatVersion)")
        }
        maxDegree = Int(section.loadLittleEndian(at: 4, as: UInt32.self))
        maxDegree0 = Int(section.loadLittleEndian(at: 8, as: UInt32.self))
        efConstruction = Int(section.loadLittleEndian(at: 12, as: UInt32.self))
        nodeCount = Int(section.loadLittleEndian(at: 16, as: UInt32.self))
        entryPoint = section.loadLittleEndian(at: 20)
        topLevel = Int(section.loadLittleEndian(at: 24, as: UInt32.self))
        upperBlockCount = Int(section.loadLittleEndian(at: 28, as: UInt32.self))
        guard nodeCount == expectedNodes, maxDegree >= 1, maxDegree <= 4096, maxDegree0 >= maxDegree, maxDegree0 <= 8192,
              nodeCount == 0 || Int(entryPoint) < nodeCount, topLevel < 64
        else { throw bad("implausible header (\(nodeCount) nodes for \(expectedNodes) rows, M \(maxDegree))") }
        let ordered = format == Self.orderedFormatVersion
        let layout = Self.layout(nodes: nodeCount, maxDegree: maxDegree, maxDegree0: maxDegree0, blocks: upperBlockCount, ordered: ordered)
        guard section.count == layout.total else { throw bad("is \(section.count) bytes; \(layout.total) expected") }
        let base = UnsafeMutableRawPointer(mutating: section.baseAddress!)
        level0 = (base + layout.level0).assumingMemoryBound(to: UInt32.self)
        levels = (base + layout.levels).assumingMemoryBound(to: UInt8.self)
        upperStart = (base + layout.upperStart).assumingMemoryBound(to: UInt32.self)
        upperLinks = (base + layout.upperLinks).assumingMemoryBound(to: UInt32.self)
        rows = ordered ? (base + layout.rows).assumingMemoryBound(to: UInt32.self) : nil
        self.backing = backing
        try validateLinks(name: name)
        try validateRows(name: name)
    }

    deinit {
        guard backing == nil else { return }
        level0.deallocate()
        levels.deallocate()
        upperStart.deallocate()
        upperLinks.deallocate()
        rows?.deallocate()
    }

    /// Numbers a graph being built as `order` says: node i is row `order[i]`.
    func numberNodes(asRows order: [UInt32]) {
        precondition(rows == nil && backing == nil && order.count == nodeCount, "numbering needs a new graph and one node per row")
        let rows = UnsafeMutablePointer<UInt32>.allocate(capacity: max(1, nodeCount))
        rows.initialize(from: order, count: nodeCount)
        self.rows = rows
    }

    /// The row of `node`.
    @inline(__always)
    func row(of node: UInt32) -> UInt32 { rows.map { $0[Int(node)] } ?? node }

    /// The count-prefixed neighbour list of `node` on `level`.
    @inline(__always)
    func links(_ node: UInt32, level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return level0 + Int(node) * stride0 }
        return upperLinks + (Int(upperStart[Int(node)]) + level - 1) * strideUpper
    }

    @inline(__always)
    func level(of node: UInt32) -> Int { Int(levels[Int(node)]) }

    /// Bytes of the graph's arrays.
    var memoryFootprint: Int { layout.total }

    private var layout: (level0: Int, levels: Int, upperStart: Int, upperLinks: Int, rows: Int, total: Int) {
        Self.layout(nodes: nodeCount, maxDegree: maxDegree, maxDegree0: maxDegree0, blocks: upperBlockCount, ordered: rows != nil)
    }

    static func layout(nodes: Int, maxDegree: Int, maxDegree0: Int, blocks: Int, ordered: Bool)
        -> (level0: Int, levels: Int, upperStart: Int, upperLinks: Int, rows: Int, total: Int)
    {
        let level0 = headerSize
        let levels = SegmentFormat.aligned(level0 + nodes * (maxDegree0 + 1) * 4)
        let upperStart = SegmentFormat.aligned(levels + nodes)
        let upperLinks = SegmentFormat.aligned(upperStart + nodes * 4)
        let end = upperLinks + blocks * (maxDegree + 1) * 4
        guard ordered else { return (level0, levels, upperStart, upperLinks, end, end) }
        let rows = SegmentFormat.aligned(end)
        return (level0, levels, upperStart, upperLinks, rows, rows + nodes * 4)
    }

    /// The section bytes (see the type's layout table).
    func serialized() -> [UInt8] {
        let layout = self.layout
        var out = [UInt8](repeating: 0, count: layout.total)
        out.withUnsafeMutableBytes { raw in
            let header: [UInt32] = [
                rows == nil ? Self.formatVersion : Self.orderedFormatVersion, UInt32(maxDegree), UInt32(maxDegree0), UInt32(efConstruction), UInt32(nodeCount),
                entryPoint, UInt32(topLevel), UInt32(upperBlockCount),
            ]
            for (i, v) in header.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
            (raw.baseAddress! + layout.level0).copyMemory(from: level0, byteCount: nodeCount * stride0 * 4)
            (raw.baseAddress! + layout.levels).copyMemory(from: levels, byteCount: nodeCount)
            (raw.baseAddress! + layout.upperStart).copyMemory(from: upperStart, byteCount: nodeCount * 4)
            (raw.baseAddress! + layout.upperLinks).copyMemory(from: upperLinks, byteCount: upperBlockCount * strideUpper * 4)
            if let rows { (raw.baseAddress! + layout.rows).copyMemory(from: rows, byteCount: nodeCount * 4) }
        }
        return out
    }

    /// Checks that a format-2 graph's rows are a permutation: every row exactly once.
    private func validateRows(name: String) throws(StorageError) {
        guard let rows else { return }
        var seen = [Bool](repeating: false, count: nodeCount)
        for node in 0..<nodeCount {
            let row = Int(rows[node])
            guard row < nodeCount, !seen[row] else {
                throw StorageError(.corruptSegment, "\(name): hnsw graph section: node \(node) names row \(row) out of range or twice")
            }
            seen[row] = true
        }
    }

    /// Checks the structural invariants on a graph read from disk, so a bad file is an error
    /// here rather than an out-of-bounds read in a search. Linear in the number of links.
    func validateLinks(name: String) throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): hnsw graph section: \(what)") }
        var blocks = 0
        for n in 0..<nodeCount {
            guard Int(upperStart[n]) == blocks else { throw bad("upper-layer offsets of node \(n) are inconsistent") }
            blocks += Int(levels[n])
            guard Int(levels[n]) <= topLevel else { throw bad("node \(n) is above the top level") }
        }
        guard blocks == upperBlockCount else { throw bad("upper-layer block count mismatch") }
        if nodeCount > 0 && Int(levels[Int(entryPoint)]) != topLevel { throw bad("the entry point is not on the top level") }
        for n in 0..<nodeCount {
            for level in 0...Int(levels[n]) {
                let list = links(UInt32(n), level: level)
                let count = Int(list[0])
                guard count <= (level == 0 ? maxDegree0 : maxDegree) else { throw bad("node \(n) has \(count) links on level \(level)") }
                for i in 1...max(1, count) where count > 0 {
                    let m = list[i]
                    guard Int(m) < nodeCount, Int(levels[Int(m)]) >= level, m != UInt32(n) else {
                        throw bad("node \(n) links to \(m) on level \(level)")
                    }
                }
            }
        }
    }
}
