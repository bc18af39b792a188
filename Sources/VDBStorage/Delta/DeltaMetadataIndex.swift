public import VDBCore

/// The declared metadata fields of the unflushed rows, indexed in memory as rows arrive: per
/// keyword term the rows holding it (ascending, since rows only append), per numeric or
/// date-time field one value per row. Filters on the delta read it instead of decoding JSON.
///
/// Owned by a ``DeltaStore``, which appends under its lock; readers see it through a
/// ``View`` limited to the row count of their snapshot.
package struct DeltaMetadataIndex {
    let schema: MetadataSchema
    private let paths: [String]
    private let keyPaths: [[Substring]]
    private var termRows: [[String: [UInt32]]]
    /// Column fields: one value per row, NaN where absent.
    private var columns: [[Double]]
    private var present: [[UInt32]]
    private var rowCount = 0

    package init(schema: MetadataSchema) {
        self.schema = schema
        paths = schema.paths
        keyPaths = paths.map { $0.split(separator: ".") }
        termRows = Array(repeating: [:], count: paths.count)
        columns = Array(repeating: [], count: paths.count)
        present = Array(repeating: [], count: paths.count)
    }

    package mutating func append(_ metadata: JSONValue?) {
        let row = UInt32(rowCount)
        rowCount += 1
        for (f, path) in paths.enumerated() {
            let type = schema.fields[path]!
            let value = MetadataSchema.value(at: keyPaths[f], in: metadata)
            let conforming = value.flatMap { MetadataSchema.violation(of: $0, as: type) == nil ? $0 : nil }
            if type.hasTerms {
                for term in conforming.map(type.terms(of:)) ?? [] { termRows[f][term, default: []].append(row) }
            } else {
                columns[f].append(conforming.flatMap(type.number(of:)) ?? .nan)
            }
            if conforming != nil { present[f].append(row) }
        }
    }

    /// The index as a reader that saw `limit` rows sees it.
    package func view(upTo limit: Int) -> View { View(index: self, limit: limit) }

    package struct View: IndexedMetadata {
        let index: DeltaMetadataIndex
        let limit: Int

        public func type(of path: String) -> MetadataSchema.FieldType? { index.schema.fields[path] }

        public func addRows(_ path: String, terms selection: TermSelection, to set: inout RowSet) {
            guard let f = index.paths.firstIndex(of: path) else { return }
            let postings = index.termRows[f]
            switch selection {
            case .equal(let term): add(postings[term], to: &set)
            case .anyOf(let terms): for term in Set(terms) { add(postings[term], to: &set) }
            case .prefix, .range: for (term, rows) in postings where selection.selects(term) { add(rows, to: &set) }
            }
        }

        public func addRows(_ path: String, numbers range: NumberRange, to set: inout RowSet) {
            guard let f = index.paths.firstIndex(of: path) else { return }
            let column = index.columns[f]
            for r in 0..<min(limit, column.count) where range.contains(column[r]) { set.insert(RowOffset(r)) }
        }

        public func addPresentRows(_ path: String, to set: inout RowSet) {
            guard let f = index.paths.firstIndex(of: path) else { return }
            add(index.present[f], to: &set)
        }

        private func add(_ rows: [UInt32]?, to set: inout RowSet) {
            for row in rows ?? [] {
                guard Int(row) < limit else { break }
                set.insert(row)
            }
        }
    }
}
