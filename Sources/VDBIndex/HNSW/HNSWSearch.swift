import CVDBKernels

/// How a search reads neighbour lists: straight from the arrays (queries, on a finished graph)
/// or copied out under the node's lock (construction, while other threads write).
protocol LinkAccess {
    /// Returns the neighbours of `node` on `level` and their count; may copy them into `buffer`
    /// (room for the layer's maximum degree).
    func read(_ graph: HNSWGraph, _ node: UInt32, level: Int, into buffer: UnsafeMutablePointer<UInt32>)
        -> (UnsafePointer<UInt32>, Int)
    /// Whether the walk is one of the graph's construction (a constant, so the check folds away).
    static var duringConstruction: Bool { get }
}

/// Reads a finished graph without synchronisation.
struct DirectLinks: LinkAccess {
    static var duringConstruction: Bool { false }

    @inline(__always)
    func read(_ graph: HNSWGraph, _ node: UInt32, level: Int, into buffer: UnsafeMutablePointer<UInt32>)
        -> (UnsafePointer<UInt32>, Int)
    {
        let list = graph.links(node, level: level)
        return (UnsafePointer(list + 1), Int(list[0]))
    }
}

/// Reads a graph under construction: the list is copied under the node's spin lock.
struct LockedLinks: LinkAccess {
    static var duringConstruction: Bool { true }
    let locks: UnsafeMutablePointer<UInt8>

    @inline(__always)
    func read(_ graph: HNSWGraph, _ node: UInt32, level: Int, into buffer: UnsafeMutablePointer<UInt32>)
        -> (UnsafePointer<UInt32>, Int)
    {
        let list = graph.links(node, level: level)
        vdb_spin_lock(locks + Int(node))
        let count = Int(list[0])
        buffer.update(from: list + 1, count: count)
        vdb_spin_unlock(locks + Int(node))
        return (UnsafePointer(buffer), count)
    }
}

/// The two walks every HNSW operation is made of.
enum HNSWSearch {
    /// Greedy descent from `entry` through levels `fromLevel` down to `toLevel + 1`: at each
    /// level, move to the closest neighbour until none is closer. Returns the node reached.
    @inline(__always)
    static func descend<S: NodeScorer, A: LinkAccess>(
        scorer: S, access: A, graph: HNSWGraph, entry: UInt32, entryDistance: Float, fromLevel: Int, toLevel: Int,
        buffer: UnsafeMutablePointer<UInt32>
    ) -> (node: UInt32, distance: Float) {
        var current = entry
        var best = entryDistance
        var level = fromLevel
        while level > toLevel {
            var changed = true
            while changed {
                changed = false
                let (list, count) = access.read(graph, current, level: level, into: buffer)
                for i in 0..<count {
                    let n = list[i]
                    let d = scorer.score(n)
                    if d < best {
                        best = d
                        current = n
                        changed = true
                    }
                }
            }
            level -= 1
        }
        return (current, best)
    }

    /// Beam search on one level with beam width `ef`, leaving the best `ef` accepted nodes in
    /// `scratch.results` (a max-heap). Rejected nodes are walked through but never returned, so
    /// tombstones and filters do not cut the graph.
    @inline(__always)
    static func beam<S: NodeScorer, A: LinkAccess, P: RowPredicate>(
        scorer: S, access: A, graph: HNSWGraph, entry: UInt32, entryDistance: Float, ef: Int, level: Int, accept: P,
        scratch: SearchScratch, buffer: UnsafeMutablePointer<UInt32>
    ) {
        scratch.beginSearch()
        // Work on local copies of the heaps and marks: accesses to a class's stored properties
        // inside the loop would each pay a dynamic exclusivity check.
        var candidates = scratch.candidates
        var results = scratch.results
        defer {
            scratch.candidates = candidates
            scratch.results = results
        }
        let visited = scratch.visitedMarks
        let fresh = scratch.freshNodes
        _ = visited.visit(entry)
        var lowerBound = Float.infinity
        if accept.accepts(entry) {
            results.push(entryDistance, entry)
            lowerBound = entryDistance
        }
        candidates.push(entryDistance, entry)
        while !candidates.isEmpty {
            if candidates.topDistance > lowerBound && (!P.filters || results.count == ef) { break }
            let candidate = candidates.pop().node
            // The next expansion is most likely the new top: start loading its list now, so
            // its miss overlaps this node's scoring instead of stalling the next step.
            if !candidates.isEmpty { vdb_prefetch(graph.links(candidates.topNode, level: level)) }
            let (list, count) = access.read(graph, candidate, level: level, into: buffer)
            // Two passes: first drop visited neighbours and request every remaining one, so
            // their cache misses overlap; then score them.
            var freshCount = 0
            if A.duringConstruction {
                // Branch-free (``VisitedMarks/keepUnvisited(_:count:into:)``): builds of 300k x
                // 128 took 71 s against 79 s (three pairs). Searches measured no gain within
                // the machine's noise, so they keep the branch.
                freshCount = visited.keepUnvisited(list, count: count, into: fresh)
                for i in 0..<freshCount { scorer.prefetch(fresh[i]) }
            } else {
                for i in 0..<count {
                    let n = list[i]
                    if visited.visit(n) { continue }
                    fresh[freshCount] = n
                    freshCount += 1
                    scorer.prefetch(n)
                }
            }
            for i in 0..<freshCount {
                let n = fresh[i]
                let d = scorer.score(n)
                if results.count < ef || d < lowerBound {
                    candidates.push(d, n)
                    if accept.accepts(n) {
                        results.push(d, n)
                        if results.count > ef { results.pop() }
                    }
                    if !results.isEmpty { lowerBound = results.topDistance }
                }
            }
        }
    }
}

extension RowPredicate {
    /// Whether the predicate can reject rows (false for `AllRows`, so the check folds away).
    static var filters: Bool { Self.self != AllRows.self }
}
