public import VDBCore

extension Filter {
    /// The most comparisons and boolean operators one filter may hold.
    public static let maximumClauses = 64
    /// The deepest nesting of `$and`, `$or` and `$not`.
    public static let maximumDepth = 8
    /// The most values one `$in` or `$nin` may list.
    public static let maximumListLength = 1_024

    /// Parses and type-checks a filter given as JSON.
    ///
    /// - Parameter pointer: where the filter sits in the request (a JSON Pointer such as
    ///   `/filter`); errors point below it at the offending part.
    /// - Throws: `QueryError.invalidArgument` whose `field` is the JSON Pointer of the
    ///   offending part and whose message says what was expected.
    public static func parse(_ json: JSONValue, pointer: String = "/filter") throws(QueryError) -> Filter {
        var parser = FilterParser()
        let filter = try parser.node(json, pointer, depth: 1)
        guard filter.clauseCount <= maximumClauses else {
            throw QueryError(.invalidArgument, "the filter has \(filter.clauseCount) clauses; at most \(maximumClauses) are allowed", field: pointer)
        }
        return filter
    }
}

/// The recursive descent behind ``Filter/parse(_:pointer:)``.
struct FilterParser {
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
        if key.hasPrefix("document.") {
            throw fail(pointer, "filters on document metadata ('\(key)') are not supported yet; filter on chunk metadata or documentId")
        }
        let keys = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.contains(where: \.isEmpty) else { throw fail(pointer, "'\(key)' is not a field path: keys separated by single dots") }
        return .chunk(keys)
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
        func documentIDValue(_ s: Filter.Scalar) throws(QueryError) -> Filter.Scalar {
            guard path == .documentID else { return s }
            switch s {
            case .string: return s
            case .number(let n) where n >= 0 && n == n.rounded() && n < 1e15: return .string(String(Int(n)))
            default: throw fail(pointer, "a document id is a UUID string or a row number")
            }
        }
        switch op {
        case "$eq", "$ne":
            let value = try documentIDValue(try scalar(operand, pointer))
            return op == "$eq" ? .eq(value) : .ne(value)
        case "$gt", "$gte", "$lt", "$lte":
            var value = try scalar(operand, pointer)
            switch value {
            case .bool: throw fail(pointer, "\(op) compares numbers, strings or ISO-8601 date-times, not booleans")
            case .string(let s): if let date = Filter.parseDate(s) { value = .datetime(date) }
            default: break
            }
            switch op {
            case "$gt": return .gt(value)
            case "$gte": return .gte(value)
            case "$lt": return .lt(value)
            default: return .lte(value)
            }
        case "$in", "$nin":
            guard case .array(let items) = operand, !items.isEmpty else { throw fail(pointer, "\(op) takes a non-empty array of values") }
            guard items.count <= Filter.maximumListLength else {
                throw fail(pointer, "\(op) lists \(items.count) values; at most \(Filter.maximumListLength) are allowed")
            }
            var values: [Filter.Scalar] = []
            for (i, item) in items.enumerated() { values.append(try documentIDValue(try scalar(item, pointer + "/\(i)"))) }
            return op == "$in" ? .in(values) : .nin(values)
        case "$exists":
            guard case .bool(let wanted) = operand else { throw fail(pointer, "$exists takes true or false") }
            return .exists(wanted)
        case "$contains":
            return .contains(try scalar(operand, pointer))
        case "$startsWith":
            guard case .string(let prefix) = operand else { throw fail(pointer, "$startsWith takes a string") }
            return .startsWith(prefix)
        default:
            throw fail(pointer, "unknown operator '\(op)'; use $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $contains or $startsWith")
        }
    }
}
