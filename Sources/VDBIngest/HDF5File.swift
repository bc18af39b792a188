import CHDF5
public import SystemPackage
public import VDBCore
public import VDBStorage
public import VDBCatalog

/// A thin owner of HDF5 handles. The serial HDF5 library is not thread-safe; a value is used
/// from one thread at a time, and ingest reads it from a single task.
final class HDF5Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t
    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.close = close
    }
    deinit { _ = close(id) }
}

/// Reading the ann-benchmarks HDF5 layout: `train`, `test`, `neighbors`, `distances` datasets
/// and a `distance` attribute on the root.
public final class HDF5Dataset {
    public let path: FilePath
    private let file: HDF5Handle

    public init(path: FilePath) throws(IngestError) {
        self.path = path
        vdb_h5_silence_errors()
        guard fileExists(path) else { throw IngestError(.missingInput, "\(path) does not exist") }
        let id = path.withPlatformString { H5Fopen($0, vdb_h5f_acc_rdonly(), vdb_h5p_default()) }
        guard id >= 0 else { throw IngestError(.malformedInput, "\(path) is not a readable HDF5 file") }
        file = HDF5Handle(id, close: H5Fclose)
    }

    /// Whether a dataset of that name exists at the root.
    public func hasDataset(_ name: String) -> Bool {
        H5Lexists(file.id, name, vdb_h5p_default()) > 0
    }

    /// The shape of a two-dimensional dataset.
    public func shape(of name: String) throws(IngestError) -> (rows: Int, columns: Int) {
        let dataset = try open(name)
        return try shape(dataset, name)
    }

    /// Reads rows `start..<start+count` of a 2-D dataset as Float32 into `buffer`
    /// (converting from whatever type is stored).
    public func readFloatRows(_ name: String, start: Int, count: Int, into buffer: UnsafeMutableBufferPointer<Float>) throws(IngestError) {
        try readRows(name, start: start, count: count, memoryType: vdb_h5t_native_float(), into: UnsafeMutableRawPointer(buffer.baseAddress!), capacity: buffer.count)
    }

    /// Reads a whole 2-D dataset as Float32.
    public func readFloatMatrix(_ name: String) throws(IngestError) -> (values: [Float], rows: Int, columns: Int) {
        let (rows, columns) = try shape(of: name)
        var values = [Float](repeating: 0, count: rows * columns)
        if rows > 0 {
            try values.withUnsafeMutableBufferPointer { (b) throws(IngestError) in
                try readFloatRows(name, start: 0, count: rows, into: b)
            }
        }
        return (values, rows, columns)
    }

    /// Reads a whole 2-D dataset as Int32.
    public func readInt32Matrix(_ name: String) throws(IngestError) -> (values: [Int32], rows: Int, columns: Int) {
        let (rows, columns) = try shape(of: name)
        var values = [Int32](repeating: 0, count: rows * columns)
        if rows > 0 {
            try values.withUnsafeMutableBufferPointer { (b) throws(IngestError) in
                try readRows(name, start: 0, count: rows, memoryType: vdb_h5t_native_int32(), into: UnsafeMutableRawPointer(b.baseAddress!), capacity: rows * columns)
            }
        }
        return (values, rows, columns)
    }

