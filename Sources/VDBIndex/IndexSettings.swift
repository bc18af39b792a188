public import VDBCore
public import VDBStorage

/// Which index answers a library's queries, with its parameters: one case per index family.
///
/// Stored in the manifest (and reported over REST) in the flat JSON form every earlier version
/// wrote, `{"type": "hnsw", "hnsw": {...}}`, `{"type": "auto", "hnsw": {...}, "autoThreshold": N}`,
/// `{"type": "kdtree", "leafSize": N}`, `{"type": "ivfpq", "ivfpq": {...}}`, `{"type": "flat"}`,
/// so old manifests read unchanged (a fixture test keeps them readable).
public enum IndexSettings: Sendable, Hashable {
    /// Exact scan of every row.
    case flat
    /// An HNSW graph in every segment.
    case hnsw(HNSWParameters)
    /// A k-d tree in every segment (low dimensions, l2 or cosine).
    case kdtree(KDTreeParameters)
    /// IVF-PQ in every segment (compressed).
    case ivfpq(IVFPQParameters)
    /// An HNSW graph in segments of at least `threshold` rows, flat search below.
    case auto(AutoIndexParameters)

    /// The type name users write (`--type`, `"type"`).
    public var typeName: String {
        switch self {
        case .flat: "flat"
        case .hnsw: "hnsw"
        case .kdtree: "kdtree"
        case .ivfpq: "ivfpq"
        case .auto: "auto"
        }
    }

    /// Every type name, in the order help texts list them.
    public static let typeNames = ["flat", "hnsw", "kdtree", "ivfpq", "auto"]

    /// The settings of a type with default parameters; nil for an unknown name.
    public init?(typeName: String) {
        switch typeName {
        case "flat": self = .flat
        case "hnsw": self = .hnsw(HNSWParameters())
        case "kdtree": self = .kdtree(KDTreeParameters())
        case "ivfpq": self = .ivfpq(IVFPQParameters())
        case "auto": self = .auto(AutoIndexParameters())
        default: return nil
        }
    }

    /// The HNSW parameters, for the cases that build graphs.
    public var hnswParameters: HNSWParameters? {
        switch self {
        case .hnsw(let p): p
        case .auto(let p): p.hnsw
        default: nil
        }
    }

    /// The family that indexes a segment of `rows` rows under these settings.
    public func family(forRows rows: Int) -> any IndexFamily {
        switch self {
        case .flat: FlatFamily()
        case .hnsw(let p): HNSWFamily(parameters: p)
        case .kdtree(let p): KDTreeFamily(parameters: p)
        case .ivfpq(let p): IVFPQFamily(parameters: p)
        case .auto(let p): rows >= p.threshold ? HNSWFamily(parameters: p.hnsw) : FlatFamily()
        }
    }

    /// The family whose index these settings put in segments (under `auto`, HNSW: segments
    /// below the threshold carry none and are scanned).
    var indexingFamily: any IndexFamily {
        if case .auto(let p) = self { return HNSWFamily(parameters: p.hnsw) }
        return family(forRows: .max)
    }

    /// The index a segment is searched with: the settings' family when the segment carries its
    /// index (under `auto`, any segment with a graph), flat search otherwise.
    public func openIndex(for segment: Segment) throws -> any VectorIndex {
        let family = indexingFamily
        return family.isPresent(in: segment) ? try family.open(segment) : try FlatFamily().open(segment)
    }

    /// Checks the parameters, and that the family can serve a library of this metric.
    public func validate(for metric: Metric) throws(IndexError) {
        if case .auto(let p) = self, p.threshold < 0 {
            throw IndexError(.invalidParameter, "the auto threshold must not be negative, not \(p.threshold)")
        }
        let family = indexingFamily
        try family.validate()
        guard family.supports(metric) else {
            throw IndexError(.unsupported, "a \(family.kind.rawValue) index cannot serve metric \(metric.rawValue): \(family.unsupportedReason)")
        }
    }
}

/// Parameters of a k-d tree.
public struct KDTreeParameters: Sendable, Hashable, Codable {
    /// Rows per leaf bucket.
    public var leafSize: Int

    public init(leafSize: Int = 32) { self.leafSize = leafSize }

    public func validate() throws(IndexError) {
        guard (1...65_536).contains(leafSize) else { throw IndexError(.invalidParameter, "the leaf size must be in 1...65536, not \(leafSize)") }
    }
}

/// Parameters of the `auto` index: HNSW from a segment size on, flat below.
public struct AutoIndexParameters: Sendable, Hashable, Codable {
    public var hnsw: HNSWParameters
    /// Segments with at least this many rows get a graph; flat search is as fast below.
    public var threshold: Int

    public static let defaultThreshold = 10_000

    public init(hnsw: HNSWParameters = HNSWParameters(), threshold: Int = AutoIndexParameters.defaultThreshold) {
        self.hnsw = hnsw
        self.threshold = threshold
    }
}

extension IndexSettings: Codable {
    private enum CodingKeys: String, CodingKey {
        case type, hnsw, autoThreshold, leafSize, ivfpq
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "flat":
            self = .flat
        case "hnsw":
            self = .hnsw(try container.decodeIfPresent(HNSWParameters.self, forKey: .hnsw) ?? HNSWParameters())
        case "auto":
            self = .auto(AutoIndexParameters(
                hnsw: try container.decodeIfPresent(HNSWParameters.self, forKey: .hnsw) ?? HNSWParameters(),
                threshold: try container.decodeIfPresent(Int.self, forKey: .autoThreshold) ?? AutoIndexParameters.defaultThreshold))
        case "kdtree":
            self = .kdtree(KDTreeParameters(leafSize: try container.decodeIfPresent(Int.self, forKey: .leafSize) ?? 32))
        case "ivfpq":
            self = .ivfpq(try container.decodeIfPresent(IVFPQParameters.self, forKey: .ivfpq) ?? IVFPQParameters())
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container,
                debugDescription: "unknown index type '\(type)'; this build knows \(Self.typeNames.joined(separator: ", "))")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(typeName, forKey: .type)
        switch self {
        case .flat: break
        case .hnsw(let p): try container.encode(p, forKey: .hnsw)
        case .auto(let p):
            try container.encode(p.hnsw, forKey: .hnsw)
            try container.encode(p.threshold, forKey: .autoThreshold)
        case .kdtree(let p): try container.encode(p.leafSize, forKey: .leafSize)
        case .ivfpq(let p): try container.encode(p, forKey: .ivfpq)
        }
    }
}
