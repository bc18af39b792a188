import VDBCore
import VDBCatalog
import VDBStorage
/// Latency percentiles over a run of queries.
public struct LatencySummary: Sendable, Codable, Hashable {
    public var count: Int
    public var meanMicroseconds: Double
    public var p50Microseconds: Double
    public var p95Microseconds: Double
    public var p99Microseconds: Double
    public var maxMicroseconds: Double

    /// Summarises durations given in nanoseconds. Percentiles use the nearest-rank method.
    public init(nanoseconds: [UInt64]) {
        let sorted = nanoseconds.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
            return Double(sorted[index]) / 1_000
        }
        meanMicroseconds = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count) / 1_000
        p50Microseconds = rank(0.50)
        p95Microseconds = rank(0.95)
        p99Microseconds = rank(0.99)
        maxMicroseconds = rank(1.0)
    }
}

/// Recall against ground truth.
public enum Recall {
    /// The fraction of the true `k` nearest neighbours that `found` contains.
    ///
    /// A hit counts when its id is among the true top `k`, or — when true distances are known —
    /// when its distance is no worse than the k-th true distance (within float tolerance), so
    /// that ties between equidistant rows are not counted as misses (as ann-benchmarks does).
    public static func recall(
        found: [SearchHit], trueNeighbors: ArraySlice<Int32>, trueDistances: ArraySlice<Float>?, k: Int
    ) -> Double {
        let truth = trueNeighbors.prefix(k)
        guard !truth.isEmpty else { return 1 }
        let trueIDs = Set(truth.map { ChunkID(row: UInt64(UInt32(bitPattern: $0))) })
        var threshold = -Float.infinity
        if let trueDistances, trueDistances.count >= truth.count {
            let kth = trueDistances[trueDistances.startIndex + truth.count - 1]
            threshold = kth + 1e-4 * max(1, abs(kth))
        }
        var correct = 0
        for hit in found.prefix(k) where trueIDs.contains(hit.chunkID) || hit.distance <= threshold {
            correct += 1
        }
        return Double(min(correct, truth.count)) / Double(truth.count)
    }

    /// Recall against exact hits computed by us (ids, with the same tie rule unless
    /// `distanceTies` is false: the found distances are estimates).
    public static func recall(found: [SearchHit], exact: [SearchHit], k: Int, distanceTies: Bool = true) -> Double {
        let truth = exact.prefix(k)
        guard let kth = truth.last?.distance else { return 1 }
        let ids = Set(truth.map(\.chunkID))
        let threshold = distanceTies ? kth + 1e-4 * max(1, abs(kth)) : -Float.infinity
        let correct = found.prefix(k).filter { ids.contains($0.chunkID) || $0.distance <= threshold }.count
        return Double(min(correct, truth.count)) / Double(truth.count)
    }
}

/// This process's memory, from `/proc/self/status`.
public enum ProcessMemory {
    /// Resident set size now and at its peak, in bytes (0 where unavailable).
    public static func resident() -> (current: Int, peak: Int) {
        guard let status = try? readWholeFile("/proc/self/status") else { return (0, 0) }
        var current = 0, peak = 0
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            if parts[0] == "VmRSS:" { current = kb * 1024 }
            if parts[0] == "VmHWM:" { peak = kb * 1024 }
        }
        return (current, peak)
    }
}
