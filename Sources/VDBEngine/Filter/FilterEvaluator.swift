import VDBCore
import VDBStorage

/// Evaluates a filter over the rows of one part (a segment, or the delta) as bitsets: a clause
/// on a declared field is answered from the part's postings and sorted columns
/// (``IndexedMetadata``), any other clause row by row on the stored metadata, and `$and`,
/// `$or` and `$not` combine the sets. Each clause only looks at the rows still in question
/// (an `$and` narrows as it goes, cheapest clauses first), so an unindexed clause after a
/// selective indexed one reads few rows' JSON.
///
/// It must agree row for row with the plain evaluator, ``Filter/matches(metadata:document:documentMetadata:)``;
/// the property tests hold it to that.
struct FilterEvaluator {
    let indexed: (any IndexedMetadata)?
    /// Row `r`'s chunk metadata, decoded.
    let metadata: (Int) -> JSONValue?
    /// Row `r`'s document.
    let document: (Int) -> DocumentID
    /// A document's current metadata (asked only by `document.<key>` clauses).
    let documentMetadata: (DocumentID) -> JSONValue?

    func rows(_ filter: Filter, within candidates: RowSet) -> RowSet {
        switch filter {
        case .and(let parts):
            var current = candidates
            for part in parts.sorted(by: { cost($0) < cost($1) }) {
                if current.isEmpty { break }
                current = rows(part, within: current)
            }
            return current
        case .or(let parts):
            var matched = RowSet(capacity: candidates.capacity)
            var open = candidates
            for part in parts.sorted(by: { cost($0) < cost($1) }) {
                if open.isEmpty { break }
                let hits = rows(part, within: open)
                matched.formUnion(hits)
                open.subtract(hits)
            }
            return matched
        case .not(let inner):
            var rest = candidates
            rest.subtract(rows(inner, within: candidates))
            return rest
        case .field(let path, let condition):
            if case .chunk(let keys) = path, let indexed, let type = indexed.type(of: keys.joined(separator: ".")),
                let found = indexedRows(keys.joined(separator: "."), type, condition, indexed, within: candidates)
            {
                return found
            }
            return rowByRow(path, condition, within: candidates)
        }
    }

    /// 0 for a clause the postings answer, 1 for one read row by row, 2 for document metadata.
    private func cost(_ filter: Filter) -> Int {
        switch filter {
        case .and(let parts), .or(let parts): parts.map(cost).max() ?? 0
        case .not(let inner): cost(inner)
        case .field(.chunk(let keys), _): indexed?.type(of: keys.joined(separator: ".")) != nil ? 0 : 1
        case .field(.documentID, _): 1
        case .field(.document, _): 2
        }
    }

    private func rowByRow(_ path: Filter.FieldPath, _ condition: Filter.Condition, within candidates: RowSet) -> RowSet {
        var matched = RowSet(capacity: candidates.capacity)
        switch path {
        case .documentID:
            candidates.forEach { if condition.holds(forDocument: document(Int($0))) { matched.insert($0) } }
        case .chunk(let keys):
            candidates.forEach { if condition.holds(for: Filter.lookup(keys, in: metadata(Int($0)))) { matched.insert($0) } }
        case .document(let keys):
            // Once per document: a document's rows usually lie together, and a cache keeps the rest.
            var verdicts: [DocumentID: Bool] = [:]
            candidates.forEach { row in
                let id = document(Int(row))
                let verdict = verdicts[id] ?? {
                    let v = condition.holds(for: Filter.lookup(keys, in: documentMetadata(id)))
                    verdicts[id] = v
                    return v
                }()
                if verdict { matched.insert(row) }
            }
        }
        return matched
    }

    /// The rows of `candidates` a clause on a declared field selects, from the postings; nil
    /// when the operand cannot be answered there (it is then evaluated row by row).
    private func indexedRows(
        _ path: String, _ type: MetadataSchema.FieldType, _ condition: Filter.Condition, _ index: any IndexedMetadata,
        within candidates: RowSet
    ) -> RowSet? {
        var found = RowSet(capacity: candidates.capacity)
        /// Adds the rows equal to `scalar`; false when the postings cannot say.
        func addEqual(_ scalar: Filter.Scalar) -> Bool {
            switch (type, scalar) {
            case (.keyword, .string(let s)): index.addRows(path, terms: .equal(s), to: &found)
            case (.bool, .bool(let b)): index.addRows(path, terms: .equal(b ? "true" : "false"), to: &found)
            case (.integer, .number(let n)), (.float, .number(let n)): index.addRows(path, numbers: .exactly(n), to: &found)
            case (.datetime, .datetime(let d)): index.addRows(path, numbers: .exactly(d.timeIntervalSinceReferenceDate), to: &found)
            // A string compared with a datetime field as given: only the stored strings can say.
            case (.datetime, .string): return false
            default: break  // of another type than the field's: equal to no stored value
            }
            return true
        }
        /// Adds the rows ordered against `scalar` as `below`/`inclusive` say.
        func addOrdered(_ scalar: Filter.Scalar, below: Bool, inclusive: Bool) -> Bool {
            switch (type, scalar) {
            case (.keyword, .string(let s)):
                let selection: TermSelection = below
                    ? .range(lower: nil, lowerInclusive: true, upper: s, upperInclusive: inclusive)
                    : .range(lower: s, lowerInclusive: inclusive, upper: nil, upperInclusive: true)
                index.addRows(path, terms: selection, to: &found)
            case (.integer, .number(let n)), (.float, .number(let n)):
                index.addRows(path, numbers: Self.range(n, below: below, inclusive: inclusive), to: &found)
            case (.datetime, .datetime(let d)):
                index.addRows(path, numbers: Self.range(d.timeIntervalSinceReferenceDate, below: below, inclusive: inclusive), to: &found)
            case (.keyword, .datetime), (.datetime, .string): return false
            default: break
            }
            return true
        }
        var negate = false
        switch condition {
        case .exists(let wanted):
            index.addPresentRows(path, to: &found)
            negate = !wanted
        case .eq(let s), .ne(let s):
            guard addEqual(s) else { return nil }
            if case .ne = condition { negate = true }
        case .in(let list), .nin(let list):
            for s in list { guard addEqual(s) else { return nil } }
            if case .nin = condition { negate = true }
        case .gt(let s): guard addOrdered(s, below: false, inclusive: false) else { return nil }
        case .gte(let s): guard addOrdered(s, below: false, inclusive: true) else { return nil }
        case .lt(let s): guard addOrdered(s, below: true, inclusive: false) else { return nil }
        case .lte(let s): guard addOrdered(s, below: true, inclusive: true) else { return nil }
        case .contains(let s):
            guard type == .keywordArray else { return found }  // the field is not an array: no row holds it
            if case .string(let term) = s { index.addRows(path, terms: .equal(term), to: &found) }
        case .startsWith(let prefix):
            if type == .keyword { index.addRows(path, terms: .prefix(prefix), to: &found) }
        }
        if negate {
            var rest = candidates
            rest.subtract(found)
            return rest
        }
        found.formIntersection(candidates)
        return found
    }

    static func range(_ value: Double, below: Bool, inclusive: Bool) -> NumberRange {
        below ? NumberRange(upper: value, upperInclusive: inclusive) : NumberRange(lower: value, lowerInclusive: inclusive)
    }
}
