public import VDBCore
import VDBStorage
public import Foundation

/// A metadata filter of a search, parsed and type-checked once per query
/// (``Filter/parse(_:pointer:)``), in the operator syntax of Pinecone, Chroma and MongoDB:
///
/// ```json
/// {"$and": [{"category": {"$eq": "legal"}}, {"year": {"$gte": 2020}},
///           {"$not": {"tags": {"$contains": "draft"}}}]}
/// ```
///
/// Fields are paths into a chunk's metadata (`category`, nested `a.b`), into its document's
/// metadata (`document.author`), or the built-in `documentId`. A chunk without the field
/// matches only `$ne`, `$nin` and `$exists: false`.
///
/// ``matches(metadata:document:documentMetadata:)`` is the plain evaluator, one row at a
/// time; searches use ``FilterEvaluator``, which answers clauses on declared fields from a
/// segment's postings and must agree with it row for row.
public indirect enum Filter: Sendable, Hashable {
    case and([Filter])
    case or([Filter])
    case not(Filter)
    case field(FieldPath, Condition)

    /// What a filter field names.
    public enum FieldPath: Sendable, Hashable, CustomStringConvertible {
        /// Keys into the chunk's metadata object, outermost first.
        case chunk([String])
        /// Keys into the metadata of the chunk's document (`document.<key>`).
        case document([String])
        /// The chunk's document id.
        case documentID

        public var description: String {
            switch self {
            case .chunk(let keys): keys.joined(separator: ".")
            case .document(let keys): "document." + keys.joined(separator: ".")
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

    /// Whether a chunk with this metadata and document matches (the plain evaluator).
    ///
    /// - Parameter documentMetadata: the document's metadata, asked for only by
    ///   `document.<key>` clauses.
    public func matches(metadata: JSONValue?, document: DocumentID, documentMetadata: () -> JSONValue? = { nil }) -> Bool {
        switch self {
        case .and(let parts): return parts.allSatisfy { $0.matches(metadata: metadata, document: document, documentMetadata: documentMetadata) }
        case .or(let parts): return parts.contains { $0.matches(metadata: metadata, document: document, documentMetadata: documentMetadata) }
        case .not(let inner): return !inner.matches(metadata: metadata, document: document, documentMetadata: documentMetadata)
        case .field(.documentID, let condition): return condition.holds(forDocument: document)
        case .field(.chunk(let keys), let condition): return condition.holds(for: Self.lookup(keys, in: metadata))
        case .field(.document(let keys), let condition): return condition.holds(for: Self.lookup(keys, in: documentMetadata()))
        }
    }

    static func lookup(_ keys: [String], in metadata: JSONValue?) -> JSONValue? {
        MetadataSchema.value(at: keys, in: metadata)
    }

    /// Whether some clause reads document metadata.
    public var readsDocumentMetadata: Bool {
        switch self {
        case .and(let parts), .or(let parts): parts.contains(where: \.readsDocumentMetadata)
        case .not(let inner): inner.readsDocumentMetadata
        case .field(.document, _): true
        case .field: false
        }
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

    /// Whether the condition holds for a chunk of `document` (`documentId` clauses take
    /// `$eq $ne $in $nin`; operands are compared as ids, so any spelling of one id matches).
    func holds(forDocument document: DocumentID) -> Bool {
        switch self {
        case .eq(let s): return Self.names(document, s)
        case .ne(let s): return !Self.names(document, s)
        case .in(let list): return list.contains { Self.names(document, $0) }
        case .nin(let list): return !list.contains { Self.names(document, $0) }
        default: return false
        }
    }

    static func names(_ document: DocumentID, _ scalar: Filter.Scalar) -> Bool {
        guard case .string(let text) = scalar else { return false }
        return DocumentID(text) == document
    }

    static func equal(_ value: JSONValue, _ scalar: Filter.Scalar) -> Bool {
        switch (value, scalar) {
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        // A datetime operand (a declared datetime field) compares instants.
        case (.string(let a), .datetime(let b)): return DateTimeText.parse(a) == b
        default: return false
        }
    }

    /// The sign of value − scalar, or nil when they are not of one ordered type.
    static func order(_ value: JSONValue?, _ scalar: Filter.Scalar) -> Int? {
        switch (value, scalar) {
        case (.number(let a)?, .number(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .string(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .datetime(let b)):
            guard let date = DateTimeText.parse(a) else { return nil }
            return date < b ? -1 : (date > b ? 1 : 0)
        default: return nil
        }
    }
}
