import CVDBKernels
import Dispatch
import Synchronization
public import VDBCore
#if canImport(Glibc)
import Glibc
#endif

/// Parameters of an HNSW graph.
public struct HNSWParameters: Sendable, Hashable, Codable {
    /// Links per node on upper layers; layer 0 gets 2M.
    public var m: Int
    /// Beam width while building.
    public var efConstruction: Int
    /// Default beam width for queries (a query may override it).
    public var efSearch: Int
    /// Seed of the level draw, so a build is reproducible given the thread count.
    public var seed: UInt64
    /// Codes the graph walk scores instead of the float vectors; final candidates are always
    /// re-ranked exactly. Nil walks on the float vectors.
    public var quantizer: Quantizer?

    public enum Quantizer: String, Sendable, Hashable, Codable, CaseIterable {
        /// 8 bits per component, per-dimension range.
        case sq8
    }

    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 100, quantizer: Quantizer? = .sq8) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
        self.quantizer = quantizer
    }

    public func validate() throws(IndexError) {
        guard (2...256).contains(m) else { throw IndexError(.invalidParameter, "M must be in 2...256, not \(m)") }
        guard (1...10_000).contains(efConstruction) else { throw IndexError(.invalidParameter, "ef_construction must be in 1...10000, not \(efConstruction)") }
        guard (1...10_000).contains(efSearch) else { throw IndexError(.invalidParameter, "ef must be in 1...10000, not \(efSearch)") }
    }
}

/// Builds an HNSW graph over contiguous vectors with all cores (Malkov & Yashunin; the
/// construction follows the paper and hnswlib): levels drawn with mL = 1/ln(M), M links on upper
/// layers and 2M on layer 0, neighbours chosen by the diversity heuristic, per-node spin locks
/// so threads insert concurrently.
enum HNSWBuilder {
    /// - Parameters:
    ///   - codes: the rows' 8-bit codes, when the index keeps them: the construction walks then
    ///     score on the codes (a quarter of the bytes per step), and only the candidates they
    ///     return are measured exactly, for the neighbour selection and pruning.
    ///   - vectors: the float vectors in node order: row `nodeRows[i]`'s at `i`.
    ///   - nodeRows: when set, node i of the graph is row `nodeRows[i]` (a permutation, such as
    ///     ``LocalityOrder``'s) and `vectors` and `codes` are stored in node order; nil numbers
    ///     nodes as rows.
    ///     Either way rows are inserted in row order and draw the same levels, so the graph is
    ///     the same up to the numbering; numbered for locality, each walk's reads fall in a few
    ///     contiguous runs and the build takes fewer misses.
    static func build(
        vectors: UnsafeBufferPointer<Float>, dimension: Int, metric: Metric, parameters: HNSWParameters, threads: Int,
        codes: QuantizedCodes? = nil, nodeRows: [UInt32]? = nil, progress: ProgressHandler?
    ) -> HNSWGraph {
        switch metric {
        case .l2: return build(SquaredL2Kernel.self, vectors, dimension, metric, parameters, threads, codes, nodeRows, progress)
        case .cosine, .dot: return build(NegatedDotKernel.self, vectors, dimension, metric, parameters, threads, codes, nodeRows, progress)
        }
    }

    /// Draws each node's level: floor(-ln(U) · mL), mL = 1/ln(M).
    static func drawLevels(count: Int, m: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        let mL = 1 / log(Double(m))
        return (0..<count).map { _ in
            let u = max(Double(rng.next() >> 11) * 0x1p-53, .leastNonzeroMagnitude)
            return UInt8(min(31, Int(-log(u) * mL)))
        }
    }

    private static func build<D: DistanceKernel>(
        _ kernel: D.Type, _ vectors: UnsafeBufferPointer<Float>, _ dimension: Int, _ metric: Metric, _ parameters: HNSWParameters,
        _ threads: Int, _ codes: QuantizedCodes?, _ nodeRows: [UInt32]?, _ progress: ProgressHandler?
    ) -> HNSWGraph {
        let count = vectors.count / dimension
        precondition(nodeRows == nil || nodeRows!.count == count, "one node per row")
        let rowLevels = drawLevels(count: count, m: parameters.m, seed: parameters.seed)
        let graph = HNSWGraph(
            levels: nodeRows.map { $0.map { rowLevels[Int($0)] } } ?? rowLevels, maxDegree: parameters.m,
            efConstruction: parameters.efConstruction)
        if let nodeRows { graph.numberNodes(asRows: nodeRows) }
        guard count > 0, let base = vectors.baseAddress else { return graph }
        // `nodeOf[r]` is row r's node (empty: the same number): rows go in in row order
        // whatever the numbering.
        let nodeOf: [UInt32] = nodeRows.map { nodeRows in
            var inverse = [UInt32](repeating: 0, count: count)
            for (node, row) in nodeRows.enumerated() { inverse[Int(row)] = UInt32(node) }
            return inverse
        } ?? []
        let locks = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        locks.initialize(repeating: 0, count: count)
        defer { locks.deallocate() }
        let first = nodeOf.first ?? 0
        let entry = Locked<(node: UInt32, level: Int)>((first, graph.level(of: first)))
        graph.entryPoint = first
        graph.topLevel = graph.level(of: first)
        let next = Atomic<Int>(1)
        let done = Atomic<Int>(1)
        let context = BuildContext(
            graph: graph, vectors: base, dimension: dimension, metric: metric, codes: codes, locks: locks, parameters: parameters)
        let worker: @Sendable (Int) -> Void = { _ in
            let scratch = SearchScratch(nodeCount: count, maxDegree: graph.maxDegree0, dimension: dimension)
            let buffer = scratch.linkBuffer
            while true {
                let row = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if row >= count { break }
                let node = nodeOf.isEmpty ? UInt32(row) : nodeOf[row]
                context.insert(D.self, node, entry: entry, scratch: scratch, buffer: buffer)
                let finished = done.wrappingAdd(1, ordering: .relaxed).newValue
                if finished % 4096 == 0 || finished == count {
                    progress?(ProgressEvent(phase: "hnsw", completed: finished, total: count, unit: "vectors"))
                }
            }
        }
        // One thread is the caller's own, at its priority (a niced background job).
        if threads <= 1 { worker(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: worker) }
        let final = entry.withLock { $0 }
        graph.entryPoint = final.node
        graph.topLevel = final.level
        if metric != .dot {
            ReachabilityRepair.repair(graph) { a, b in D.distance(context.vector(a), context.vector(b), dimension) }
        }
        return graph
    }
}

