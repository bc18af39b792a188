public import VDBCore
public import VDBStorage

extension Filter {
    /// The most comparisons and boolean operators one filter may hold.
    public static let maximumClauses = 64
    /// The deepest nesting of `$and`, `$or` and `$not`.
    public static let maximumDepth = 8
    /// The most values one `$in` or `$nin` may list.
    public static let maximumListLength = 1_024

    /// Parses and type-checks a filter given as JSON.
    ///
    /// - Parameters:
    ///   - pointer: where the filter sits in the request (a JSON Pointer such as `/filter`);
    ///     errors point below it at the offending part.
    ///   - schema: the library's declared fields: an operand of another type than its field's,
    ///     or an operator the type does not have, is an error; datetime operands are compared
    ///     as instants.
    /// - Throws: `QueryError.invalidArgument` whose `field` is the JSON Pointer of the
    ///   offending part and whose message says what was expected.
    public static func parse(_ json: JSONValue, pointer: String = "/filter", schema: MetadataSchema = MetadataSchema()) throws(QueryError) -> Filter {
        var parser = FilterParser(schema: schema)
        let filter = try parser.node(json, pointer, depth: 1)
        guard filter.clauseCount <= maximumClauses else {
            throw QueryError(.invalidArgument, "the filter has \(filter.clauseCount) clauses; at most \(maximumClauses) are allowed", field: pointer)
        }
        return filter
    }
}

/// The recursive descent behind ``Filter/parse(_:pointer:)``.
struct FilterParser {
    let schema: MetadataSchema
    static let comparisons: Set<String> = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$startsWith"]

    func fail(_ pointer: String, _ message: String) -> QueryError {
        QueryError(.invalidArgument, message, field: pointer)
    }

