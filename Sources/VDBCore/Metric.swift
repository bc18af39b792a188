/// How vectors are compared. Every index ranks by an internal distance where smaller is closer;
/// `reportedDistance(_:)` turns it into the number users see.
public enum Metric: String, Codable, Sendable, CaseIterable {
    /// Euclidean distance. Ranked by its square; reported as the Euclidean distance.
    case l2
    /// Cosine distance, 1 - cos(a, b). Vectors are stored unit length and ranked by inner product.
    case cosine
    /// Inner product; larger is closer. Ranked by its negation; reported as the negated product.
    case dot

    /// Parses our names and the ann-benchmarks `distance` attribute values.
    public init?(datasetName: String) {
        switch datasetName.lowercased() {
        case "l2", "euclidean": self = .l2
        case "cosine", "angular": self = .cosine
        case "dot", "ip", "inner_product", "innerproduct": self = .dot
        default: return nil
        }
    }

    /// The ann-benchmarks name of this metric.
    public var datasetName: String {
        switch self {
        case .l2: "euclidean"
        case .cosine: "angular"
        case .dot: "dot"
        }
    }

    /// Converts an internal ranking distance to the reported one.
    @inlinable
    public func reportedDistance(_ ranking: Float) -> Float {
        switch self {
        case .l2: ranking.squareRoot()
        case .cosine: 1 + ranking  // ranking = -dot, so 1 - cos
        case .dot: ranking
        }
    }

    /// Converts a reported distance back to the internal ranking distance.
    @inlinable
    public func internalDistance(_ reported: Float) -> Float {
        switch self {
        case .l2: reported * reported
        case .cosine: reported - 1
        case .dot: reported
        }
    }
}
