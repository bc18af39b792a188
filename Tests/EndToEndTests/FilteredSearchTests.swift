import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// Filtered search through the whole product: a JSON Lines file with chunk and document
/// metadata, ingested by `vdb-build` with a schema and indexed, served by the real
/// `vdb-serve`, searched over HTTP — and every answer equal to numpy's exact filtered one.
@Suite("Filtered search over HTTP", .serialized)
struct FilteredSearchTests {
    static let dimension = 16
    static let documents = 3_000

    /// numpy's exact answer: for each (filter name, query), the k nearest chunk ids (l2)
    /// among the chunks the Python predicate of that filter keeps.
    static let numpyScript = #"""
    import json, sys
    import numpy as np
    lines = [json.loads(l) for l in open(sys.argv[1])]
    cases = json.load(open(sys.argv[2]))
    rows = [(c["id"], np.array(c["vector"], dtype=np.float64), c.get("metadata") or {}, d.get("metadata") or {}) for d in lines for c in d["chunks"]]
    predicates = {
        "bucket<10": lambda m, d: m.get("bucket", 10**9) < 10,
        "c3 and bucket<100": lambda m, d: m.get("category") == "c3" and m.get("bucket", 10**9) < 100,
        "author a7": lambda m, d: d.get("author") == "a7",
        "recent and rare": lambda m, d: m.get("year", 0) >= 2020 and m.get("bucket", -1) >= 950,
        "not c0..c8 and tag": lambda m, d: m.get("category") not in ["c%d" % i for i in range(9)] and "t1" in m.get("tags", []),
    }
    out = []
    for case in cases:
        keep = [r for r in rows if predicates[case["filter"]](r[2], r[3])]
        q = np.array(case["vector"], dtype=np.float64)
        dist = np.array([np.sum((r[1] - q) ** 2) for r in keep])
        order = np.argsort(dist, kind="stable")[: case["k"]]
        out.append([keep[i][0] for i in order])
    print(json.dumps(out))
    """#

    static var filters: [(name: String, json: [String: Any])] { [
        ("bucket<10", ["bucket": ["$lt": 10]]),
        ("c3 and bucket<100", ["$and": [["category": "c3"], ["bucket": ["$lt": 100]]]]),
        ("author a7", ["document.author": "a7"]),
        ("recent and rare", ["year": ["$gte": 2020], "bucket": ["$gte": 950]]),
        ("not c0..c8 and tag", ["$not": ["category": ["$in": (0..<9).map { "c\($0)" }]], "tags": ["$contains": "t1"]]),
    ] }

    @Test func filteredSearchesEqualNumpysExactAnswer() async throws {
        let dir = try CommandLineTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The documents: two chunks each, metadata on both levels.
        var rng = SystemRandomNumberGenerator()
        var text = ""
        for d in 0..<Self.documents {
            var chunks: [[String: Any]] = []
            for c in 0..<2 {
                let vector = (0..<Self.dimension).map { _ in Double(Float.random(in: -1...1, using: &rng)) }
                var metadata: [String: Any] = [
                    "bucket": Int.random(in: 0..<1_000, using: &rng), "category": "c\(Int.random(in: 0..<10, using: &rng))",
                    "year": 2000 + Int.random(in: 0..<25, using: &rng),
                ]
                metadata["tags"] = ["t0", "t1", "t2"].filter { _ in Bool.random(using: &rng) }
                chunks.append(["id": d * 2 + c, "vector": vector, "metadata": metadata])
            }
            let line: [String: Any] = ["id": d, "metadata": ["author": "a\(d % 50)"], "chunks": chunks]
            text += String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self) + "\n"
        }
        let input = dir.appendingPathComponent("docs.jsonl")
        try text.write(to: input, atomically: true, encoding: .utf8)
        let schema = #"{"bucket": "integer", "category": "keyword", "year": "integer", "tags": "keyword[]"}"#
        let ingest = try CommandLineTests.run(
            "vdb-build", ["ingest", "docs.jsonl", "--library", "m", "--metric", "l2", "--shards", "2", "--schema", schema, "--data-dir", "data"], in: dir)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let index = try CommandLineTests.run("vdb-build", ["index", "--library", "m", "--type", "hnsw", "--data-dir", "data"], in: dir)
        #expect(index.status == 0, "\(index.stderr)")

        // The queries, and numpy's answers to them.
        var cases: [[String: Any]] = []
        for filter in Self.filters {
            for _ in 0..<4 {
                cases.append(["filter": filter.name, "k": 10, "vector": (0..<Self.dimension).map { _ in Double(Float.random(in: -1...1, using: &rng)) }])
            }
        }
        let casesFile = dir.appendingPathComponent("cases.json")
        try JSONSerialization.data(withJSONObject: cases).write(to: casesFile)
        let scriptFile = dir.appendingPathComponent("exact.py")
        try Self.numpyScript.write(to: scriptFile, atomically: true, encoding: .utf8)
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", scriptFile.path, input.path, casesFile.path]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        let answer = out.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0, "python3 with numpy must be installed (scripts/ensure-system-libraries.sh)")
        let expected = try #require(try JSONSerialization.jsonObject(with: answer) as? [[Int]])

        let server = try ServerTests.Server(dataDirectory: dir)
        defer { _ = server.stop(signal: SIGTERM) }
        for (i, query) in cases.enumerated() {
            let filter = Self.filters.first { $0.name == query["filter"] as? String }!.json
            let reply = try await server.request("POST", "/v1/libraries/m/search", ["vector": query["vector"]!, "k": 10, "filter": filter])
            #expect(reply.status == 200, "\(reply.json)")
            let hits = (reply.json["hits"] as? [[String: Any]] ?? []).compactMap { $0["chunk"] as? Int }
            #expect(hits == expected[i], "\(query["filter"]!): vdb \(hits), numpy \(expected[i])")
            #expect((reply.json["plans"] as? [Any])?.count == 2, "a plan per shard's segment")
        }
        // A filter that does not fit the schema is a 422 that points at the fault.
        let bad = try await server.request("POST", "/v1/libraries/m/search", ["vector": cases[0]["vector"]!, "filter": ["year": "recent"]])
        #expect(bad.status == 422 && bad.json["pointer"] as? String == "/filter/year", "\(bad.json)")
    }
}
