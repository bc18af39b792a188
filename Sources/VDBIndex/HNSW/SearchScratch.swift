import VDBCore

/// A binary heap of (distance, node) in manually managed storage that grows but never
/// shrinks, so a reused heap allocates nothing per query. `MaxFirst` chooses the order.
struct NodeHeap<Order: HeapOrder> {
    private(set) var distances: UnsafeMutablePointer<Float>
    private(set) var nodes: UnsafeMutablePointer<UInt32>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        distances = .allocate(capacity: self.capacity)
        nodes = .allocate(capacity: self.capacity)
    }

    func deallocate() {
        distances.deallocate()
        nodes.deallocate()
    }

    var isEmpty: Bool { count == 0 }
    @inline(__always) var topDistance: Float { distances[0] }
    @inline(__always) var topNode: UInt32 { nodes[0] }

    @inline(__always) mutating func removeAll() { count = 0 }

    mutating func push(_ distance: Float, _ node: UInt32) {
        if count == capacity { grow() }
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) >> 1
            guard Order.before(distance, distances[parent]) else { break }
            distances[child] = distances[parent]
            nodes[child] = nodes[parent]
            child = parent
        }
        distances[child] = distance
        nodes[child] = node
    }

    @discardableResult
    mutating func pop() -> (distance: Float, node: UInt32) {
        let top = (distances[0], nodes[0])
        count -= 1
        if count > 0 {
            let d = distances[count], n = nodes[count]
            var parent = 0
            while true {
                var child = 2 * parent + 1
                if child >= count { break }
                if child + 1 < count && Order.before(distances[child + 1], distances[child]) { child += 1 }
                guard Order.before(distances[child], d) else { break }
                distances[parent] = distances[child]
                nodes[parent] = nodes[child]
                parent = child
            }
            distances[parent] = d
            nodes[parent] = n
        }
        return top
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let d = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity)
        let n = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        d.initialize(from: distances, count: count)
        n.initialize(from: nodes, count: count)
        distances.deallocate()
        nodes.deallocate()
        distances = d
        nodes = n
        capacity = newCapacity
    }
}

protocol HeapOrder {
    static func before(_ a: Float, _ b: Float) -> Bool
}
/// Smallest distance on top: the candidates still to expand.
enum NearestFirst: HeapOrder {
    @inline(__always) static func before(_ a: Float, _ b: Float) -> Bool { a < b }
}
/// Largest distance on top: the best-so-far results, worst one ready to evict.
enum FarthestFirst: HeapOrder {
    @inline(__always) static func before(_ a: Float, _ b: Float) -> Bool { a > b }
}

/// Per-search working memory: an epoch-tagged visited array (clearing it is one increment) and
/// the two heaps. Taken from a pool, so searches allocate nothing (hnswlib's visited_list_pool).
final class SearchScratch {
    private(set) var marks: UnsafeMutablePointer<UInt16>
    let capacity: Int
    private var epoch: UInt16 = 0
    var candidates: NodeHeap<NearestFirst>
    var results: NodeHeap<FarthestFirst>
    /// Room for one neighbour list copied out under its lock.
    let linkBuffer: UnsafeMutablePointer<UInt32>
    /// The unvisited neighbours of the node being expanded.
    let freshNodes: UnsafeMutablePointer<UInt32>
    /// Candidate lists for neighbour selection while building.
    var selection: [(distance: Float, node: UInt32)] = []
    var pruning: [(distance: Float, node: UInt32)] = []

    /// The query folded into per-dimension weights, for quantized scoring.
    let queryWeights: UnsafeMutablePointer<Int16>

    init(nodeCount: Int, maxDegree: Int, dimension: Int = 0) {
        queryWeights = .allocate(capacity: max(1, dimension))
        linkBuffer = .allocate(capacity: maxDegree + 1)
        freshNodes = .allocate(capacity: maxDegree + 1)
        capacity = max(1, nodeCount)
        marks = .allocate(capacity: capacity)
        marks.initialize(repeating: 0, count: capacity)
        candidates = NodeHeap(capacity: 256)
        results = NodeHeap(capacity: 256)
    }

    deinit {
        linkBuffer.deallocate()
        freshNodes.deallocate()
        queryWeights.deallocate()
        marks.deallocate()
        candidates.deallocate()
        results.deallocate()
    }

    /// Starts a new search: every node becomes unvisited.
    @inline(__always)
    func beginSearch() {
        epoch &+= 1
        if epoch == 0 {
            marks.update(repeating: 0, count: capacity)
            epoch = 1
        }
        candidates.removeAll()
        results.removeAll()
    }

    /// The visited marks of the current search, as a value to keep in a local variable.
    var visitedMarks: VisitedMarks { VisitedMarks(marks: marks, epoch: epoch) }
}

/// The epoch-tagged visited array of one search: a node is visited when its mark equals the
/// search's epoch.
struct VisitedMarks {
    let marks: UnsafeMutablePointer<UInt16>
    let epoch: UInt16

    /// Marks `node` visited; returns whether it already was.
    @inline(__always)
    func visit(_ node: UInt32) -> Bool {
        let p = marks + Int(node)
        if p.pointee == epoch { return true }
        p.pointee = epoch
        return false
    }

    /// Marks the `count` nodes of `list` visited and writes the ones that were not into
    /// `fresh`, in order; returns how many it wrote. Without a branch per node: whether a
    /// neighbour was seen before is close to a coin toss, and the branch's stalls were a tenth
    /// of an HNSW build's samples (perf, 300k x 128).
    @inline(__always)
    func keepUnvisited(_ list: UnsafePointer<UInt32>, count: Int, into fresh: UnsafeMutablePointer<UInt32>) -> Int {
        var kept = 0
        for i in 0..<count {
            let n = list[i]
            let p = marks + Int(n)
            let seen = p.pointee == epoch
            p.pointee = epoch
            fresh[kept] = n
            kept &+= seen ? 0 : 1
        }
        return kept
    }
}

/// Scratch objects for one graph, reused across queries and threads.
final class SearchScratchPool: Sendable {
    private let nodeCount: Int
    private let maxDegree: Int
    private let dimension: Int
    // `SearchScratch` is not Sendable: a scratch is used by one search at a time, handed
    // between threads only through this lock.
    private let free = Locked<[UnsafeScratch]>([])

    private struct UnsafeScratch: @unchecked Sendable { let scratch: SearchScratch }

    init(nodeCount: Int, maxDegree: Int, dimension: Int) {
        self.nodeCount = nodeCount
        self.maxDegree = maxDegree
        self.dimension = dimension
    }

    func withScratch<R>(_ body: (SearchScratch) -> R) -> R {
        let taken = free.withLock { $0.popLast() }?.scratch ?? SearchScratch(nodeCount: nodeCount, maxDegree: maxDegree, dimension: dimension)
        defer { free.withLock { $0.append(UnsafeScratch(scratch: taken)) } }
        return body(taken)
    }
}
