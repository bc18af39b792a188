/// Bytes on disk and in memory per section kind, summed over segments: how much a library
/// costs, and what its queries actually touch.
public struct SectionUsage: Sendable, Codable, Hashable {
    /// The section kind ("vectors", "texts", "ivf-pq", ...), or "decoded float16 vectors" for the
    /// float32 copies float16 segments make for flat, HNSW and k-d tree searches.
    public var section: String
    /// How it is stored: plain, zstd-blocks, float16 (or "memory" for process-owned copies).
    public var encoding: String
    public var segments: Int
    public var bytesOnDisk: Int
    /// Bytes of the section's mapped pages in memory now (mincore), or of the process-owned copy.
    public var residentBytes: Int

    public init(section: String, encoding: String, segments: Int, bytesOnDisk: Int, residentBytes: Int) {
        self.section = section
        self.encoding = encoding
        self.segments = segments
        self.bytesOnDisk = bytesOnDisk
        self.residentBytes = residentBytes
    }
}

extension SegmentFormat.Encoding {
    public var name: String {
        switch self {
        case .plain: "plain"
        case .zstdBlocks: "zstd-blocks"
        case .float16: "float16"
        }
    }
}

public enum StorageUsage {
    /// Usage per (section kind, encoding) over `segments`, in first-seen order.
    public static func sections(of segments: [Segment]) -> [SectionUsage] {
        var order: [String] = []
        var usage: [String: SectionUsage] = [:]
        func add(_ name: String, _ encoding: String, disk: Int, resident: Int) {
            let key = name + "\u{0}" + encoding
            if usage[key] == nil {
                order.append(key)
                usage[key] = SectionUsage(section: name, encoding: encoding, segments: 0, bytesOnDisk: 0, residentBytes: 0)
            }
            usage[key]!.segments += 1
            usage[key]!.bytesOnDisk += disk
            usage[key]!.residentBytes += resident
        }
        for segment in segments {
            for extent in segment.sections {
                add(extent.name, extent.encoding.name, disk: extent.length,
                    resident: segment.file.residentBytes(offset: extent.offset, length: extent.length))
            }
            let decoded = segment.decodedVectorBytes
            if decoded > 0 { add("decoded float16 vectors", "memory", disk: 0, resident: decoded) }
        }
        return order.map { usage[$0]! }
    }
}
