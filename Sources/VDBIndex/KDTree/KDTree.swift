import VDBCore
/// A k-d tree over the rows of one segment, for low-dimensional data: nodes split the space at
/// the median of the widest dimension (found by selection, not by sorting), leaves hold up to
/// `leafSize` rows. The rows stay where they are in the segment; the tree keeps a permutation.
///
/// Stored as the segment section `kd tree`, format 1, little-endian:
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0 | 4 | format (1) |
/// | 4 | 4 | dimension |
/// | 8 | 4 | node count n |
/// | 12 | 4 | row count r |
/// | 16 | 4 | leaf size |
/// | 20 | 44 | reserved, zero |
/// | 64 | 16·n | nodes: split dimension (Int32, −1 for a leaf), split value (Float32), then left and right child (inner) or first position and count in the permutation (leaf), UInt32 each |
/// | 64 + 16·n | 4·r | permutation of the rows, leaf by leaf |
///
/// Invariant (`validate`): every row appears once in the permutation; every inner node's left
/// subtree holds values ≤ its split and the right subtree values ≥ it (the split order).
struct KDTree: @unchecked Sendable {
    // @unchecked Sendable: the pointers are read-only views into owned or mapped memory kept
    // alive by `storage`.
    struct Node {
        var dimension: Int32
        var value: Float
        var a: UInt32
        var b: UInt32
        var isLeaf: Bool { dimension < 0 }
    }

    let dimension: Int
    let leafSize: Int
    let nodes: UnsafePointer<Node>
    let nodeCount: Int
    let permutation: UnsafePointer<UInt32>
    let rowCount: Int
    private let storage: AnyObject

    static let formatVersion: UInt32 = 1
    static let headerSize = 64

    /// Builds the tree over `rowCount` vectors.
    static func build(vectors: UnsafeBufferPointer<Float>, dimension: Int, leafSize: Int = 32) -> [UInt8] {
        let rowCount = dimension == 0 ? 0 : vectors.count / dimension
        var permutation = (0..<rowCount).map { UInt32($0) }
        var nodes: [Node] = []
        nodes.reserveCapacity(max(1, 2 * rowCount / max(1, leafSize)))
        func vector(_ row: UInt32, _ d: Int) -> Float { vectors[Int(row) * dimension + d] }
        // Explicit stack of (node index, range) so deep trees cannot overflow the call stack.
        nodes.append(Node(dimension: -1, value: 0, a: 0, b: UInt32(rowCount)))
        var stack: [(Int, Int, Int)] = [(0, 0, rowCount)]
        while let (index, start, end) = stack.popLast() {
            let count = end - start
            if count <= leafSize { continue }
            // Split the widest dimension at its median.
            var best = 0
            var widest: Float = -1
            for d in 0..<dimension {
                var lo = Float.infinity, hi = -Float.infinity
                for i in start..<end {
                    let x = vector(permutation[i], d)
                    lo = min(lo, x)
                    hi = max(hi, x)
                }
                if hi - lo > widest {
                    widest = hi - lo
                    best = d
                }
            }
            if widest <= 0 { continue }  // all equal: stays a leaf
            let middle = start + count / 2
            permutation.withUnsafeMutableBufferPointer { p in
                select(p, from: start, to: end, nth: middle) { vector($0, best) }
            }
            let value = vector(permutation[middle], best)
            let left = nodes.count
            nodes.append(Node(dimension: -1, value: 0, a: UInt32(start), b: UInt32(middle - start)))
            nodes.append(Node(dimension: -1, value: 0, a: UInt32(middle), b: UInt32(end - middle)))
            nodes[index] = Node(dimension: Int32(best), value: value, a: UInt32(left), b: UInt32(left + 1))
            stack.append((left, start, middle))
            stack.append((left + 1, middle, end))
        }
        var out = [UInt8](repeating: 0, count: headerSize + nodes.count * 16 + rowCount * 4)
        out.withUnsafeMutableBytes { raw in
            let header: [UInt32] = [formatVersion, UInt32(dimension), UInt32(nodes.count), UInt32(rowCount), UInt32(leafSize)]
            for (i, v) in header.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            for (i, node) in nodes.enumerated() {
                let o = headerSize + 16 * i
                raw.storeBytes(of: node.dimension.littleEndian, toByteOffset: o, as: Int32.self)
                raw.storeBytes(of: node.value.bitPattern.littleEndian, toByteOffset: o + 4, as: UInt32.self)
                raw.storeBytes(of: node.a.littleEndian, toByteOffset: o + 8, as: UInt32.self)
                raw.storeBytes(of: node.b.littleEndian, toByteOffset: o + 12, as: UInt32.self)
            }
            for (i, row) in permutation.enumerated() {
                raw.storeBytes(of: row.littleEndian, toByteOffset: headerSize + 16 * nodes.count + 4 * i, as: UInt32.self)
            }
        }
        return out
    }

