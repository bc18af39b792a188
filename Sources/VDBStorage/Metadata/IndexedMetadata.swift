public import VDBCore

/// Which terms of a keyword field a filter clause selects.
public enum TermSelection: Sendable, Hashable {
    case equal(String)
    case anyOf([String])
    /// Terms between two bounds in string order (nil: unbounded).
    case range(lower: String?, lowerInclusive: Bool, upper: String?, upperInclusive: Bool)
    case prefix(String)

    func selects(_ term: String) -> Bool {
        switch self {
        case .equal(let value): return term == value
        case .anyOf(let values): return values.contains(term)
        case .prefix(let prefix): return term.hasPrefix(prefix)
        case .range(let lower, let lowerInclusive, let upper, let upperInclusive):
            if let lower, lowerInclusive ? term < lower : term <= lower { return false }
            if let upper, upperInclusive ? term > upper : term >= upper { return false }
            return true
        }
    }
}

/// An interval of numbers (a date-time is its seconds since 2001-01-01, as `Date` keeps it).
public struct NumberRange: Sendable, Hashable {
    public var lower: Double
    public var lowerInclusive: Bool
    public var upper: Double
    public var upperInclusive: Bool

    public init(lower: Double = -.infinity, lowerInclusive: Bool = true, upper: Double = .infinity, upperInclusive: Bool = true) {
        self.lower = lower
        self.lowerInclusive = lowerInclusive
        self.upper = upper
        self.upperInclusive = upperInclusive
    }

    public static func exactly(_ value: Double) -> NumberRange { NumberRange(lower: value, upper: value) }

    @inline(__always)
    func contains(_ value: Double) -> Bool {
        (lowerInclusive ? value >= lower : value > lower) && (upperInclusive ? value <= upper : value < upper)
    }
}

/// Rows of one part (a segment, or the unflushed delta) found through its indexed metadata:
/// what filters use instead of decoding every row's metadata. Implemented by a segment's
/// ``MetadataIndex`` and by the delta's in-memory ``DeltaMetadataIndex``.
public protocol IndexedMetadata {
    /// The type of a declared field, or nil when the path is not indexed here.
    func type(of path: String) -> MetadataSchema.FieldType?
    /// Adds the rows holding a selected term (for `keyword[]`: holding it in the array).
    func addRows(_ path: String, terms: TermSelection, to set: inout RowSet)
    /// Adds the rows whose number (or date-time) lies in `range`.
    func addRows(_ path: String, numbers: NumberRange, to set: inout RowSet)
    /// Adds the rows where the field is present.
    func addPresentRows(_ path: String, to set: inout RowSet)
}

extension MetadataSchema.FieldType {
    /// The stored code of the type.
    var code: UInt8 {
        switch self {
        case .keyword: 0
        case .integer: 1
        case .float: 2
        case .bool: 3
        case .datetime: 4
        case .keywordArray: 5
        }
    }

    init?(code: UInt8) {
        guard let type = Self.allCases.first(where: { $0.code == code }) else { return nil }
        self = type
    }

    /// The terms a value contributes to a term field (a conforming value; others add none).
    func terms(of value: JSONValue) -> [String] {
        switch value {
        case .string(let text): return [text]
        case .bool(let flag): return [flag ? "true" : "false"]
        case .array(let items):
            var seen = Set<String>()
            return items.compactMap { if case .string(let s) = $0, seen.insert(s).inserted { s } else { nil } }
        default: return []
        }
    }

    /// The number a value contributes to a column field, or nil.
    func number(of value: JSONValue) -> Double? {
        switch (self, value) {
        case (.integer, .number(let n)), (.float, .number(let n)): n
        case (.datetime, .string(let text)): DateTimeText.parse(text)?.timeIntervalSinceReferenceDate
        default: nil
        }
    }
}
