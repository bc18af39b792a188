import Foundation
import Testing

/// The layers of VDBKit (ARCHITECTURE.md): each target imports only targets below it, so a
/// change that makes a lower layer reach up fails here, naming the file, even where the
/// build would happen to find the module.
@Suite struct LayeringTests {
    /// Rank of each layer target; a target may import only targets of lower rank. Ingest and
    /// Engine are siblings: neither imports the other.
    static let rank: [String: Int] = [
        "VDBCore": 0, "VDBKernels": 1, "VDBStorage": 2, "VDBIndex": 3, "VDBCatalog": 4,
        "VDBIngest": 5, "VDBEngine": 5, "VDBKit": 6, "VDBCommandLine": 7,
    ]

    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// `(file, imported module)` for every import of a layer target in a target's sources.
    static func imports(of target: String) throws -> [(file: String, module: String)] {
        let root = sources.appendingPathComponent(target)
        var found: [(String, String)] = []
        let walker = FileManager.default.enumerator(atPath: root.path)
        while let file = walker?.nextObject() as? String {
            guard file.hasSuffix(".swift") else { continue }
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init).filter { !$0.hasPrefix("@") }
                guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                    words[..<i].allSatisfy({ ["public", "package", "internal"].contains($0) })
                else { continue }
                let module = words[i + 1]
                if rank[module] != nil { found.append(("\(target)/\(file)", module)) }
            }
        }
        return found
    }

    @Test(arguments: rank.keys.sorted())
    func importsOnlyRunDown(target: String) throws {
        let own = try #require(Self.rank[target])
        let found = try Self.imports(of: target)
        if target != "VDBCore" { #expect(!found.isEmpty, "\(target) should import a lower layer; is the Sources path right?") }
        for (file, module) in found where module != target {
            #expect(Self.rank[module]! < own, "\(file) imports \(module), a layer at or above \(target)")
        }
    }
}