    /// Rearranges `p[from..<to]` so that `p[nth]` holds the element a sort by `key` would put
    /// there, smaller-or-equal ones before it and larger-or-equal after: Hoare's selection
    /// (quickselect with a median-of-three pivot), expected linear time.
    static func select(_ p: UnsafeMutableBufferPointer<UInt32>, from: Int, to: Int, nth: Int, key: (UInt32) -> Float) {
        var lo = from, hi = to - 1
        while hi > lo {
            let mid = lo + (hi - lo) / 2
            // Median of three as the pivot value.
            let a = key(p[lo]), b = key(p[mid]), c = key(p[hi])
            let pivot = max(min(a, b), min(max(a, b), c))
            var i = lo, j = hi
            while i <= j {
                while key(p[i]) < pivot { i += 1 }
                while key(p[j]) > pivot { j -= 1 }
                if i <= j {
                    p.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if nth <= j {
                hi = j
            } else if nth >= i {
                lo = i
            } else {
                return
            }
        }
    }

    /// A view of a serialized tree, checked for consistency.
    init(section: UnsafeRawBufferPointer, backing: AnyObject, dimension expected: Int, rows expectedRows: Int, name: String) throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): kd tree section: \(what)") }
        guard section.count >= Self.headerSize else { throw bad("shorter than its header") }
        guard section.loadLittleEndian(at: 0, as: UInt32.self) == Self.formatVersion else {
            throw StorageError(.versionMismatch, "\(name): unknown kd tree format")
        }
        dimension = Int(section.loadLittleEndian(at: 4, as: UInt32.self))
        nodeCount = Int(section.loadLittleEndian(at: 8, as: UInt32.self))
        rowCount = Int(section.loadLittleEndian(at: 12, as: UInt32.self))
        leafSize = Int(section.loadLittleEndian(at: 16, as: UInt32.self))
        guard dimension == expected, rowCount == expectedRows, nodeCount >= 1,
              section.count == Self.headerSize + 16 * nodeCount + 4 * rowCount
        else { throw bad("does not match the segment (\(rowCount) rows, dimension \(dimension), \(nodeCount) nodes)") }
        let base = section.baseAddress!
        nodes = (base + Self.headerSize).assumingMemoryBound(to: Node.self)
        permutation = (base + Self.headerSize + 16 * nodeCount).assumingMemoryBound(to: UInt32.self)
        storage = backing
        try validate(name: name)
    }

    /// Checks that children and leaf ranges are in bounds and the permutation covers every row once.
    private func validate(name: String) throws(StorageError) {
        func bad(_ what: String) -> StorageError { StorageError(.corruptSegment, "\(name): kd tree section: \(what)") }
        var seen = RowSet(capacity: rowCount)
        for i in 0..<rowCount {
            let row = permutation[i]
            guard Int(row) < rowCount, !seen.contains(row) else { throw bad("the permutation repeats or overflows at \(i)") }
            seen.insert(row)
        }
        for i in 0..<nodeCount {
            let node = nodes[i]
            if node.isLeaf {
                guard Int(node.a) + Int(node.b) <= rowCount else { throw bad("leaf \(i) overflows the permutation") }
            } else {
                guard Int(node.dimension) < dimension, Int(node.a) > i, Int(node.a) < nodeCount, Int(node.b) > i, Int(node.b) < nodeCount else {
                    throw bad("inner node \(i) has bad children or split dimension")
                }
            }
        }
    }
}
