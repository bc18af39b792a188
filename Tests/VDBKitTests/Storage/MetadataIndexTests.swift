import Foundation
import SystemPackage
import Testing
@testable import VDBCore
@testable import VDBStorage

/// The `metadataIndex` section: what it answers equals a scan of the rows' metadata, it
/// survives a write and reopen, and damage to it is reported, never a crash.
@Suite("Metadata index")
struct MetadataIndexTests {
    static let schema = MetadataSchema(fields: ["k": .keyword, "n": .integer, "x": .float, "b": .bool, "t": .datetime, "tags": .keywordArray, "o.k": .keyword])

    static func metadata(_ r: Int, _ rng: inout SeededGenerator) -> JSONValue? {
        if r % 7 == 0 { return nil }
        var object: [String: JSONValue] = [:]
        let roll = rng.next()
        // Sparse and dense terms: "common" holds about half the rows (a bitmap), the rest few.
        if roll % 5 != 0 { object["k"] = .string(roll % 2 == 0 ? "common" : "k\(roll % 97)") }
        if roll % 3 != 0 { object["n"] = .number(Double(Int(rng.next() % 50) - 25)) }
        if roll % 4 != 0 { object["x"] = .number(Double(rng.next() % 1000) / 7) }
        if roll % 6 != 0 { object["b"] = .bool(rng.next() % 2 == 0) }
        if roll % 2 != 0 { object["t"] = .string(String(format: "2023-%02d-%02dT12:00:00Z", 1 + Int(rng.next() % 12), 1 + Int(rng.next() % 28))) }
        object["tags"] = .array(["p", "q", "r", "p"].filter { _ in rng.next() % 2 == 0 }.map { .string($0) })
        if roll % 8 == 1 { object["o"] = .object(["k": .string("nested")]) }
        if roll % 11 == 1 { object["n"] = .string("not a number") }  // does not conform: left out of the index
        return .object(object)
    }

    static func scan(_ values: [JSONValue?], _ path: String, _ predicate: (JSONValue) -> Bool) -> Set<Int> {
        Set(values.indices.filter { r in MetadataSchema.value(at: path.split(separator: "."), in: values[r]).map(predicate) ?? false })
    }

    static func rows(_ set: RowSet) -> Set<Int> {
        var out = Set<Int>()
        set.forEach { out.insert(Int($0)) }
        return out
    }

    /// Every kind of lookup against a scan, on the segment's section and on the delta's
    /// in-memory index, for row counts around the bitmap/array threshold.
    @Test(arguments: [1, 63, 64, 65, 1_000, 5_000])
    func lookupsEqualAScan(rowCount: Int) throws {
        var rng = SeededGenerator(seed: UInt64(rowCount))
        let values = (0..<rowCount).map { Self.metadata($0, &rng) }
        var builder = MetadataIndexBuilder(schema: Self.schema)
        var delta = DeltaMetadataIndex(schema: Self.schema)
        for value in values {
            builder.add(value)
            delta.append(value)
        }
        let bytes = builder.encoded()
        try bytes.withUnsafeBytes { raw in
            let segment = try MetadataIndex(raw, rowCount: rowCount)
            let indexes: [(String, any IndexedMetadata)] = [("segment", segment), ("delta", delta.view(upTo: rowCount))]
            for (name, index) in indexes {
                func check(_ what: String, _ expected: Set<Int>, _ fill: (inout RowSet) -> Void) {
                    var set = RowSet(capacity: rowCount)
                    fill(&set)
                    #expect(Self.rows(set) == expected, "\(name): \(what)")
                }
                func string(_ v: JSONValue) -> String? { if case .string(let s) = v { s } else { nil } }
                func number(_ v: JSONValue) -> Double? { if case .number(let n) = v { n } else { nil } }
                check("k = common", Self.scan(values, "k") { string($0) == "common" }) { index.addRows("k", terms: .equal("common"), to: &$0) }
                check("k in", Self.scan(values, "k") { ["k3", "k5", "zz"].contains(string($0) ?? "") }) {
                    index.addRows("k", terms: .anyOf(["k3", "k5", "zz"]), to: &$0)
                }
                check("k prefix k1", Self.scan(values, "k") { string($0)?.hasPrefix("k1") ?? false }) { index.addRows("k", terms: .prefix("k1"), to: &$0) }
                check("k in [k2, k5)", Self.scan(values, "k") { string($0).map { $0 >= "k2" && $0 < "k5" } ?? false }) {
                    index.addRows("k", terms: .range(lower: "k2", lowerInclusive: true, upper: "k5", upperInclusive: false), to: &$0)
                }
                check("k > k8", Self.scan(values, "k") { string($0).map { $0 > "k8" } ?? false }) {
                    index.addRows("k", terms: .range(lower: "k8", lowerInclusive: false, upper: nil, upperInclusive: true), to: &$0)
                }
                check("n in [-3, 10]", Self.scan(values, "n") { number($0).map { $0 >= -3 && $0 <= 10 } ?? false }) {
                    index.addRows("n", numbers: NumberRange(lower: -3, upper: 10), to: &$0)
                }
                check("n = 0", Self.scan(values, "n") { number($0) == 0 }) { index.addRows("n", numbers: .exactly(0), to: &$0) }
                check("x < 40", Self.scan(values, "x") { number($0).map { $0 < 40 } ?? false }) {
                    index.addRows("x", numbers: NumberRange(upper: 40, upperInclusive: false), to: &$0)
                }
                check("b = true", Self.scan(values, "b") { $0 == .bool(true) }) { index.addRows("b", terms: .equal("true"), to: &$0) }
                let june = DateTimeText.parse("2023-06-01")!.timeIntervalSinceReferenceDate
                check("t >= June", Self.scan(values, "t") { string($0).flatMap(DateTimeText.parse).map { $0.timeIntervalSinceReferenceDate >= june } ?? false }) {
                    index.addRows("t", numbers: NumberRange(lower: june), to: &$0)
                }
                check("tags contains p", Self.scan(values, "tags") { if case .array(let a) = $0 { a.contains(.string("p")) } else { false } }) {
                    index.addRows("tags", terms: .equal("p"), to: &$0)
                }
                check("tags present", Self.scan(values, "tags") { _ in true }) { index.addPresentRows("tags", to: &$0) }
                check("n present", Self.scan(values, "n") { number($0) != nil }) { index.addPresentRows("n", to: &$0) }
                check("o.k", Self.scan(values, "o.k") { string($0) == "nested" }) { index.addRows("o.k", terms: .equal("nested"), to: &$0) }
            }
        }
    }

