public import VDBCore

/// The `metadataIndex` section of a segment: for each field the library's schema declares, the
/// rows holding each term (keyword, bool, keyword[]) or the rows sorted by value (integer,
/// float, datetime), so a filter clause on a declared field costs a lookup, not a pass over
/// every row's JSON.
///
/// Layout (little-endian, no alignment; every length is checked on open):
///
/// ```
/// u32 version (1), u32 field count, then per field, in path order:
///   u32 path byte count, path (UTF-8), u8 type code, container "present",
///   term types:   u32 term count, then per term in string order: u32 byte count, term, container
///   column types: u32 count, count × f64 values ascending, count × u32 rows (same order)
/// container: u8 kind (0: ascending u32 rows, 1: bitmap of ⌈rows/64⌉ u64 words),
///            u32 cardinality, u32 byte count, bytes
/// ```
///
/// A posting is stored as a row array when that is smaller than a bitmap (fewer than one row
/// in 32), else as a bitmap: the two container kinds of Roaring bitmaps, chosen per posting.
public struct MetadataIndex: IndexedMetadata, @unchecked Sendable {
    static let version: UInt32 = 1

    /// Rows of one posting, read in place.
    struct Container {
        var isBitmap: Bool
        var cardinality: Int
        var bytes: UnsafeRawBufferPointer

