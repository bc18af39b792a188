/// A bounded collection of the `k` smallest (distance, id) pairs seen, as a binary max-heap
/// whose root is the current worst, so a candidate that cannot enter is rejected with one
/// comparison. Storage is allocated once and reused across queries with `reset(k:)`.
public struct TopK: Sendable {
    public private(set) var k: Int
    @usableFromInline var distances: ContiguousArray<Float>
    @usableFromInline var ids: ContiguousArray<UInt64>

    public init(k: Int) {
        precondition(k >= 1, "k must be at least 1")
        self.k = k
        distances = []
        ids = []
        distances.reserveCapacity(k)
        ids.reserveCapacity(k)
    }

    /// Empties the heap for a new query, keeping its storage.
    public mutating func reset(k: Int) {
        precondition(k >= 1, "k must be at least 1")
        self.k = k
        distances.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
    }

    public var count: Int { distances.count }
    public var isFull: Bool { distances.count == k }

    /// The distance a candidate must beat to enter: the worst kept, or +∞ while not full.
    @inlinable
    public var threshold: Float { distances.count == k ? distances[0] : .infinity }

    /// Offers a candidate; keeps it if it is among the `k` best so far.
    @inlinable
    public mutating func insert(distance: Float, id: UInt64) {
        if distances.count < k {
            distances.append(distance)
            ids.append(id)
            siftUp(distances.count - 1)
        } else if distance < distances[0] {
            distances[0] = distance
            ids[0] = id
            siftDown(0)
        }
    }

    /// The kept pairs, best first (ties broken by id so results are deterministic).
    public func sorted() -> [(distance: Float, id: UInt64)] {
        zip(distances, ids).map { (distance: $0.0, id: $0.1) }.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }
    }

    /// Visits the kept pairs in no particular order, without allocating.
    @inlinable
    public func forEachUnordered(_ body: (_ distance: Float, _ id: UInt64) -> Void) {
        for i in 0..<distances.count { body(distances[i], ids[i]) }
    }

    /// The kept ids in no particular order, without copying.
    @inlinable
    public func withIDs<R>(_ body: (UnsafeBufferPointer<UInt64>) -> R) -> R {
        ids.withUnsafeBufferPointer(body)
    }

    /// Visits the kept pairs best first without allocating (a heap sort in place), and leaves
    /// the collection empty, ready for the next query.
    public mutating func drainAscending(_ body: (_ distance: Float, _ id: UInt64) -> Void) {
        var end = distances.count - 1
        while end > 0 {
            distances.swapAt(0, end)
            ids.swapAt(0, end)
            siftDown(0, count: end)
            end -= 1
        }
        for i in 0..<distances.count { body(distances[i], ids[i]) }
        reset(k: k)
    }

    @usableFromInline
    mutating func siftUp(_ start: Int) {
        var child = start
        let d = distances[child], id = ids[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard d > distances[parent] else { break }
            distances[child] = distances[parent]
            ids[child] = ids[parent]
            child = parent
        }
        distances[child] = d
        ids[child] = id
    }

    @usableFromInline
    mutating func siftDown(_ start: Int) { siftDown(start, count: distances.count) }

    /// Restores the heap below `start` within the first `n` entries.
    @usableFromInline
    mutating func siftDown(_ start: Int, count n: Int) {
        var parent = start
        let d = distances[parent], id = ids[parent]
        while true {
            var child = 2 * parent + 1
            guard child < n else { break }
            if child + 1 < n && distances[child + 1] > distances[child] { child += 1 }
            guard distances[child] > d else { break }
            distances[parent] = distances[child]
            ids[parent] = ids[child]
            parent = child
        }
        distances[parent] = d
        ids[parent] = id
    }
}
