public import SystemPackage
public import VDBCore

/// The TEXMEX `.fvecs` / `.bvecs` / `.ivecs` formats: each record is a little-endian Int32
/// dimension followed by that many Float32, UInt8 or Int32 components.
public enum VecsFormat: String, Sendable, CaseIterable {
    case fvecs, bvecs, ivecs

    /// Bytes per component.
    public var componentSize: Int { self == .bvecs ? 1 : 4 }

    /// The format named by a file's extension.
    public init?(path: FilePath) {
        guard let ext = path.extension?.lowercased(), let format = VecsFormat(rawValue: ext) else { return nil }
        self = format
    }
}

/// Streams records of a vecs file. A truncated record or a record whose dimension differs from
/// the first is an error naming the record and its byte offset.
public struct VecsReader {
    public let path: FilePath
    public let format: VecsFormat
    public let dimension: Int
    public let recordCount: Int
    private let fd: FileDescriptorBox
    private var nextRecord = 0
    private var buffer: [UInt8] = []

    public init(path: FilePath, format: VecsFormat? = nil) throws(IngestError) {
        self.path = path
        guard let format = format ?? VecsFormat(path: path) else {
            throw IngestError(.unsupportedFormat, "\(path): cannot tell the vecs format from the extension (fvecs, bvecs, ivecs)")
        }
        self.format = format
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch {
            throw IngestError(.missingInput, "cannot open \(path): \(error)")
        }
        fd = FileDescriptorBox(descriptor)
        let size: Int
        var head = [UInt8](repeating: 0, count: 4)
        do {
            size = try descriptor.fileSize()
            if size > 0 {
                let n = try head.withUnsafeMutableBytes { try descriptor.read(fromAbsoluteOffset: 0, into: $0) }
                guard n == 4 else { throw IngestError(.malformedInput, "\(path): truncated in the first record's header") }
            }
        } catch let error as IngestError {
            throw error
        } catch {
            throw IngestError(.missingInput, "cannot read \(path): \(error)")
        }
        guard size > 0 else {
            dimension = 0
            recordCount = 0
            return
        }
        let d = head.withUnsafeBytes { Int(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) }
        guard (1...EmbeddingContract.maximumDimension).contains(d) else {
            throw IngestError(.malformedInput, "\(path): record 0 at offset 0 declares dimension \(d)")
        }
        dimension = d
        let recordSize = 4 + d * format.componentSize
        guard size % recordSize == 0 else {
            throw IngestError(
                .malformedInput,
                "\(path): size \(size) is not a whole number of \(recordSize)-byte records (dimension \(d)); the last record at offset \(size / recordSize * recordSize) is truncated")
        }
        recordCount = size / recordSize
    }

    public var recordSize: Int { 4 + dimension * format.componentSize }
    public var recordsRead: Int { nextRecord }

    /// Reads up to `maxRecords` records, calling `body` with each record's index and its
    /// components as raw little-endian bytes. Returns how many were read.
    public mutating func read(
        maxRecords: Int, _ body: (Int, UnsafeRawBufferPointer) throws(IngestError) -> Void
    ) throws(IngestError) -> Int {
        let count = min(maxRecords, recordCount - nextRecord)
        guard count > 0 else { return 0 }
        let bytes = count * recordSize
        if buffer.count < bytes { buffer = [UInt8](repeating: 0, count: bytes) }
        let offset = Int64(nextRecord) * Int64(recordSize)
        let descriptor = fd.descriptor
        let path = self.path
        let got: Int
        do {
            got = try buffer.withUnsafeMutableBytes { raw in
                var done = 0
                while done < bytes {
                    let n = try descriptor.read(
                        fromAbsoluteOffset: offset + Int64(done),
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<bytes]))
                    if n == 0 { break }
                    done += n
                }
                return done
            }
        } catch {
            throw IngestError(.malformedInput, "\(path): read failed at offset \(offset): \(error)")
        }
        guard got == bytes else {
            throw IngestError(.malformedInput, "\(path): file ended at offset \(offset + Int64(got)) inside record \(nextRecord + got / recordSize) (truncated)")
        }
        let recordSize = self.recordSize
        let dimension = self.dimension
        let first = nextRecord
        try buffer.withUnsafeBufferPointer { (typed) throws(IngestError) in
            let raw = UnsafeRawBufferPointer(typed)
            for i in 0..<count {
                let record = UnsafeRawBufferPointer(rebasing: raw[i * recordSize..<(i + 1) * recordSize])
                let d = Int(Int32(littleEndian: record.loadUnaligned(as: Int32.self)))
                guard d == dimension else {
                    throw IngestError(
                        .malformedInput,
                        "\(path): record \(first + i) at offset \(Int64(first + i) * Int64(recordSize)) has dimension \(d); the file's first record has \(dimension)")
                }
                try body(first + i, UnsafeRawBufferPointer(rebasing: record[4...]))
            }
        }
        nextRecord += count
        return count
    }
}

