import Foundation
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBIndex
@testable import VDBStorage

/// The typed index settings read every form earlier versions wrote, write the same form back,
/// and refuse what no family can serve.
@Suite struct IndexSettingsTests {
    static func decode(_ json: String) throws -> IndexSettings {
        try JSONDecoder().decode(IndexSettings.self, from: Data(json.utf8))
    }

    @Test(arguments: [
        (#"{"type":"flat"}"#, IndexSettings.flat),
        (#"{"type":"hnsw","hnsw":{"efConstruction":200,"efSearch":64,"m":16,"quantizer":"sq8","seed":100}}"#, .hnsw(HNSWParameters())),
        (#"{"type":"hnsw"}"#, .hnsw(HNSWParameters())),
        (#"{"type":"auto","autoThreshold":5000,"hnsw":{"efConstruction":100,"efSearch":32,"m":8,"seed":100}}"#,
         .auto(AutoIndexParameters(hnsw: HNSWParameters(m: 8, efConstruction: 100, efSearch: 32, quantizer: nil), threshold: 5000))),
        (#"{"type":"kdtree","leafSize":16}"#, .kdtree(KDTreeParameters(leafSize: 16))),
        (#"{"type":"kdtree"}"#, .kdtree(KDTreeParameters(leafSize: 32))),
        (#"{"type":"ivfpq","ivfpq":{"lists":64,"nprobe":8,"rerank":0,"subquantizers":4}}"#,
         .ivfpq(IVFPQParameters(lists: 64, subquantizers: 4, nprobe: 8, rerank: 0))),
    ])
    func readsEveryEarlierForm(json: String, expected: IndexSettings) throws {
        let settings = try Self.decode(json)
        #expect(settings == expected)
        // Written back in the same flat form, which reads to the same settings.
        let encoded = try JSONEncoder().encode(settings)
        let object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        #expect(object["type"] as? String == settings.typeName)
        #expect(try JSONDecoder().decode(IndexSettings.self, from: encoded) == settings)
    }

    @Test func unknownTypeIsAnError() {
        #expect(throws: DecodingError.self) { try Self.decode(#"{"type":"lsh"}"#) }
    }

    /// Manifests written before the settings were typed (kept as fixtures) still open.
    @Test(arguments: ["manifest-hnsw-v1", "manifest-ivfpq-v1"])
    func oldManifestsRead(fixture: String) throws {
        let url = try #require(Bundle.module.url(forResource: fixture, withExtension: "json", subdirectory: "Fixtures"))
        let manifest = try LibraryDirectory.decoder.decode(Manifest.self, from: Data(contentsOf: url))
        switch manifest.index {
        case .hnsw(let p): #expect(fixture.contains("hnsw") && p == HNSWParameters())
        case .ivfpq(let p): #expect(fixture.contains("ivfpq") && p.nprobe == 16 && p.rerank == 10)
        default: Issue.record("unexpected index \(manifest.index)")
        }
    }

    @Test func familiesStateWhatTheyServe() throws {
        #expect(throws: IndexError.self) { try IndexSettings.kdtree(KDTreeParameters()).validate(for: .dot) }
        try IndexSettings.kdtree(KDTreeParameters()).validate(for: .cosine)
        #expect(throws: IndexError.self) { try IndexSettings.kdtree(KDTreeParameters(leafSize: 0)).validate(for: .l2) }
        #expect(throws: IndexError.self) { try IndexSettings.hnsw(HNSWParameters(m: 1)).validate(for: .l2) }
        #expect(throws: IndexError.self) { try IndexSettings.ivfpq(IVFPQParameters(nprobe: 0)).validate(for: .l2) }
        #expect(throws: IndexError.self) { try IndexSettings.auto(AutoIndexParameters(threshold: -1)).validate(for: .l2) }
        let auto = IndexSettings.auto(AutoIndexParameters(threshold: 100))
        #expect(auto.family(forRows: 99).kind == .flat && auto.family(forRows: 100).kind == .hnsw)
        #expect(HNSWFamily(parameters: HNSWParameters()).sectionKinds == [.hnswGraph, .sq8Codes])
        #expect(HNSWFamily(parameters: HNSWParameters(quantizer: nil)).sectionKinds == [.hnswGraph])
        #expect(IndexSettings.typeNames.allSatisfy { IndexSettings(typeName: $0)?.typeName == $0 })
    }

    /// One range per search parameter, checked the same way by the server and both CLIs; the
    /// error names the field.
    @Test func searchParametersAreRangeChecked() throws {
        try SearchParameters(ef: 10_000, nprobe: 65_536, leafBudget: 1, rerank: 0).validate()
        for (parameters, field) in [
            (SearchParameters(ef: 0), "ef"), (SearchParameters(ef: 10_001), "ef"), (SearchParameters(nprobe: 0), "nprobe"),
            (SearchParameters(rerank: 1_001), "rerank"), (SearchParameters(leafBudget: 0), "leaves"),
        ] {
            #expect { try parameters.validate() } throws: { ($0 as? QueryError)?.field == field }
        }
        #expect { try SearchParameters.validate(k: 0) } throws: { ($0 as? QueryError)?.field == "k" }
    }
}
