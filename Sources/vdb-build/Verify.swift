import ArgumentParser
import SystemPackage
import VDBCommandLine
import VDBKit

extension VDBBuild {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every checksum of a library's live version (or of one segment file).")

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: "The library to verify.")
        var library: String?

        @Option(name: .long, help: "A single segment file to verify.")
        var segment: String?

        func validate() throws {
            guard (library == nil) != (segment == nil) else { throw ValidationError("pass exactly one of --library or --segment") }
        }

        func run() throws {
            try reportingErrors("vdb-build") {
                if let segment {
                    let opened = try Segment(path: FilePath(segment), verifyChecksums: true)
                    print("ok \(segment): \(opened.rowCount) rows, dimension \(opened.dimension), format v\(opened.formatVersion)")
                    return
                }
                let snapshot = try LibrarySnapshot.openCurrent(dataDirectory: FilePath(global.dataDir), library: library!, verifyChecksums: true)
                for segment in snapshot.allSegments {
                    print("ok \(segment.path): \(segment.rowCount) rows")
                }
                print("library '\(library!)' version \(snapshot.epoch): \(snapshot.allSegments.count) segment(s), \(snapshot.rowCount) rows, all checksums match")
            }
        }
    }
}
