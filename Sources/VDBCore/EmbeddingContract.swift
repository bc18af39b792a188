/// What every vector of a library must satisfy: fixed when the library is created and never
/// changed. A vector that breaks it is refused with an error naming the contract.
public struct EmbeddingContract: Codable, Hashable, Sendable, CustomStringConvertible {
    public var dimension: Int
    public var metric: Metric
    /// Whether vectors are scaled to unit length before they are stored. Always true for cosine.
    public var normalized: Bool
    /// The embedding model's name, when known.
    public var model: String?

    /// - Precondition: none; `validate()` reports bad values as errors.
    public init(dimension: Int, metric: Metric, normalized: Bool? = nil, model: String? = nil) {
        self.dimension = dimension
        self.metric = metric
        self.normalized = normalized ?? (metric == .cosine)
        self.model = model
    }

    /// The largest dimension we accept; beyond it a typo is likelier than a real model.
    public static let maximumDimension = 65_536

    public var description: String {
        var s = "dimension \(dimension), metric \(metric.rawValue)"
        if normalized { s += ", normalized" }
        if let model { s += ", model \(model)" }
        return s
    }

    /// Checks the contract itself.
    public func validate() throws(IngestError) {
        guard (1...Self.maximumDimension).contains(dimension) else {
            throw IngestError(.invalidContract, "dimension \(dimension) is outside 1...\(Self.maximumDimension)")
        }
        if metric == .cosine && !normalized {
            throw IngestError(.invalidContract, "a cosine library stores unit vectors; normalized must be true")
        }
    }

    /// Validates `vector` against the contract and, when the contract normalizes, scales it to
    /// unit length in place. This is the one place normalization happens, for stored vectors
    /// and queries alike.
    ///
    /// - Parameter what: names the vector in errors ("row 17", "query 3").
    public func prepare(_ vector: UnsafeMutableBufferPointer<Float>, what: @autoclosure () -> String)
        throws(IngestError)
    {
        guard vector.count == dimension else {
            throw IngestError(
                .dimensionMismatch,
                "\(what()) has \(vector.count) components but the library's contract is \(self)")
        }
        // In Double: a float32 sum of squares overflows long before the vector is unusable.
        var squaredNorm: Double = 0
        for (i, x) in vector.enumerated() {
            guard x.isFinite else {
                throw IngestError(
                    .nonFiniteValue, "\(what()) has a non-finite value (\(x)) at component \(i); contract: \(self)")
            }
            squaredNorm += Double(x) * Double(x)
        }
        if normalized {
            guard squaredNorm > 0 else {
                throw IngestError(.zeroVector, "\(what()) has zero length and cannot be normalized; contract: \(self)")
            }
            // Scaled in Double too: the inverse length of a tiny vector can exceed Float's range.
            let scale = 1 / squaredNorm.squareRoot()
            for i in vector.indices { vector[i] = Float(Double(vector[i]) * scale) }
            return
        }
        // Any two vectors inside this bound have a finite float32 distance under every metric
        // (|a - b|² ≤ 4·max(|a|², |b|²)); past it a search would rank infinities and NaNs.
        guard squaredNorm <= Self.largestSquaredNorm else {
            throw IngestError(
                .vectorOutOfRange,
                "\(what()) has length \(Float(squaredNorm.squareRoot())), past the largest a distance can be computed for (\(Float(Self.largestSquaredNorm.squareRoot()))); contract: \(self)")
        }
    }

    /// The largest squared length an unnormalized vector may have.
    public static let largestSquaredNorm = Double(Float.greatestFiniteMagnitude) / 8

    /// Array convenience over ``prepare(_:what:)``.
    public func prepared(_ vector: [Float], what: @autoclosure () -> String) throws(IngestError) -> [Float] {
        var v = vector
        let name = what()
        try v.withUnsafeMutableBufferPointer { (buffer) throws(IngestError) in
            try prepare(buffer, what: name)
        }
        return v
    }
}