    static func escape(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    mutating func node(_ json: JSONValue, _ pointer: String, depth: Int) throws(QueryError) -> Filter {
        guard depth <= Filter.maximumDepth else {
            throw fail(pointer, "the filter nests deeper than \(Filter.maximumDepth) levels")
        }
        guard case .object(let object) = json else { throw fail(pointer, "expected an object such as {\"field\": {\"$eq\": value}}") }
        guard !object.isEmpty else { throw fail(pointer, "an empty filter object; give at least one field or operator") }
        var parts: [Filter] = []
        for key in object.keys.sorted() {
            let value = object[key]!
            let here = pointer + "/" + Self.escape(key)
            switch key {
            case "$and", "$or":
                guard case .array(let items) = value, !items.isEmpty else { throw fail(here, "\(key) takes a non-empty array of filters") }
                var children: [Filter] = []
                for (i, item) in items.enumerated() { children.append(try node(item, here + "/\(i)", depth: depth + 1)) }
                parts.append(key == "$and" ? .and(children) : .or(children))
            case "$not":
                parts.append(.not(try node(value, here, depth: depth + 1)))
            default:
                if key.hasPrefix("$") {
                    let hint = Self.comparisons.contains(key) ? "; \(key) applies to a field: {\"field\": {\"\(key)\": …}}" : ""
                    throw fail(here, "unknown operator '\(key)': use $and, $or or $not here\(hint)")
                }
                parts.append(try field(key, value, here))
            }
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    func path(_ key: String, _ pointer: String) throws(QueryError) -> Filter.FieldPath {
        if key == "documentId" { return .documentID }
        let isDocument = key.hasPrefix("document.")
        let keys = key.dropFirst(isDocument ? "document.".count : 0).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.contains(where: \.isEmpty) else { throw fail(pointer, "'\(key)' is not a field path: keys separated by single dots") }
        return isDocument ? .document(keys) : .chunk(keys)
    }

    func field(_ key: String, _ value: JSONValue, _ pointer: String) throws(QueryError) -> Filter {
        let path = try path(key, pointer)
        switch value {
        case .object(let operators):
            guard !operators.isEmpty else { throw fail(pointer, "an empty condition; give an operator such as {\"$eq\": value}") }
            var conditions: [Filter] = []
            for op in operators.keys.sorted() {
                let here = pointer + "/" + Self.escape(op)
                guard op.hasPrefix("$") else {
                    throw fail(here, "expected an operator ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $contains, $startsWith), not '\(op)'; nested fields are written as dotted paths ('\(key).\(op)')")
                }
                conditions.append(.field(path, try condition(op, operators[op]!, here, path: path)))
            }
            return conditions.count == 1 ? conditions[0] : .and(conditions)
        default:
            // A bare value means $eq.
            return .field(path, try condition("$eq", value, pointer, path: path))
        }
    }

    func scalar(_ value: JSONValue, _ pointer: String) throws(QueryError) -> Filter.Scalar {
        switch value {
        case .number(let n): return .number(n)
        case .bool(let b): return .bool(b)
        case .string(let s): return .string(s)
        case .null: throw fail(pointer, "null is not a value to compare with; use {\"$exists\": false}")
        case .array: throw fail(pointer, "expected a number, string or boolean, not an array (use $in for a list)")
        case .object: throw fail(pointer, "expected a number, string or boolean, not an object")
        }
    }

    func condition(_ op: String, _ operand: JSONValue, _ pointer: String, path: Filter.FieldPath) throws(QueryError) -> Filter.Condition {
        if path == .documentID, !["$eq", "$ne", "$in", "$nin"].contains(op) {
            throw fail(pointer, "documentId takes $eq, $ne, $in or $nin, not \(op)")
        }
        var declared: MetadataSchema.FieldType? = nil
        if case .chunk(let keys) = path { declared = schema.fields[keys.joined(separator: ".")] }
        func refuse(_ what: String, at here: String? = nil) -> QueryError {
            fail(here ?? pointer, "'\(path)' is declared \(declared!.rawValue): \(what)")
        }
        /// A comparison operand, checked against the declared type.
        func value(_ json: JSONValue, _ pointer: String, ordered: Bool) throws(QueryError) -> Filter.Scalar {
            let s = try scalar(json, pointer)
            if path == .documentID {
                switch s {
                case .string: return s
                case .number(let n) where n >= 0 && n == n.rounded() && n < 1e15: return .string(String(Int(n)))
                default: throw fail(pointer, "a document id is a UUID string or a row number")
                }
            }
            guard let declared else {
                if ordered, case .string(let text) = s, let date = DateTimeText.parse(text) { return .datetime(date) }
                return s
            }
            switch (declared, s) {
            case (.keyword, .string), (.integer, .number), (.float, .number): return s
            case (.bool, .bool) where !ordered: return s
            case (.datetime, .string(let text)):
                guard let date = DateTimeText.parse(text) else { throw fail(pointer, "'\(path)' is declared datetime: \"\(text)\" is not an ISO-8601 date-time") }
                return .datetime(date)
            case (.bool, _): throw refuse(ordered ? "\(op) does not order booleans" : "compare it with true or false", at: pointer)
            case (.keywordArray, _): throw refuse("use $contains for one of its strings, or $exists", at: pointer)
            case (.keyword, _), (.datetime, _): throw refuse("expected a string", at: pointer)
            case (.integer, _), (.float, _): throw refuse("expected a number", at: pointer)
            }
        }
        switch op {
        case "$eq", "$ne":
            let s = try value(operand, pointer, ordered: false)
            return op == "$eq" ? .eq(s) : .ne(s)
        case "$gt", "$gte", "$lt", "$lte":
            if declared == nil, case .bool = try scalar(operand, pointer) {
                throw fail(pointer, "\(op) compares numbers, strings or ISO-8601 date-times, not booleans")
            }
            let s = try value(operand, pointer, ordered: true)
            switch op {
            case "$gt": return .gt(s)
            case "$gte": return .gte(s)
            case "$lt": return .lt(s)
            default: return .lte(s)
            }
        case "$in", "$nin":
            guard case .array(let items) = operand, !items.isEmpty else { throw fail(pointer, "\(op) takes a non-empty array of values") }
            guard items.count <= Filter.maximumListLength else {
                throw fail(pointer, "\(op) lists \(items.count) values; at most \(Filter.maximumListLength) are allowed")
            }
            var values: [Filter.Scalar] = []
            for (i, item) in items.enumerated() { values.append(try value(item, pointer + "/\(i)", ordered: false)) }
            return op == "$in" ? .in(values) : .nin(values)
        case "$exists":
            guard case .bool(let wanted) = operand else { throw fail(pointer, "$exists takes true or false") }
            return .exists(wanted)
        case "$contains":
            let s = try scalar(operand, pointer)
            if let declared {
                guard declared == .keywordArray else { throw refuse("$contains applies to arrays (keyword[]); use $eq") }
                guard case .string = s else { throw refuse("expected a string") }
            }
            return .contains(s)
        case "$startsWith":
            guard case .string(let prefix) = operand else { throw fail(pointer, "$startsWith takes a string") }
            if let declared, declared != .keyword { throw refuse("$startsWith applies to keywords") }
            return .startsWith(prefix)
        default:
            throw fail(pointer, "unknown operator '\(op)'; use $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $contains or $startsWith")
        }
    }
}