/// The shared state of one build. Threads write a node's lists only under its lock.
private struct BuildContext: @unchecked Sendable {
    let graph: HNSWGraph
    /// In node order.
    let vectors: UnsafePointer<Float>
    let dimension: Int
    let metric: Metric
    /// The walks' scoring when set (``HNSWBuilder/build(vectors:dimension:metric:parameters:threads:codes:progress:)``).
    let codes: QuantizedCodes?
    let locks: UnsafeMutablePointer<UInt8>
    let parameters: HNSWParameters

    @inline(__always)
    func vector(_ node: UInt32) -> UnsafePointer<Float> { vectors + Int(node) * dimension }

    func insert<D: DistanceKernel>(
        _ kernel: D.Type, _ node: UInt32, entry: Locked<(node: UInt32, level: Int)>, scratch: SearchScratch,
        buffer: UnsafeMutablePointer<UInt32>
    ) {
        let level = graph.level(of: node)
        let access = LockedLinks(locks: locks)
        let query = vector(node)
        // A node above the current top holds the entry lock for its whole insertion, as in
        // hnswlib, so two new tops cannot race.
        let snapshot = entry.withLock { $0 }
        if level > snapshot.level {
            entry.withLock { state in
                insertBody(D.self, node, level: level, query: query, from: state, access: access, scratch: scratch, buffer: buffer)
                if level > state.level { state = (node, level) }
            }
        } else {
            insertBody(D.self, node, level: level, query: query, from: snapshot, access: access, scratch: scratch, buffer: buffer)
        }
    }

    private func insertBody<D: DistanceKernel>(
        _ kernel: D.Type, _ node: UInt32, level: Int, query: UnsafePointer<Float>, from entry: (node: UInt32, level: Int),
        access: LockedLinks, scratch: SearchScratch, buffer: UnsafeMutablePointer<UInt32>
    ) {
        if let codes {
            let scorer = QuantizedScorer(query: query, codes: codes, metric: metric, weights: scratch.queryWeights)
            insertBody(D.self, node, level: level, query: query, from: entry, scorer: scorer, exact: false, access: access, scratch: scratch, buffer: buffer)
        } else {
            let scorer = FloatScorer<D>(query: query, vectors: vectors, dimension: dimension)
            insertBody(D.self, node, level: level, query: query, from: entry, scorer: scorer, exact: true, access: access, scratch: scratch, buffer: buffer)
        }
    }

    /// - Parameter exact: whether `scorer` gives exact distances; if not, each layer's
    ///   candidates are measured again exactly before the neighbours are chosen from them.
    private func insertBody<D: DistanceKernel, S: NodeScorer>(
        _ kernel: D.Type, _ node: UInt32, level: Int, query: UnsafePointer<Float>, from entry: (node: UInt32, level: Int),
        scorer: S, exact: Bool, access: LockedLinks, scratch: SearchScratch, buffer: UnsafeMutablePointer<UInt32>
    ) {
        var current = entry.node
        var currentDistance = scorer.score(current)
        if entry.level > level {
            (current, currentDistance) = HNSWSearch.descend(
                scorer: scorer, access: access, graph: graph, entry: current, entryDistance: currentDistance,
                fromLevel: entry.level, toLevel: level, buffer: buffer)
        }
        var layer = min(level, entry.level)
        while layer >= 0 {
            HNSWSearch.beam(
                scorer: scorer, access: access, graph: graph, entry: current, entryDistance: currentDistance,
                ef: parameters.efConstruction, level: layer, accept: AllRows(), scratch: scratch, buffer: buffer)
            // Candidates nearest first; the nearest also seeds the next layer down.
            scratch.selection.removeAll(keepingCapacity: true)
            while !scratch.results.isEmpty { scratch.selection.append(scratch.results.pop()) }
            scratch.selection.reverse()
            if let nearest = scratch.selection.first {
                current = nearest.node
                currentDistance = nearest.distance
            }
            if !exact { remeasure(D.self, &scratch.selection, from: query) }
            selectDiverse(D.self, &scratch.selection, limit: parameters.m)
            let chosen = scratch.selection.map(\.node)
            setLinks(D.self, of: node, level: layer, to: scratch.selection, scratch: scratch)
            for neighbor in chosen { connect(D.self, neighbor, to: node, level: layer, scratch: scratch) }
            layer -= 1
        }
    }

