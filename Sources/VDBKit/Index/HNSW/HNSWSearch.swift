import CVDBKernels

/// How a search reads neighbour lists: straight from the arrays (queries, on a finished graph)
/// or copied out under the node's lock (construction, while other threads write).
protocol LinkAccess {
    /// Returns the neighbours of `node` on `level` and their count; may copy them into `buffer`
    /// (room for the layer's maximum degree).
    func read(_ graph: HNSWGraph, _ node: UInt32, level: Int, into buffer: UnsafeMutablePointer<UInt32>)
        -> (UnsafePointer<UInt32>, Int)
}

/// Reads a finished graph without synchronisation.
struct DirectLinks: LinkAccess {
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
    static func descend<D: DistanceKernel, A: LinkAccess>(
        _: D.Type, access: A, graph: HNSWGraph, vectors: UnsafePointer<Float>, dimension: Int,
        query: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, fromLevel: Int, toLevel: Int,
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
                    let d = D.distance(query, vectors + Int(n) * dimension, dimension)
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
    static func beam<D: DistanceKernel, A: LinkAccess, P: RowPredicate>(
        _: D.Type, access: A, graph: HNSWGraph, vectors: UnsafePointer<Float>, dimension: Int,
        query: UnsafePointer<Float>, entry: UInt32, entryDistance: Float, ef: Int, level: Int, accept: P,
        scratch: SearchScratch, buffer: UnsafeMutablePointer<UInt32>
    ) {
        scratch.beginSearch()
        _ = scratch.visit(entry)
        var lowerBound = Float.infinity
        if accept.accepts(entry) {
            scratch.results.push(entryDistance, entry)
            lowerBound = entryDistance
        }
        scratch.candidates.push(entryDistance, entry)
        while !scratch.candidates.isEmpty {
            let candidateDistance = scratch.candidates.topDistance
            if candidateDistance > lowerBound && (!P.filters || scratch.results.count == ef) { break }
            let candidate = scratch.candidates.pop().node
            let (list, count) = access.read(graph, candidate, level: level, into: buffer)
            if count > 0 {
                vdb_prefetch(scratch.markAddress(list[0]))
                vdb_prefetch(vectors + Int(list[0]) * dimension)
            }
            for i in 0..<count {
                let n = list[i]
                if i + 1 < count {
                    // Start loading the next neighbour while this one is scored.
                    vdb_prefetch(scratch.markAddress(list[i + 1]))
                    vdb_prefetch(vectors + Int(list[i + 1]) * dimension)
                }
                if scratch.visit(n) { continue }
                let d = D.distance(query, vectors + Int(n) * dimension, dimension)
                if scratch.results.count < ef || d < lowerBound {
                    scratch.candidates.push(d, n)
                    if accept.accepts(n) {
                        scratch.results.push(d, n)
                        if scratch.results.count > ef { scratch.results.pop() }
                    }
                    if !scratch.results.isEmpty { lowerBound = scratch.results.topDistance }
                }
            }
        }
    }
}

extension RowPredicate {
    /// Whether the predicate can reject rows (false for `AllRows`, so the check folds away).
    static var filters: Bool { Self.self != AllRows.self }
}
