import Foundation
public import VDBCore

/// The chunk-metadata fields a library declares, with their types: written as
/// `{"category": "keyword", "year": "integer", "tags": "keyword[]"}`.
///
/// Declared fields are checked on every write (a value of another type is refused and nothing
/// is stored) and indexed in every segment (``MetadataIndex``): keyword postings, sorted
/// numeric and date-time columns. Fields the schema does not name stay filterable; filters
/// evaluate them on the stored metadata, row by row. A library's schema is fixed when the
/// library is created.
public struct MetadataSchema: Sendable, Hashable, Codable {
    public enum FieldType: String, Sendable, Hashable, Codable, CaseIterable {
        /// A string, matched exactly or by prefix, ordered as strings.
        case keyword
        /// A whole number within ±2^53.
        case integer
        /// Any JSON number.
        case float
        case bool
        /// An ISO-8601 date-time string (``DateTimeText``), ordered in time.
        case datetime
        /// An array of strings; `$contains` matches one of them.
        case keywordArray = "keyword[]"

        /// Whether the index keeps a term dictionary with postings (else a sorted column).
        public var hasTerms: Bool {
            switch self {
            case .keyword, .bool, .keywordArray: true
            case .integer, .float, .datetime: false
            }
        }
    }

    /// The most fields one schema may declare.
    public static let maximumFields = 64

    /// Field path (dotted, as filters write it) to type.
    public var fields: [String: FieldType]

    public init(fields: [String: FieldType] = [:]) {
        self.fields = fields
    }

    public var isEmpty: Bool { fields.isEmpty }

    /// Declared paths in sorted order (the order the index stores them in).
    public var paths: [String] { fields.keys.sorted() }

    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: FieldType].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }

    /// Parses a schema given as JSON (`{"field": "type", ...}`), naming the offending field.
    ///
    /// - Parameter pointer: where the schema sits in the request, for errors (a JSON Pointer).
    public static func parse(_ json: JSONValue, pointer: String = "/schema") throws(StorageError) -> MetadataSchema {
        guard case .object(let object) = json else {
            throw StorageError(.invalidArgument, "a schema is an object of field paths to types, such as {\"year\": \"integer\"}", field: pointer)
        }
        var fields: [String: FieldType] = [:]
        for (path, value) in object {
            let here = pointer + "/" + path.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            guard case .string(let name) = value, let type = FieldType(rawValue: name) else {
                let names = FieldType.allCases.map(\.rawValue).joined(separator: ", ")
                throw StorageError(.invalidArgument, "the type of field '\(path)' must be one of \(names)", field: here)
            }
            fields[path] = type
        }
        let schema = MetadataSchema(fields: fields)
        try schema.validate(pointer: pointer)
        return schema
    }

    /// Checks the field paths: dotted keys, none empty, not a built-in, at most
    /// ``maximumFields``, and no path declared inside another declared path.
    public func validate(pointer: String = "/schema") throws(StorageError) {
        guard fields.count <= Self.maximumFields else {
            throw StorageError(.invalidArgument, "the schema declares \(fields.count) fields; at most \(Self.maximumFields) are allowed", field: pointer)
        }
        for path in paths {
            let here = pointer + "/" + path.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            let keys = path.split(separator: ".", omittingEmptySubsequences: false)
            guard !keys.contains(where: \.isEmpty), !path.hasPrefix("$") else {
                throw StorageError(.invalidArgument, "'\(path)' is not a field path: keys separated by single dots", field: here)
            }
            guard path != "documentId", !path.hasPrefix("document.") else {
                throw StorageError(.invalidArgument, "'\(path)' names a built-in or the document's metadata; a schema declares chunk metadata fields", field: here)
            }
            if let outer = paths.first(where: { path.hasPrefix($0 + ".") }) {
                throw StorageError(.invalidArgument, "'\(path)' lies inside the declared field '\(outer)'", field: here)
            }
        }
    }

    /// The value at a dotted path of chunk metadata; JSON null counts as absent.
    ///
    /// Inlinable so that each caller's path type is specialised where it is called: filters
    /// evaluate it for every row of a part on every request, and the unspecialised generic,
    /// called from VDBEngine, spent most of its time looking up type metadata at run time
    /// (an undeclared-field filter over pypi-dev's 59k rows: 56 ms per request).
    @inlinable
    public static func value<Path: Sequence>(at path: Path, in metadata: JSONValue?) -> JSONValue? where Path.Element: StringProtocol {
        var current = metadata
        for key in path {
            guard case .object(let object)? = current, let next = object[String(key)] else { return nil }
            current = next
        }
        if case .null? = current { return nil }
        return current
    }

    /// Why `metadata` does not conform, or nil when it does. Absent (or null) fields conform.
    public func violation(in metadata: JSONValue?) -> String? {
        for path in paths {
            guard let value = Self.value(at: path.split(separator: "."), in: metadata) else { continue }
            if let problem = Self.violation(of: value, as: fields[path]!) { return "metadata field '\(path)' is declared \(fields[path]!.rawValue): \(problem)" }
        }
        return nil
    }

    static func violation(of value: JSONValue, as type: FieldType) -> String? {
        switch (type, value) {
        case (.keyword, .string), (.bool, .bool), (.float, .number): return nil
        case (.integer, .number(let n)):
            return n == n.rounded() && abs(n) <= 9_007_199_254_740_992 ? nil : "\(n) is not a whole number within ±2^53"
        case (.datetime, .string(let text)):
            return DateTimeText.parse(text) == nil ? "\"\(text)\" is not an ISO-8601 date-time" : nil
        case (.keywordArray, .array(let items)):
            return items.allSatisfy { if case .string = $0 { true } else { false } } ? nil : "expected an array of strings"
        default:
            return "got \(Self.kind(of: value))"
        }
    }

    static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
