public import VDBCore
public import VDBStorage

/// Seeded synthetic chunk metadata for benchmarks of filtered search (`vdb-build ingest
/// --synthetic-metadata SEED`), computed from the row number alone so another program (the
/// FAISS and hnswlib drivers in `bench/`) derives the same values:
///
/// - `bucket`: h₁ mod 1000, uniform, so `{"bucket": {"$lt": 500}}` matches 50% of rows, 100 →
///   10%, 10 → 1%, 1 → 0.1%;
/// - `category`: `c0`…`c99` with a Zipf(1) spread (`c0` about 19%, `c99` about 0.2%);
/// - `year`: 1995 + h₂ mod 30;
/// - `tags`: `t0`…`t7`, each present with probability 2^-(i+1).
///
/// where h₁, h₂, … are successive outputs of SplitMix64 seeded with `seed ^ (row · 0x9E3779B97F4A7C15)`.
public enum SyntheticMetadata {
    /// The schema that declares these fields, so they are validated and indexed.
    public static let schema = MetadataSchema(fields: ["bucket": .integer, "category": .keyword, "year": .integer, "tags": .keywordArray])

    static let categoryCDF: [Double] = {
        let weights = (1...100).map { 1.0 / Double($0) }
        let total = weights.reduce(0, +)
        var running = 0.0
        return weights.map { running += $0 / total; return running }
    }()

    /// SplitMix64's step.
    static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The metadata of row `row`.
    public static func metadata(row: Int, seed: UInt64) -> JSONValue {
        var state = seed ^ (UInt64(row) &* 0x9E37_79B9_7F4A_7C15)
        let bucket = next(&state) % 1_000
        let u = Double(next(&state) >> 11) / Double(1 << 53)
        let category = categoryCDF.firstIndex { u < $0 } ?? 99
        let year = 1_995 + next(&state) % 30
        let bits = next(&state)
        var tags: [JSONValue] = []
        for i in 0..<8 where bits & ((1 << UInt64(i + 1)) - 1) == 0 { tags.append(.string("t\(i)")) }
        return .object([
            "bucket": .number(Double(bucket)), "category": .string("c\(category)"), "year": .number(Double(year)), "tags": .array(tags),
        ])
    }
}