        func add(to set: inout RowSet) {
            if isBitmap {
                set.formUnion(bitmapWords: bytes)
            } else {
                for i in 0..<cardinality {
                    set.insert(RowOffset(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
        }
    }

    struct Field {
        var type: MetadataSchema.FieldType
        var present: Container
        /// Term fields: terms in string order, and their postings.
        var terms: [String] = []
        var postings: [Container] = []
        /// Column fields: values ascending, and the row of each.
        var values: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
        var rows: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
        var count = 0

        func value(_ i: Int) -> Double {
            Double(bitPattern: UInt64(littleEndian: values.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
        }

        func row(_ i: Int) -> RowOffset {
            RowOffset(littleEndian: rows.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
        }
    }

    let fields: [String: Field]

    /// The declared paths this segment indexes.
    public var paths: [String] { fields.keys.sorted() }

    /// Parses a stored section (the bytes stay in the caller's mapping).
    ///
    /// - Throws: a description of the first inconsistency (the caller names the file).
    init(_ bytes: UnsafeRawBufferPointer, rowCount: Int) throws(StorageError) {
        var reader = ByteReader(bytes: bytes)
        let version: UInt32 = try reader.read()
        guard version == Self.version else { throw reader.corrupt("metadata index version \(version); this build reads \(Self.version)") }
        let fieldCount: UInt32 = try reader.read()
        guard fieldCount <= UInt32(MetadataSchema.maximumFields) else { throw reader.corrupt("\(fieldCount) indexed fields") }
        let bitmapBytes = (rowCount + 63) / 64 * 8
        func container() throws(StorageError) -> Container {
            let kind: UInt8 = try reader.read()
            let cardinality = Int(try reader.read() as UInt32)
            let length = Int(try reader.read() as UInt32)
            guard kind <= 1, cardinality <= rowCount, length == (kind == 1 ? bitmapBytes : cardinality * 4) else {
                throw reader.corrupt("a posting of kind \(kind) with \(cardinality) rows in \(length) bytes")
            }
            let body = try reader.bytes(length)
            if kind == 0 {
                for i in 0..<cardinality where Int(body.loadLittleEndian(at: i * 4, as: UInt32.self)) >= rowCount {
                    throw reader.corrupt("a posting names a row past the segment's \(rowCount)")
                }
            }
            return Container(isBitmap: kind == 1, cardinality: cardinality, bytes: body)
        }
        var fields: [String: Field] = [:]
        for _ in 0..<fieldCount {
            let path = try reader.string()
            guard let type = MetadataSchema.FieldType(code: try reader.read()) else { throw reader.corrupt("unknown field type of '\(path)'") }
            var field = Field(type: type, present: try container())
            if type.hasTerms {
                let termCount = Int(try reader.read() as UInt32)
                guard termCount <= rowCount * 64 + 2 else { throw reader.corrupt("\(termCount) terms in field '\(path)'") }
                field.terms.reserveCapacity(termCount)
                for _ in 0..<termCount {
                    let term = try reader.string()
                    if let last = field.terms.last, !(last < term) { throw reader.corrupt("terms of '\(path)' are not in order") }
                    field.terms.append(term)
                    field.postings.append(try container())
                }
            } else {
                let count = Int(try reader.read() as UInt32)
                guard count <= rowCount else { throw reader.corrupt("\(count) values in field '\(path)'") }
                field.count = count
                field.values = try reader.bytes(count * 8)
                field.rows = try reader.bytes(count * 4)
                for i in 0..<count where Int(field.row(i)) >= rowCount { throw reader.corrupt("field '\(path)' names a row past the segment's") }
            }
            fields[path] = field
        }
        guard reader.offset == bytes.count else { throw reader.corrupt("\(bytes.count - reader.offset) bytes after the last field") }
        self.fields = fields
    }

    public func type(of path: String) -> MetadataSchema.FieldType? { fields[path]?.type }

    public func addRows(_ path: String, terms selection: TermSelection, to set: inout RowSet) {
        guard let field = fields[path] else { return }
        switch selection {
        case .equal(let term):
            if let i = field.index(of: term) { field.postings[i].add(to: &set) }
        case .anyOf(let terms):
            for term in Set(terms) { if let i = field.index(of: term) { field.postings[i].add(to: &set) } }
        case .prefix(let prefix):
            // Every term with the prefix sorts at or after it; checked one by one past there,
            // because `hasPrefix` compares characters, and a term whose second character is a
            // combining mark can sort between two that match.
            for i in field.firstIndex(where: { $0 >= prefix })..<field.terms.count where field.terms[i].hasPrefix(prefix) {
                field.postings[i].add(to: &set)
            }
        case .range(let lower, let lowerInclusive, let upper, let upperInclusive):
            var i = lower.map { bound in field.firstIndex { lowerInclusive ? $0 >= bound : $0 > bound } } ?? 0
            while i < field.terms.count {
                if let upper, upperInclusive ? field.terms[i] > upper : field.terms[i] >= upper { break }
                field.postings[i].add(to: &set)
                i += 1
            }
        }
    }

    public func addRows(_ path: String, numbers range: NumberRange, to set: inout RowSet) {
        guard let field = fields[path], field.count > 0 else { return }
        // Binary search for the first value in range, then walk while values stay in it.
        var low = 0
        var high = field.count
        while low < high {
            let mid = (low + high) / 2
            let v = field.value(mid)
            if range.lowerInclusive ? v < range.lower : v <= range.lower { low = mid + 1 } else { high = mid }
        }
        var i = low
        while i < field.count, range.contains(field.value(i)) {
            set.insert(field.row(i))
            i += 1
        }
    }

    public func addPresentRows(_ path: String, to set: inout RowSet) {
        fields[path]?.present.add(to: &set)
    }
}

extension MetadataIndex.Field {
    /// The first term index whose term satisfies the (monotone) predicate.
    func firstIndex(where predicate: (String) -> Bool) -> Int {
        var low = 0
        var high = terms.count
        while low < high {
            let mid = (low + high) / 2
            if predicate(terms[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    func index(of term: String) -> Int? {
        let i = firstIndex { $0 >= term }
        return i < terms.count && terms[i] == term ? i : nil
    }
}

/// Collects the rows of each declared field while a segment is written, then encodes the
/// ``MetadataIndex`` section.
package struct MetadataIndexBuilder {
    let schema: MetadataSchema
    /// Per path (in schema order): terms to rows, or (value, row) pairs; rows where present.
    private var termRows: [[String: [UInt32]]]
    private var columns: [[(Double, UInt32)]]
    private var present: [[UInt32]]
    private let keyPaths: [[Substring]]
    private var rowCount = 0

    package init(schema: MetadataSchema) {
        self.schema = schema
        let paths = schema.paths
        keyPaths = paths.map { $0.split(separator: ".") }
        termRows = Array(repeating: [:], count: paths.count)
        columns = Array(repeating: [], count: paths.count)
        present = Array(repeating: [], count: paths.count)
    }

    /// Records row `rowCount` (rows are added in order) with its metadata.
    package mutating func add(_ metadata: JSONValue?) {
        let row = UInt32(rowCount)
        rowCount += 1
        guard metadata != nil else { return }
        for (f, path) in schema.paths.enumerated() {
            guard let value = MetadataSchema.value(at: keyPaths[f], in: metadata) else { continue }
            let type = schema.fields[path]!
            // Values are validated on write; one that does not conform (a segment written
            // before a check existed) is left out of the index rather than mis-typed.
            guard MetadataSchema.violation(of: value, as: type) == nil else { continue }
            present[f].append(row)
            if type.hasTerms {
                for term in type.terms(of: value) { termRows[f][term, default: []].append(row) }
            } else if let number = type.number(of: value) {
                columns[f].append((number, row))
            }
        }
    }

    /// The section's bytes.
    package func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(MetadataIndex.version)
        out.appendLittleEndian(UInt32(schema.fields.count))
        let bitmapWords = (rowCount + 63) / 64
        func container(_ rows: [UInt32]) {
            if rows.count * 4 > bitmapWords * 8 {
                var words = [UInt64](repeating: 0, count: bitmapWords)
                for r in rows { words[Int(r) >> 6] |= 1 << UInt64(r & 63) }
                out.append(1)
                out.appendLittleEndian(UInt32(rows.count))
                out.appendLittleEndian(UInt32(bitmapWords * 8))
                for word in words { out.appendLittleEndian(word) }
            } else {
                out.append(0)
                out.appendLittleEndian(UInt32(rows.count))
                out.appendLittleEndian(UInt32(rows.count * 4))
                for r in rows { out.appendLittleEndian(r) }
            }
        }
        for (f, path) in schema.paths.enumerated() {
            let type = schema.fields[path]!
            out.appendLittleEndian(UInt32(path.utf8.count))
            out.append(contentsOf: path.utf8)
            out.append(type.code)
            container(present[f])
            if type.hasTerms {
                let terms = termRows[f].keys.sorted()
                out.appendLittleEndian(UInt32(terms.count))
                for term in terms {
                    out.appendLittleEndian(UInt32(term.utf8.count))
                    out.append(contentsOf: term.utf8)
                    container(termRows[f][term]!)
                }
            } else {
                let sorted = columns[f].sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                out.appendLittleEndian(UInt32(sorted.count))
                for (value, _) in sorted { out.appendLittleEndian(value.bitPattern) }
                for (_, row) in sorted { out.appendLittleEndian(row) }
            }
        }
        return out
    }
}

/// Bounds-checked sequential reads of a section.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    func corrupt(_ what: String) -> StorageError {
        StorageError(.corruptSegment, "metadata index at byte \(offset): \(what)")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(StorageError) -> T {
        guard bytes.count - offset >= MemoryLayout<T>.size else { throw corrupt("truncated") }
        defer { offset += MemoryLayout<T>.size }
        return bytes.loadLittleEndian(at: offset, as: T.self)
    }

    mutating func bytes(_ count: Int) throws(StorageError) -> UnsafeRawBufferPointer {
        guard count >= 0, bytes.count - offset >= count else { throw corrupt("truncated") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    mutating func string() throws(StorageError) -> String {
        let count = Int(try read() as UInt32)
        let body = try bytes(count)
        guard let text = String(validating: body, as: UTF8.self) else { throw corrupt("a name that is not UTF-8") }
        return text
    }
}