    /// A string attribute of the root group, fixed-length or variable-length.
    public func stringAttribute(_ name: String) -> String? {
        guard H5Aexists(file.id, name) > 0 else { return nil }
        let attributeID = H5Aopen(file.id, name, vdb_h5p_default())
        guard attributeID >= 0 else { return nil }
        let attribute = HDF5Handle(attributeID, close: H5Aclose)
        let typeID = H5Aget_type(attribute.id)
        guard typeID >= 0 else { return nil }
        let type = HDF5Handle(typeID, close: H5Tclose)
        guard H5Tget_class(type.id) == H5T_STRING else { return nil }
        if H5Tis_variable_str(type.id) > 0 {
            let memoryType = HDF5Handle(H5Tcopy(vdb_h5t_c_s1()), close: H5Tclose)
            H5Tset_size(memoryType.id, vdb_h5t_variable())
            // h5py writes UTF-8 strings; HDF5 will not convert between character sets.
            H5Tset_cset(memoryType.id, H5Tget_cset(type.id))
            var pointer: UnsafeMutablePointer<CChar>? = nil
            guard H5Aread(attribute.id, memoryType.id, &pointer) >= 0, let pointer else { return nil }
            defer { H5free_memory(pointer) }
            return String(cString: pointer)
        }
        let size = H5Tget_size(type.id)
        guard size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        guard H5Aread(attribute.id, type.id, &bytes) >= 0 else { return nil }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The root attribute `vdb-build generate --metadata SEED` records its seed in.
    public static let syntheticMetadataAttribute = "vdb_synthetic_metadata_seed"

    /// The seed of the synthetic metadata the file's rows carry, when it was generated with some.
    public var syntheticMetadataSeed: UInt64? { stringAttribute(Self.syntheticMetadataAttribute).flatMap { UInt64($0) } }

    /// The metric named by the `distance` attribute, if present and known.
    public var declaredMetric: Metric? { stringAttribute("distance").flatMap(Metric.init(datasetName:)) }

    /// The query set (`test`, with `neighbors` and `distances` when present).
    public func querySet() throws(IngestError) -> QuerySet? {
        guard hasDataset("test") else { return nil }
        let test = try readFloatMatrix("test")
        var set = QuerySet(dimension: test.columns, vectors: test.values)
        if hasDataset("neighbors") {
            let neighbors = try readInt32Matrix("neighbors")
            guard neighbors.rows == test.rows else {
                throw IngestError(.malformedInput, "\(path): 'neighbors' has \(neighbors.rows) rows but 'test' has \(test.rows)")
            }
            set.neighbors = neighbors.values
            set.depth = neighbors.columns
            if hasDataset("distances") {
                let distances = try readFloatMatrix("distances")
                if distances.rows == neighbors.rows && distances.columns == neighbors.columns {
                    set.distances = distances.values
                }
            }
        }
        return set
    }

    private func open(_ name: String) throws(IngestError) -> HDF5Handle {
        guard hasDataset(name) else { throw IngestError(.malformedInput, "\(path) has no dataset '\(name)'") }
        let id = H5Dopen2(file.id, name, vdb_h5p_default())
        guard id >= 0 else { throw IngestError(.malformedInput, "\(path): cannot open dataset '\(name)'") }
        return HDF5Handle(id, close: H5Dclose)
    }

    private func shape(_ dataset: HDF5Handle, _ name: String) throws(IngestError) -> (rows: Int, columns: Int) {
        let space = HDF5Handle(H5Dget_space(dataset.id), close: H5Sclose)
        guard H5Sget_simple_extent_ndims(space.id) == 2 else {
            throw IngestError(.malformedInput, "\(path): dataset '\(name)' is not two-dimensional")
        }
        var dims: [hsize_t] = [0, 0]
        H5Sget_simple_extent_dims(space.id, &dims, nil)
        return (Int(dims[0]), Int(dims[1]))
    }

    private func readRows(
        _ name: String, start: Int, count: Int, memoryType: hid_t, into pointer: UnsafeMutableRawPointer, capacity: Int
    ) throws(IngestError) {
        let dataset = try open(name)
        let (rows, columns) = try shape(dataset, name)
        precondition(count * columns <= capacity, "buffer too small for the rows requested")
        guard start >= 0, count >= 0, start + count <= rows else {
            throw IngestError(.malformedInput, "\(path): rows \(start)..<\(start + count) are outside dataset '\(name)' (\(rows) rows)")
        }
        guard count > 0 else { return }
        let fileSpace = HDF5Handle(H5Dget_space(dataset.id), close: H5Sclose)
        var offset: [hsize_t] = [hsize_t(start), 0]
        var extent: [hsize_t] = [hsize_t(count), hsize_t(columns)]
        guard H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, &offset, nil, &extent, nil) >= 0 else {
            throw IngestError(.malformedInput, "\(path): cannot select rows of '\(name)'")
        }
        let memorySpace = HDF5Handle(H5Screate_simple(2, &extent, nil), close: H5Sclose)
        guard H5Dread(dataset.id, memoryType, memorySpace.id, fileSpace.id, vdb_h5p_default(), pointer) >= 0 else {
            throw IngestError(.malformedInput, "\(path): reading rows \(start)..<\(start + count) of '\(name)' failed (truncated or corrupt file?)")
        }
    }
}

