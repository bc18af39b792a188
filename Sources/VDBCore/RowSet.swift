/// A set of rows of one segment as a bitset: a filter's matching rows, or tombstones.
public struct RowSet: Sendable, Hashable {
    @usableFromInline package var words: [UInt64]
    public let capacity: Int

    /// An empty set for rows `0..<capacity`.
    public init(capacity: Int) {
        self.capacity = capacity
        words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    @inlinable
    public func contains(_ row: RowOffset) -> Bool {
        let r = Int(row)
        return r < capacity && words[r >> 6] & (1 << UInt64(r & 63)) != 0
    }

    /// - Precondition: `row < capacity`.
    public mutating func insert(_ row: RowOffset) {
        precondition(Int(row) < capacity, "row outside the set's capacity")
        words[Int(row) >> 6] |= 1 << UInt64(row & 63)
    }

    public mutating func remove(_ row: RowOffset) {
        guard Int(row) < capacity else { return }
        words[Int(row) >> 6] &= ~(1 << UInt64(row & 63))
    }

    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Keeps only the rows also in `other` (rows past `other`'s capacity go).
    public mutating func formIntersection(_ other: RowSet) {
        for i in words.indices { words[i] &= i < other.words.count ? other.words[i] : 0 }
    }

    /// Adds every row of `other`.
    public mutating func formUnion(_ other: RowSet) {
        for i in 0..<min(words.count, other.words.count) { words[i] |= other.words[i] }
    }

    /// Removes every row of `other`.
    public mutating func subtract(_ other: RowSet) {
        for i in 0..<min(words.count, other.words.count) { words[i] &= ~other.words[i] }
    }

    /// Adds the rows of a stored bitmap: little-endian 64-bit words, row `r` at bit `r % 64` of
    /// word `r / 64`, read unaligned (as segment sections hold them).
    package mutating func formUnion(bitmapWords bytes: UnsafeRawBufferPointer) {
        let count = min(words.count, bytes.count / 8)
        for i in 0..<count { words[i] |= UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
    }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// A set holding every row of `0..<capacity`.
    public static func all(capacity: Int) -> RowSet {
        var set = RowSet(capacity: capacity)
        for i in set.words.indices { set.words[i] = ~0 }
        if capacity % 64 != 0, !set.words.isEmpty { set.words[set.words.count - 1] = (1 << UInt64(capacity % 64)) - 1 }
        return set
    }

    /// Calls `body` with every row in the set, in order.
    public func forEach(_ body: (RowOffset) -> Void) {
        for (i, word) in words.enumerated() {
            var bits = word
            while bits != 0 {
                body(RowOffset(i * 64 + bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
    }
}