/// Closes the descriptor when the last copy of a reader goes away.
package final class FileDescriptorBox {
    package let descriptor: FileDescriptor
    package init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }
    deinit { try? descriptor.close() }
}

/// Whole-file helpers for query sets and ground truth, which are small.
public enum VecsFile {
    /// Reads every record of an fvecs or bvecs file as Float32.
    public static func readFloats(_ path: FilePath) throws(IngestError) -> (values: [Float], dimension: Int) {
        var reader = try VecsReader(path: path)
        guard reader.format != .ivecs else {
            throw IngestError(.unsupportedFormat, "\(path): ivecs holds integer ids (ground truth), not vectors")
        }
        let format = reader.format
        var values: [Float] = []
        values.reserveCapacity(reader.recordCount * reader.dimension)
        while try reader.read(maxRecords: 65_536, { (_, components) throws(IngestError) in
            switch format {
            case .fvecs:
                for i in 0..<components.count / 4 {
                    values.append(Float(bitPattern: UInt32(littleEndian: components.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))))
                }
            case .bvecs:
                for byte in components { values.append(Float(byte)) }
            case .ivecs:
                preconditionFailure("rejected above")
            }
        }) > 0 {}
        return (values, reader.dimension)
    }

    /// Reads every record of an ivecs file.
    public static func readInts(_ path: FilePath) throws(IngestError) -> (values: [Int32], dimension: Int) {
        var reader = try VecsReader(path: path, format: .ivecs)
        var values: [Int32] = []
        values.reserveCapacity(reader.recordCount * reader.dimension)
        while try reader.read(maxRecords: 65_536, { (_, components) throws(IngestError) in
            for i in 0..<components.count / 4 {
                values.append(Int32(littleEndian: components.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
            }
        }) > 0 {}
        return (values, reader.dimension)
    }

    /// Writes `values` (rows of `dimension` components) as fvecs, bvecs or ivecs.
    /// Components are converted with `Float`/`UInt8`/`Int32` semantics as the format needs.
    public static func write(_ values: [Float], dimension: Int, format: VecsFormat, to path: FilePath) throws(StorageError) {
        precondition(dimension > 0 && values.count % dimension == 0, "values are not whole rows")
        var out: [UInt8] = []
        out.reserveCapacity(values.count / dimension * (4 + dimension * format.componentSize))
        for row in 0..<values.count / dimension {
            out.appendLittleEndian(Int32(dimension))
            for x in values[row * dimension..<(row + 1) * dimension] {
                switch format {
                case .fvecs: out.appendLittleEndian(x.bitPattern)
                case .bvecs: out.append(UInt8(clamping: Int(x)))
                case .ivecs: out.appendLittleEndian(Int32(x))
                }
            }
        }
        try DurableFile.write(out, to: path)
    }

    /// Writes Int32 rows as ivecs.
    public static func write(_ values: [Int32], dimension: Int, to path: FilePath) throws(StorageError) {
        precondition(dimension > 0 && values.count % dimension == 0, "values are not whole rows")
        var out: [UInt8] = []
        out.reserveCapacity(values.count / dimension * (4 + dimension * 4))
        for row in 0..<values.count / dimension {
            out.appendLittleEndian(Int32(dimension))
            for x in values[row * dimension..<(row + 1) * dimension] { out.appendLittleEndian(x) }
        }
        try DurableFile.write(out, to: path)
    }
}
