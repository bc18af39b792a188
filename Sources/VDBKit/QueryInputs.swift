import VDBCore
import VDBCatalog
import VDBIngest
import VDBEngine
public import SystemPackage

/// The queries and ground truth of a measured run (`vdb-query`): from a file (an HDF5 file in
/// the ann-benchmarks layout, or fvecs with an optional ivecs of true neighbours), or the query
/// set stored with the library.
public struct QueryInputs: Sendable {
    /// Raw query vectors, `count × dimension`, as given (the runner prepares them).
    public var vectors: [Float]
    public var groundTruth: GroundTruth

    /// - Parameters:
    ///   - file: a query file; nil takes the library's stored query set.
    ///   - limit: use only the first `limit` queries.
    public static func load(file: FilePath?, groundTruth: FilePath?, snapshot: LibrarySnapshot, limit: Int?) throws -> QueryInputs {
        let dimension = snapshot.contract.dimension
        var set: QuerySet
        let source: String
        if let file {
            let name = file.string.lowercased()
            if name.hasSuffix(".hdf5") || name.hasSuffix(".h5") {
                guard let found = try HDF5Dataset(path: file).querySet() else {
                    throw IngestError(.malformedInput, "\(file) has no 'test' dataset")
                }
                set = found
            } else {
                let read = try VecsFile.readFloats(file)
                set = QuerySet(dimension: read.dimension, vectors: read.values)
                if let groundTruth {
                    let truth = try VecsFile.readInts(groundTruth)
                    set.neighbors = truth.values
                    set.depth = truth.dimension
                }
            }
            source = "ground truth in \(file)"
        } else {
            guard let stored = try snapshot.querySet() else {
                throw QueryError(.unavailable, "library '\(snapshot.directory.name)' has no stored query set; pass --queries FILE or --vector")
            }
            set = stored
            source = "ground truth stored with the library"
        }
        guard set.dimension == dimension else {
            throw IngestError(.dimensionMismatch, "the queries have dimension \(set.dimension); the library's contract is \(snapshot.contract)")
        }
        let count = min(set.count, limit ?? .max)
        let vectors = Array(set.vectors.prefix(count * dimension))
        guard let neighbors = set.neighbors, set.depth > 0 else { return QueryInputs(vectors: vectors, groundTruth: .exact) }
        return QueryInputs(
            vectors: vectors,
            groundTruth: .rows(
                neighbors: Array(neighbors.prefix(count * set.depth)), distances: set.distances.map { Array($0.prefix(count * set.depth)) },
                depth: set.depth, source: source))
    }
}
