public import SystemPackage
import Foundation
public import VDBCore
public import VDBStorage

/// One line of a JSON Lines documents file.
///
/// ```json
/// {"id": "9b2e…", "metadata": {"lang": "en"},
///  "chunks": [{"id": 1, "text": "…", "vector": [0.1, …], "metadata": {"page": 3}}]}
/// ```
/// `id`s are non-negative integers or UUID strings. A chunk without an id gets one derived from
/// its document id and position, so ingesting the same file twice yields the same ids.
struct DocumentLine: Decodable {
    struct Chunk: Decodable {
        var id: ChunkID?
        var text: String?
        var vector: [Float]
        var metadata: JSONValue?
    }
    var id: DocumentID
    var metadata: JSONValue?
    var chunks: [Chunk]
}

/// Streams a JSON Lines file of documents. A document's chunks always land in one batch, so a
/// document is never split across segments or shards.
public struct JSONLinesSource: RowSource {
    public let path: FilePath
    public private(set) var dimension: Int
    public var declaredMetric: Metric? { nil }
    private var lines: LineReader
    private var lineNumber = 0
    private var pending: DocumentLine?
    private let decoder = JSONDecoder()
    private var seenDocuments: Set<DocumentID> = []

    /// Opens the file and reads ahead to the first document to learn the dimension.
    public init(path: FilePath) throws(IngestError) {
        self.path = path
        lines = try LineReader(path: path)
        dimension = 0
        pending = try nextDocument()
        dimension = pending?.chunks.first?.vector.count ?? 0
    }

    public var progress: (completed: Int, total: Int?) { (lines.bytesConsumed, lines.fileSize) }

    public mutating func read(into batch: inout RowBatch, maxRows: Int) throws(IngestError) -> Int {
        var added = 0
        if batch.count == 0 { batch.firstRowNumber = lineNumber }
        while added < maxRows {
            let next: DocumentLine?
            if let pending { next = pending } else { next = try nextDocument() }
            guard let document = next else { break }
            pending = nil
            // A document larger than the batch still goes in whole: atomicity beats the limit.
            if added > 0 && added + document.chunks.count > maxRows {
                pending = document
                break
            }
            guard seenDocuments.insert(document.id).inserted else {
                throw IngestError(.duplicateID, "\(path): line \(lineNumber): document id \(document.id) appears twice")
            }
            if let metadata = document.metadata { batch.documentMetadata[document.id] = metadata.encodedBytes() }
            for (ordinal, chunk) in document.chunks.enumerated() {
                guard chunk.vector.count == dimension else {
                    throw IngestError(
                        .dimensionMismatch,
                        "\(path): line \(lineNumber): chunk \(ordinal) of document \(document.id) has \(chunk.vector.count) components; the file's first vector has \(dimension)")
                }
                batch.vectors.append(contentsOf: chunk.vector)
                batch.chunkIDs.append(chunk.id ?? document.id.derivedChunkID(ordinal: ordinal))
                batch.documentIDs.append(document.id)
                batch.texts.append(chunk.text)
                batch.metadata.append(chunk.metadata?.encodedBytes())
            }
            added += document.chunks.count
        }
        return added
    }

    private mutating func nextDocument() throws(IngestError) -> DocumentLine? {
        while let line = try lines.nextLine() {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                let document = try decoder.decode(DocumentLine.self, from: Data(line))
                guard !document.chunks.isEmpty else {
                    throw IngestError(.malformedInput, "\(path): line \(lineNumber): document \(document.id) has no chunks")
                }
                return document
            } catch let error as IngestError {
                throw error
            } catch {
                throw IngestError(.malformedInput, "\(path): line \(lineNumber): \(describe(error))")
            }
        }
        return nil
    }
}


/// Reads a file line by line with a fixed buffer, so a file larger than memory streams.
struct LineReader {
    private let fd: FileDescriptorBox
    let fileSize: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var end = 0
    private var atEOF = false
    private(set) var bytesConsumed = 0
    private static let chunk = 1 << 20

    init(path: FilePath) throws(IngestError) {
        do {
            let descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
            fd = FileDescriptorBox(descriptor)
            fileSize = try descriptor.fileSize()
        } catch {
            throw IngestError(.missingInput, "cannot open \(path): \(error)")
        }
        buffer = [UInt8](repeating: 0, count: Self.chunk)
    }

    /// The next line without its newline, or nil at the end.
    mutating func nextLine() throws(IngestError) -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[start..<end].firstIndex(of: 0x0A) {
                let line = buffer[start..<newline]
                bytesConsumed += newline + 1 - start
                start = newline + 1
                return line
            }
            if atEOF {
                guard start < end else { return nil }
                let line = buffer[start..<end]
                bytesConsumed += end - start
                start = end
                return line
            }
            // Move the partial line to the front; grow only for lines longer than the buffer.
            if start > 0 {
                buffer.withUnsafeMutableBytes { b in
                    // memmove semantics: the ranges may overlap.
                    b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let descriptor = fd.descriptor
            let capacity = buffer.count
            let readFrom = end
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { try descriptor.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[readFrom..<capacity])) }
            } catch {
                throw IngestError(.malformedInput, "read failed: \(error)")
            }
            if n == 0 { atEOF = true } else { end += n }
        }
    }
}