    /// A delta view sees only the rows of its snapshot.
    @Test func deltaViewStopsAtItsCount() {
        var delta = DeltaMetadataIndex(schema: Self.schema)
        for r in 0..<100 { delta.append(.object(["k": .string("a"), "n": .number(Double(r))])) }
        var set = RowSet(capacity: 100)
        delta.view(upTo: 40).addRows("k", terms: .equal("a"), to: &set)
        delta.view(upTo: 40).addRows("n", numbers: NumberRange(), to: &set)
        #expect(set.count == 40)
    }

    /// Every truncation and many flipped bytes of a section: an error or a consistent index,
    /// never a crash or a row past the segment.
    @Test func damagedSectionsAreReported() {
        var rng = SeededGenerator(seed: 4)
        var builder = MetadataIndexBuilder(schema: Self.schema)
        for r in 0..<300 { builder.add(Self.metadata(r, &rng)) }
        let bytes = builder.encoded()
        for length in 0..<bytes.count {
            let prefix = Array(bytes[..<length])
            prefix.withUnsafeBytes { raw in
                #expect(throws: StorageError.self, "length \(length)") { try MetadataIndex(raw, rowCount: 300) }
            }
        }
        for _ in 0..<2_000 {
            var damaged = bytes
            damaged[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 + rng.next() % 255)
            damaged.withUnsafeBytes { raw in
                guard let index = try? MetadataIndex(raw, rowCount: 300) else { return }
                for path in index.paths {
                    var set = RowSet(capacity: 300)
                    index.addPresentRows(path, to: &set)
                    index.addRows(path, terms: .range(lower: nil, lowerInclusive: true, upper: nil, upperInclusive: true), to: &set)
                    index.addRows(path, numbers: NumberRange(), to: &set)
                }
            }
        }
    }

    /// Written with a schema, a segment carries the section; a rewrite (an index build) keeps it.
    @Test func segmentsCarryTheirIndexThroughARewrite() throws {
        let dir = TemporaryDirectory()
        let path = dir.path.appending("a.vdbseg")
        let writer = try SegmentWriter(path: path, dimension: 2, metric: .l2, schema: MetadataSchema(fields: ["k": .keyword]))
        for r in 0..<10 {
            try [Float(r), 0].withUnsafeBufferPointer {
                try writer.append(
                    vector: $0, chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: 0),
                    metadata: JSONValue.object(["k": .string(r % 2 == 0 ? "even" : "odd")]).encodedBytes())
            }
        }
        try writer.finish()
        let segment = try Segment(path: path)
        var set = RowSet(capacity: 10)
        segment.metadataIndex?.addRows("k", terms: .equal("even"), to: &set)
        #expect(Self.rows(set) == [0, 2, 4, 6, 8])
        let copy = dir.path.appending("b.vdbseg")
        _ = try SegmentWriter.rewrite(segment, to: copy, extraSections: [])
        #expect(try Segment(path: copy).metadataIndex?.paths == ["k"])
    }
}
