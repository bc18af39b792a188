import ArgumentParser
import VDBKit

/// `--vectors` and `--compression`, shared by `ingest` and `index`.
struct StorageOptions: ParsableArguments {
    @Option(name: .long, help: "How segments store vectors: float32, or float16 (half the bytes on disk; IVF-PQ re-ranks from them in place). Default: as the library has them (new libraries: float32).")
    var vectors: String?

    @Option(name: .long, help: "Texts and metadata: zstd (compressed in blocks of about 16 KiB, read one block at a time) or none. Default: as the library has them (new libraries: zstd).")
    var compression: String?

    func validate() throws {
        if let vectors, VectorEncoding(rawValue: vectors) == nil { throw ValidationError("--vectors must be float32 or float16") }
        if let compression, StorageSettings.Compression(rawValue: compression) == nil {
            throw ValidationError("--compression must be zstd or none")
        }
    }

    var change: StorageChange {
        StorageChange(vectors: vectors.flatMap(VectorEncoding.init(rawValue:)), compression: compression.flatMap(StorageSettings.Compression.init(rawValue:)))
    }
}