    /// Replaces the walk's code distances of `candidates` by exact ones, nearest first. The
    /// walk read only their codes, so each vector is a miss: `lookahead` of them load while
    /// one is measured.
    private func remeasure<D: DistanceKernel>(_ kernel: D.Type, _ candidates: inout [(distance: Float, node: UInt32)], from query: UnsafePointer<Float>) {
        let lookahead = 8
        let lines = min(8, (dimension * 4 + 63) / 64)
        let count = candidates.count
        for i in 0..<min(lookahead, count) { vdb_prefetch_lines(vector(candidates[i].node), lines) }
        for i in 0..<count {
            if i + lookahead < count { vdb_prefetch_lines(vector(candidates[i + lookahead].node), lines) }
            candidates[i].distance = D.distance(query, vector(candidates[i].node), dimension)
        }
        candidates.sort { $0.distance < $1.distance }
    }

    /// The neighbour-diversity heuristic: walking candidates nearest first, keep one only if it
    /// is closer to the new node than to every neighbour already kept. Keeps at most `limit`.
    private func selectDiverse<D: DistanceKernel>(_ kernel: D.Type, _ candidates: inout [(distance: Float, node: UInt32)], limit: Int) {
        guard candidates.count > limit else { return }
        var kept = 0
        for i in 0..<candidates.count {
            if kept == limit { break }
            let c = candidates[i]
            var diverse = true
            for j in 0..<kept where D.distance(vector(c.node), vector(candidates[j].node), dimension) < c.distance {
                diverse = false
                break
            }
            if diverse {
                candidates[kept] = c
                kept += 1
            }
        }
        candidates.removeLast(candidates.count - kept)
    }

    /// Writes a new node's own list on `level`. Another thread may already have linked back to
    /// the node here (it can reach the node through an upper level before this level is done);
    /// those links are merged in, not overwritten, or the other node would lose its only way in.
    /// (hnswlib avoids the case by holding the new node's lock for its whole insertion.)
    private func setLinks<D: DistanceKernel>(
        _ kernel: D.Type, of node: UInt32, level: Int, to chosen: [(distance: Float, node: UInt32)], scratch: SearchScratch
    ) {
        let limit = level == 0 ? graph.maxDegree0 : graph.maxDegree
        let list = graph.links(node, level: level)
        vdb_spin_lock(locks + Int(node))
        defer { vdb_spin_unlock(locks + Int(node)) }
        let existing = Int(list[0])
        var merged = scratch.pruning
        scratch.pruning = []
        merged.removeAll(keepingCapacity: true)
        merged.append(contentsOf: chosen)
        for i in 0..<existing {
            let n = list[i + 1]
            if !chosen.contains(where: { $0.node == n }) {
                merged.append((D.distance(vector(node), vector(n), dimension), n))
            }
        }
        if merged.count > limit {
            merged.sort { $0.distance < $1.distance }
            selectDiverse(D.self, &merged, limit: limit)
        }
        list[0] = UInt32(merged.count)
        for (i, c) in merged.enumerated() { list[i + 1] = c.node }
        scratch.pruning = merged
    }

    /// Adds `node` to `neighbor`'s list on `level`; when the list is full, re-selects it with
    /// the heuristic over its links plus the new node.
    private func connect<D: DistanceKernel>(_ kernel: D.Type, _ neighbor: UInt32, to node: UInt32, level: Int, scratch: SearchScratch) {
        let limit = level == 0 ? graph.maxDegree0 : graph.maxDegree
        let list = graph.links(neighbor, level: level)
        vdb_spin_lock(locks + Int(neighbor))
        defer { vdb_spin_unlock(locks + Int(neighbor)) }
        let count = Int(list[0])
        for i in 0..<count where list[i + 1] == node { return }
        if count < limit {
            list[count + 1] = node
            list[0] = UInt32(count + 1)
            return
        }
        let origin = vector(neighbor)
        var candidates = scratch.pruning
        scratch.pruning = []
        candidates.removeAll(keepingCapacity: true)
        candidates.append((D.distance(origin, vector(node), dimension), node))
        for i in 0..<count {
            let n = list[i + 1]
            candidates.append((D.distance(origin, vector(n), dimension), n))
        }
        candidates.sort { $0.distance < $1.distance }
        selectDiverse(D.self, &candidates, limit: limit)
        list[0] = UInt32(candidates.count)
        for (i, c) in candidates.enumerated() { list[i + 1] = c.node }
        scratch.pruning = candidates
    }
}
