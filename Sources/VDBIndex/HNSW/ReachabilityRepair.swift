/// Makes every node reachable on layer 0 from the entry point once a build is done.
///
/// The diversity heuristic prunes a full list without asking whether the link it drops is its
/// target's only way in, so a build leaves a few nodes (about 0.1% of clustered 128-d rows)
/// that no list names: no search can return them, whatever its ef. Each such node is linked
/// in from one of its own neighbours that is reachable, which keeps every search's answer set
/// whole; the displaced link is one whose target other lists also name, so no node loses its
/// last way in.
///
/// Not for the inner-product metric: there a node with a small norm is nobody's nearest by
/// right, and linking all such nodes in displaces links the walks need.
enum ReachabilityRepair {
    /// Repairs `graph` in place; returns how many links it added or replaced.
    /// - Parameter distance: the exact distance between two nodes.
    @discardableResult
    static func repair(_ graph: HNSWGraph, distance: (UInt32, UInt32) -> Float) -> Int {
        let n = graph.nodeCount
        guard n > 1 else { return 0 }
        // `inDegree[t]`: how many reached nodes name t. A link is only displaced when its
        // target keeps another reached node's link.
        var inDegree = [Int32](repeating: 0, count: n)
        var reached: [Bool] = []
        var queue = [UInt32]()
        queue.reserveCapacity(n)
        func spread(from start: UInt32) {
            reached[Int(start)] = true
            queue.removeAll(keepingCapacity: true)
            queue.append(start)
            var head = 0
            while head < queue.count {
                let list = graph.links(queue[head], level: 0)
                head += 1
                for i in 0..<Int(list[0]) {
                    let target = Int(list[i + 1])
                    inDegree[target] += 1
                    if !reached[target] {
                        reached[target] = true
                        queue.append(list[i + 1])
                    }
                }
            }
        }
        // Nodes the repair linked in: their links are never displaced in turn, or two nodes
        // could take turns displacing each other round after round.
        var pinned = [Bool](repeating: false, count: n)
        var changes = 0
        var scans = 0
        // A replaced link can still cut off what only it led to (its target's other way in can
        // come from behind it, through a cycle), so each round starts from a fresh walk from
        // the entry point. 20k rows at M 4, 36 two-thread builds: ~590 nodes to link in, and
        // 29 builds were done after one round, 7 after two.
        for _ in 0..<maxRounds {
            reached = [Bool](repeating: false, count: n)
            for i in 0..<n { inDegree[i] = 0 }
            spread(from: graph.entryPoint)
            // In row order, so the repair does not depend on how nodes are numbered.
            var pending = (0..<n).filter { !reached[$0] }.map { UInt32($0) }.sorted { graph.row(of: $0) < graph.row(of: $1) }
            if pending.isEmpty { break }
            // A node whose neighbours are all unreached waits until one of them is linked in;
            // when none is left to wait for, the stuck ones look for hosts among all reached
            // nodes (a scan, so only for the first `maxScans`).
            var scanning = false
            while !pending.isEmpty {
                var waiting = [UInt32]()
                for v in pending where !reached[Int(v)] {
                    var hosts = reachedNeighbors(of: v, graph: graph, reached: reached, distance: distance)
                    if scanning, scans < maxScans {
                        scans += 1
                        hosts += nearestReached(to: v, count: 16, n: n, reached: reached, distance: distance)
                    }
                    // A free slot anywhere before a displaced link: every displacement risks
                    // cutting off what only that link led to.
                    if hosts.contains(where: { linkIn(v, host: $0, graph: graph, displacing: false, inDegree: &inDegree, pinned: pinned, distance: distance) })
                        || hosts.contains(where: { linkIn(v, host: $0, graph: graph, displacing: true, inDegree: &inDegree, pinned: pinned, distance: distance) })
                    {
                        pinned[Int(v)] = true
                        changes += 1
                        spread(from: v)
                    } else {
                        waiting.append(v)
                    }
                }
                if waiting.count == pending.count {
                    if scanning || scans >= maxScans { break }
                    scanning = true
                }
                pending = waiting
            }
        }
        return changes
    }

    /// Rounds per build, at most: each walks the whole graph once.
    static let maxRounds = 16

    /// Nodes scanned for hosts per build, at most: each scan reads every vector.
    static let maxScans = 64

    /// `node`'s own neighbours that are reached, nearest first.
    private static func reachedNeighbors(of node: UInt32, graph: HNSWGraph, reached: [Bool], distance: (UInt32, UInt32) -> Float) -> [UInt32] {
        let own = graph.links(node, level: 0)
        return (0..<Int(own[0])).map { own[$0 + 1] }.filter { reached[Int($0)] }
            .map { (distance(node, $0), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The `count` reached nodes nearest to `node`, nearest first.
    private static func nearestReached(to node: UInt32, count: Int, n: Int, reached: [Bool], distance: (UInt32, UInt32) -> Float) -> [UInt32] {
        var best: [(Float, UInt32)] = []
        for other in 0..<n where reached[other] {
            let d = distance(node, UInt32(other))
            if best.count < count || d < best[best.count - 1].0 {
                best.append((d, UInt32(other)))
                best.sort { $0.0 < $1.0 }
                if best.count > count { best.removeLast() }
            }
        }
        return best.map(\.1)
    }

    /// Puts `node` on `host`'s list: in a free slot, or when `displacing`, in place of the
    /// farthest link whose target another reached node names and the repair did not link in.
    /// False if there is no such place.
    private static func linkIn(
        _ node: UInt32, host: UInt32, graph: HNSWGraph, displacing: Bool, inDegree: inout [Int32], pinned: [Bool],
        distance: (UInt32, UInt32) -> Float
    ) -> Bool {
        let list = graph.links(host, level: 0)
        let count = Int(list[0])
        if count < graph.maxDegree0 {
            list[count + 1] = node
            list[0] = UInt32(count + 1)
        } else {
            guard displacing else { return false }
            var victim: (slot: Int, distance: Float)?
            for i in 0..<count where inDegree[Int(list[i + 1])] > 1 && !pinned[Int(list[i + 1])] {
                let d = distance(host, list[i + 1])
                if victim == nil || d > victim!.distance { victim = (i, d) }
            }
            guard let slot = victim?.slot else { return false }
            inDegree[Int(list[slot + 1])] -= 1
            list[slot + 1] = node
        }
        inDegree[Int(node)] += 1
        return true
    }
}
