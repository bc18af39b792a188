public import VDBCore
public import VDBKernels
/// The segment file format, version 2. All integers are little-endian.
///
/// A segment is immutable: written once under a temporary name, synchronised, renamed into
/// place, then only ever memory-mapped read-only.
///
/// Header (64 bytes):
///
/// | offset | size | field                                             |
/// |-------:|-----:|---------------------------------------------------|
/// |      0 |    8 | magic `56 44 42 53 45 47 0D 0A` ("VDBSEG\r\n")    |
/// |      8 |    4 | format version (2)                                 |
/// |     12 |    4 | section count                                     |
/// |     16 |    8 | row count                                         |
/// |     24 |    4 | dimension                                         |
/// |     28 |    4 | metric (0 l2, 1 cosine, 2 dot)                    |
/// |     32 |    8 | section table offset                              |
/// |     40 |    4 | CRC32C of the section table                       |
/// |     44 |   16 | reserved, zero                                    |
/// |     60 |    4 | CRC32C of bytes 0..<60                            |
///
/// Section table: `section count` entries of 32 bytes, at `section table offset`:
///
/// | offset | size | field                                   |
/// |-------:|-----:|-----------------------------------------|
/// |      0 |    4 | kind (``SegmentFormat/SectionKind``)    |
/// |      4 |    4 | CRC32C of the section's bytes           |
/// |      8 |    8 | offset of the section (64-byte aligned) |
/// |     16 |    8 | length in bytes                         |
/// |     24 |    4 | encoding (``SegmentFormat/Encoding``)   |
/// |     28 |    4 | reserved, zero                          |
///
/// Sections:
/// - `vectors`: `rows × dimension` Float32 (encoding `plain`) or IEEE binary16 (encoding
///   `float16`), row-major, contiguous, starting at byte 64.
/// - `chunkIDs`, `documentIDs`: `rows` entries of 16 bytes (low word, then high word).
/// - `texts`, `chunkMetadata`: blob lists with one blob per row (empty = none).
/// - `documents`: the segment's distinct document ids (16 bytes each), in first-seen order.
/// - `documentMetadata`: a blob list parallel to `documents`.
/// - `hnswGraph` (optional): the segment's HNSW graph (layout in ``HNSWGraph``).
/// - `sq8Codes` (optional): 8-bit codes the graph walk scores (layout in ``ScalarQuantizer``).
/// - `kdTree` (optional): a k-d tree over the rows (layout in ``KDTree``).
/// - `ivfpq` (optional): an IVF-PQ index (layout in ``IVFPQLayout``).
/// - `metadataIndex` (optional): postings and sorted columns of the chunk-metadata fields the
///   library's schema declares (layout in ``MetadataIndex``).
///
/// A blob list is `count: u64`, then `count + 1` offsets (u64, relative to the first blob byte,
/// non-decreasing, the last equal to the total), then the bytes. With encoding `zstdBlocks` the
/// blobs are grouped into blocks compressed one by one (layout in ``CompressedBlobList``), so
/// reading one blob decompresses one block. `texts`, `chunkMetadata` and `documentMetadata`
/// may use it.
///
/// Version 1 is version 2 with every encoding `plain` (its table entries hold zero there), so
/// it is read as is; `Tests/VDBKitTests/Fixtures/segment-v1.vdbseg` keeps one.
///
/// Readers skip section kinds they do not know (after checking their checksums), so a later
/// writer may add sections without a format version bump; changing a known section's layout
/// needs a new version and a migration.
public enum SegmentFormat {
    public static let magic: [UInt8] = [0x56, 0x44, 0x42, 0x53, 0x45, 0x47, 0x0D, 0x0A]
    public static let currentVersion: UInt32 = 2
    /// Versions this build opens (older ones are migrated on open).
    public static let readableVersions: ClosedRange<UInt32> = 1...2
    public static let headerSize = 64
    public static let sectionEntrySize = 32
    public static let alignment = 64
    /// Rows are addressed by `RowOffset` (UInt32).
    public static let maximumRows = Int(UInt32.max)

    public enum SectionKind: UInt32, Sendable, CaseIterable, CustomStringConvertible {
        case vectors = 1
        case chunkIDs = 2
        case documentIDs = 3
        case texts = 4
        case chunkMetadata = 5
        case documents = 6
        case documentMetadata = 7
        /// An HNSW graph over the rows (``HNSWGraph`` documents its layout).
        case hnswGraph = 16
        /// 8-bit scalar-quantized codes of the rows (``ScalarQuantizer`` documents the layout).
        case sq8Codes = 17
        /// A k-d tree over the rows (``KDTree`` documents the layout).
        case kdTree = 18
        /// An IVF-PQ index over the rows (``IVFPQLayout`` documents the layout).
        case ivfpq = 19
        /// Postings and sorted columns of the declared metadata fields (``MetadataIndex``).
        case metadataIndex = 20

        public var description: String {
            switch self {
            case .vectors: "vectors"
            case .chunkIDs: "chunk ids"
            case .documentIDs: "document ids"
            case .texts: "texts"
            case .chunkMetadata: "chunk metadata"
            case .documents: "documents"
            case .documentMetadata: "document metadata"
            case .hnswGraph: "hnsw graph"
            case .sq8Codes: "sq8 codes"
            case .kdTree: "kd tree"
            case .ivfpq: "ivf-pq"
            case .metadataIndex: "metadata index"
            }
        }
    }

    /// How a section's bytes are encoded.
    public enum Encoding: UInt32, Sendable {
        /// The layout the section kind documents.
        case plain = 0
        /// A blob list compressed with zstd in independently readable blocks.
        case zstdBlocks = 1
        /// Vectors as IEEE 754 binary16.
        case float16 = 2
    }

    static func metricCode(_ metric: Metric) -> UInt32 {
        switch metric {
        case .l2: 0
        case .cosine: 1
        case .dot: 2
        }
    }

    static func metric(code: UInt32) -> Metric? {
        switch code {
        case 0: .l2
        case 1: .cosine
        case 2: .dot
        default: nil
        }
    }

    package static func aligned(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }
}

#if _endian(big)
#error("The segment format is little-endian and read in place; big-endian hosts are not supported.")
#endif

/// Little-endian appends into a byte array.
extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func append(_ id: (high: UInt64, low: UInt64)) {
        appendLittleEndian(id.low)
        appendLittleEndian(id.high)
    }
}

extension UnsafeRawBufferPointer {
    package func loadLittleEndian<T: FixedWidthInteger>(at offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