/// Writes HDF5 files in the ann-benchmarks layout: the synthetic dataset generator and tests.
public enum HDF5Writer {
    /// Writes the datasets and attributes given; `matrices` are (name, values, columns), Float32;
    /// `intMatrices` the same in Int32; attributes are variable-length UTF-8 strings, as h5py writes them.
    public static func write(
        to path: FilePath, floatMatrices: [(String, [Float], Int)], intMatrices: [(String, [Int32], Int)] = [],
        attributes: [String: String] = [:]
    ) throws(IngestError) {
        vdb_h5_silence_errors()
        let fileID = path.withPlatformString { H5Fcreate($0, vdb_h5f_acc_trunc(), vdb_h5p_default(), vdb_h5p_default()) }
        guard fileID >= 0 else { throw IngestError(.missingInput, "cannot create HDF5 file \(path)") }
        let file = HDF5Handle(fileID, close: H5Fclose)
        func dataset(_ name: String, _ count: Int, _ columns: Int, _ type: hid_t, _ bytes: UnsafeRawPointer?) throws(IngestError) {
            precondition(columns > 0 && count % columns == 0, "matrix size is not a multiple of its column count")
            var dims: [hsize_t] = [hsize_t(count / columns), hsize_t(columns)]
            let space = HDF5Handle(H5Screate_simple(2, &dims, nil), close: H5Sclose)
            let id = H5Dcreate2(file.id, name, type, space.id, vdb_h5p_default(), vdb_h5p_default(), vdb_h5p_default())
            guard id >= 0 else { throw IngestError(.malformedInput, "cannot create dataset '\(name)' in \(path)") }
            let ds = HDF5Handle(id, close: H5Dclose)
            if count > 0, let bytes {
                guard H5Dwrite(ds.id, type, vdb_h5s_all(), vdb_h5s_all(), vdb_h5p_default(), bytes) >= 0 else {
                    throw IngestError(.malformedInput, "cannot write dataset '\(name)' in \(path)")
                }
            }
        }
        for (name, values, columns) in floatMatrices {
            try values.withUnsafeBufferPointer { (b) throws(IngestError) in try dataset(name, values.count, columns, vdb_h5t_native_float(), b.baseAddress.map(UnsafeRawPointer.init)) }
        }
        for (name, values, columns) in intMatrices {
            try values.withUnsafeBufferPointer { (b) throws(IngestError) in try dataset(name, values.count, columns, vdb_h5t_native_int32(), b.baseAddress.map(UnsafeRawPointer.init)) }
        }
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            let type = HDF5Handle(H5Tcopy(vdb_h5t_c_s1()), close: H5Tclose)
            H5Tset_size(type.id, vdb_h5t_variable())
            H5Tset_cset(type.id, H5T_CSET_UTF8)
            let space = HDF5Handle(H5Screate(H5S_SCALAR), close: H5Sclose)
            let attribute = HDF5Handle(H5Acreate2(file.id, name, type.id, space.id, vdb_h5p_default(), vdb_h5p_default()), close: H5Aclose)
            let status = value.withCString { c -> herr_t in
                var pointer: UnsafePointer<CChar>? = c
                return H5Awrite(attribute.id, type.id, &pointer)
            }
            guard status >= 0 else { throw IngestError(.malformedInput, "cannot write attribute '\(name)' in \(path)") }
        }
        guard H5Fflush(file.id, H5F_SCOPE_GLOBAL) >= 0 else { throw IngestError(.malformedInput, "cannot flush \(path)") }
    }
}

/// Streams the `train` matrix of an ann-benchmarks HDF5 file; chunk and document ids are row numbers.
public struct HDF5RowSource: RowSource {
    public let dataset: HDF5Dataset
    public let dimension: Int
    public let rowCount: Int
    public let declaredMetric: Metric?
    public let name: String
    private var next = 0

    public init(dataset: HDF5Dataset, name: String = "train") throws(IngestError) {
        self.dataset = dataset
        self.name = name
        (rowCount, dimension) = try dataset.shape(of: name)
        declaredMetric = dataset.declaredMetric
    }

    public var progress: (completed: Int, total: Int?) { (next, rowCount) }

    public mutating func read(into batch: inout RowBatch, maxRows: Int) throws(IngestError) -> Int {
        let count = min(maxRows, rowCount - next)
        guard count > 0 else { return 0 }
        let start = batch.vectors.count
        batch.vectors.append(contentsOf: repeatElement(0, count: count * dimension))
        try batch.vectors.withUnsafeMutableBufferPointer { (all) throws(IngestError) in
            try dataset.readFloatRows(name, start: next, count: count, into: UnsafeMutableBufferPointer(rebasing: all[start...]))
        }
        if batch.count == 0 { batch.firstRowNumber = next }
        for row in next..<next + count {
            batch.chunkIDs.append(ChunkID(row: UInt64(row)))
            batch.documentIDs.append(DocumentID(row: UInt64(row)))
            batch.texts.append(nil)
            batch.metadata.append(nil)
        }
        next += count
        return count
    }
}
