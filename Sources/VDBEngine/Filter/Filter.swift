public import VDBCore
public import Foundation

/// A metadata filter of a search, parsed and type-checked once per query
/// (``Filter/parse(_:pointer:)``), in the operator syntax of Pinecone, Chroma and MongoDB:
///
/// ```json
/// {"$and": [{"category": {"$eq": "legal"}}, {"year": {"$gte": 2020}},
///           {"$not": {"tags": {"$contains": "draft"}}}]}
/// ```
///
/// Fields are paths into a chunk's metadata (`category`, nested `a.b`) or the built-in
/// `documentId`. A chunk without the field matches only `$ne`, `$nin` and `$exists: false`.
public indirect enum Filter: Sendable, Hashable {
    case and([Filter])
    case or([Filter])
    case not(Filter)
    case field(FieldPath, Condition)

    /// What a filter field names.
    public enum FieldPath: Sendable, Hashable, CustomStringConvertible {
        /// Keys into the chunk's metadata object, outermost first.
        case chunk([String])
        /// The chunk's document id.
        case documentID

        public var description: String {
            switch self {
            case .chunk(let keys): keys.joined(separator: ".")
            case .documentID: "documentId"
            }
        }
    }

    /// A value a filter compares with.
    public enum Scalar: Sendable, Hashable {
        case number(Double)
        case string(String)
        case bool(Bool)
        /// An ISO-8601 date-time, the operand of an ordered comparison (`$gt` … `$lte`), compared
        /// in time with stored strings that are date-times. Equality compares strings as given.
        case datetime(Date)
    }

    /// One operator with its operand.
    public enum Condition: Sendable, Hashable {
        case eq(Scalar), ne(Scalar), gt(Scalar), gte(Scalar), lt(Scalar), lte(Scalar)
        case `in`([Scalar]), nin([Scalar])
        case exists(Bool)
        /// An array field holds the value.
        case contains(Scalar)
        case startsWith(String)
    }

    /// Whether a chunk with this metadata and document matches.
    public func matches(metadata: JSONValue?, document: DocumentID) -> Bool {
        switch self {
        case .and(let parts): return parts.allSatisfy { $0.matches(metadata: metadata, document: document) }
        case .or(let parts): return parts.contains { $0.matches(metadata: metadata, document: document) }
        case .not(let inner): return !inner.matches(metadata: metadata, document: document)
        case .field(let path, let condition):
            let value: JSONValue?
            switch path {
            case .documentID: value = .string(document.description)
            case .chunk(let keys): value = Self.lookup(keys, in: metadata)
            }
            return condition.holds(for: value)
        }
    }

    static func lookup(_ keys: [String], in metadata: JSONValue?) -> JSONValue? {
        var current = metadata
        for key in keys {
            guard case .object(let object)? = current, let next = object[key] else { return nil }
            current = next
        }
        if case .null? = current { return nil }
        return current
    }

    /// How many comparisons the filter holds (its size, for limits).
    public var clauseCount: Int {
        switch self {
        case .and(let parts), .or(let parts): 1 + parts.reduce(0) { $0 + $1.clauseCount }
        case .not(let inner): 1 + inner.clauseCount
        case .field: 1
        }
    }
}

extension Filter.Condition {
    /// Whether a stored value (nil: the field is absent) satisfies the condition.
    func holds(for value: JSONValue?) -> Bool {
        switch self {
        case .exists(let wanted): return (value != nil) == wanted
        case .eq(let s): return value.map { Self.equal($0, s) } ?? false
        case .ne(let s): return !(value.map { Self.equal($0, s) } ?? false)
        case .in(let list): return value.map { v in list.contains { Self.equal(v, $0) } } ?? false
        case .nin(let list): return !(value.map { v in list.contains { Self.equal(v, $0) } } ?? false)
        case .gt(let s): return Self.order(value, s).map { $0 > 0 } ?? false
        case .gte(let s): return Self.order(value, s).map { $0 >= 0 } ?? false
        case .lt(let s): return Self.order(value, s).map { $0 < 0 } ?? false
        case .lte(let s): return Self.order(value, s).map { $0 <= 0 } ?? false
        case .contains(let s):
            guard case .array(let items)? = value else { return false }
            return items.contains { Self.equal($0, s) }
        case .startsWith(let prefix):
            guard case .string(let text)? = value else { return false }
            return text.hasPrefix(prefix)
        }
    }

    static func equal(_ value: JSONValue, _ scalar: Filter.Scalar) -> Bool {
        switch (value, scalar) {
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        default: return false
        }
    }

    /// The sign of value − scalar, or nil when they are not of one ordered type.
    static func order(_ value: JSONValue?, _ scalar: Filter.Scalar) -> Int? {
        switch (value, scalar) {
        case (.number(let a)?, .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .string(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .datetime(let b)):
            guard let date = Filter.parseDate(a) else { return nil }
            return date < b ? -1 : (date > b ? 1 : 0)
        default: return nil
        }
    }
}

extension Filter {
    /// Parses an ISO-8601 date-time (`2024-03-01T00:00:00Z`, with or without fractional
    /// seconds) or a date (`2024-03-01`, midnight UTC); nil for anything else.
    static func parseDate(_ text: String) -> Date? {
        guard text.count >= 10, let first = text.utf8.first, (0x30...0x39).contains(first) else { return nil }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        if text.count == 10, let date = try? Date(text + "T00:00:00Z", strategy: .iso8601) { return date }
        return nil
    }
}
