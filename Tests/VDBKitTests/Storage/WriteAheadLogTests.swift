import Foundation
import PropertyBased
import SystemPackage
import Testing
@testable import VDBCatalog
@testable import VDBCore
@testable import VDBEngine
@testable import VDBIndex
@testable import VDBIngest
@testable import VDBKernels
import VDBKit
@testable import VDBStorage

@Suite("Write-ahead log")
struct WriteAheadLogTests {
    static func payloads(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
    }

    static func write(_ payloads: [[UInt8]], to dir: FilePath, policy: FsyncPolicy = .always) throws -> WriteAheadLog {
        let log = try WriteAheadLog(directory: dir, policy: policy, nextSequence: 1)
        for p in payloads { try log.append(p) }
        try log.synchronize()
        return log
    }

    @Test func recordsRoundTrip() async throws {
        await propertyCheck(count: 30, input: Gen.int(in: 0...60), Gen.uint64(in: 0...UInt64.max)) { count, seed in
            let dir = TemporaryDirectory()
            let payloads = Self.payloads(count: count, seed: seed)
            _ = try! Self.write(payloads, to: dir.path)
            let recovered = try! WriteAheadLog.recover(directory: dir.path, after: 0)
            #expect(recovered.records.map(\.payload) == payloads, "seed \(seed)")
            #expect(recovered.records.map(\.sequence) == (0..<count).map { UInt64($0 + 1) })
            #expect(recovered.droppedTails.isEmpty)
            let later = try! WriteAheadLog.recover(directory: dir.path, after: UInt64(count / 2))
            #expect(later.records.map(\.payload) == Array(payloads[(count / 2)...]))
        }
    }

    /// Cutting the file at every byte of its last record leaves exactly the records before it,
    /// and the log accepts appends again after recovery.
    @Test func truncationAtEveryOffsetOfTheLastRecordDropsOnlyIt() throws {
        let dir = TemporaryDirectory()
        let payloads = Self.payloads(count: 6, seed: 3)
        _ = try Self.write(payloads, to: dir.path)
        let file = WriteAheadLog.files(in: dir.path)[0].path
        let whole = readBytes(file)
        let lastStart = whole.count - (payloads[5].count + 16)
        for cut in lastStart..<whole.count {
            writeBytes(Array(whole[0..<cut]), to: file)
            let recovered = try WriteAheadLog.recover(directory: dir.path, after: 0)
            #expect(recovered.records.map(\.payload) == Array(payloads[0..<5]), "cut at \(cut)")
            #expect((cut == lastStart) == recovered.droppedTails.isEmpty, "cut at \(cut)")
            #expect(readBytes(file).count == lastStart, "the torn tail is truncated away")
        }
        // Appending after recovery continues the sequence and reads back.
        let log = try WriteAheadLog(directory: dir.path, policy: .always, nextSequence: 6)
        try log.append([1, 2, 3])
        let after = try WriteAheadLog.recover(directory: dir.path, after: 0)
        #expect(after.records.count == 6 && after.records.last == WriteAheadLog.Record(sequence: 6, payload: [1, 2, 3]))
    }

    /// Flipping any byte of the last record drops that record; flipping a byte of an earlier
    /// record is corruption in the middle, reported with the file and offset.
    @Test func flippedBytes() throws {
        let dir = TemporaryDirectory()
        let payloads = Self.payloads(count: 5, seed: 4).map { $0 + [9] }
        _ = try Self.write(payloads, to: dir.path)
        let file = WriteAheadLog.files(in: dir.path)[0].path
        let whole = readBytes(file)
        let lastStart = whole.count - (payloads[4].count + 16)
        for offset in lastStart..<whole.count {
            var damaged = whole
            damaged[offset] ^= 0x20
            writeBytes(damaged, to: file)
            let recovered = try WriteAheadLog.recover(directory: dir.path, after: 0)
            #expect(recovered.records.map(\.payload) == Array(payloads[0..<4]), "flip at \(offset)")
        }
        let secondStart = WriteAheadLog.headerSize + payloads[0].count + 16
        for offset in [secondStart, secondStart + 5, secondStart + 12, secondStart + 12 + payloads[1].count] {
            var damaged = whole
            damaged[offset] ^= 0x01
            writeBytes(damaged, to: file)
            #expect {
                try WriteAheadLog.recover(directory: dir.path, after: 0)
            } throws: { error in
                guard let e = error as? StorageError else { return false }
                return e.code == .corruptSegment && e.message.contains(file.string) && e.message.contains("offset \(secondStart)")
            }
        }
    }

    @Test func rotationAndRemovalOfCoveredFiles() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, policy: .groupCommit(milliseconds: 5), nextSequence: 1)
        for i in 0..<3 { try log.append([UInt8(i)]) }
        #expect(log.durableSequence == 0)
        try log.synchronize()
        #expect(log.durableSequence == 3)
        try log.rotate()
        for i in 3..<5 { try log.append([UInt8(i)]) }
        #expect(WriteAheadLog.files(in: dir.path).map(\.first) == [1, 4])
        log.removeFiles(coveredThrough: 3)
        #expect(WriteAheadLog.files(in: dir.path).map(\.first) == [4])
        try log.synchronize()
        #expect(try WriteAheadLog.recover(directory: dir.path, after: 3).records.map(\.payload) == [[3], [4]])
    }

    @Test func oversizeAndBadHeaderAreRefused() throws {
        let dir = TemporaryDirectory()
        let log = try WriteAheadLog(directory: dir.path, policy: .never, nextSequence: 1)
        #expect(throws: StorageError.self) { try log.append([UInt8](repeating: 0, count: WriteAheadLog.maximumPayload + 1)) }
        writeBytes(Array("not a wal file at all".utf8), to: dir.path.appending("00000000000000000001.log"))
        #expect(throws: StorageError.self) { try WriteAheadLog.recover(directory: dir.path, after: 0) }
    }
}

@Suite("WAL transaction records")
struct TransactionRecordTests {
    /// Any float bit pattern (NaN payloads, -0, subnormals, infinities) survives a record
    /// bit for bit, and the vector travels as base64, not as decimal text.
    @Test func vectorsRoundTripBitForBit() async throws {
        await propertyCheck(count: 50, input: Gen.int(in: 0...64), Gen.uint64(in: 0...UInt64.max)) { dimension, seed in
            var rng = SeededGenerator(seed: seed)
            let vector = (0..<dimension).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
            let transaction = PreparedTransaction(mutations: [
                .putDocument(id: DocumentID(high: 0, low: seed), metadata: .object(["a": .number(1)]), chunks: [
                    ChunkInput(id: ChunkID(high: 1, low: 2), text: "t", vector: vector, metadata: nil)
                ])
            ])
            let bytes = try! JSONEncoder().encode(transaction)
            let back = try! JSONDecoder().decode(PreparedTransaction.self, from: bytes)
            guard case .putDocument(_, _, let chunks) = back.mutations[0] else { Issue.record("wrong case"); return }
            #expect(chunks[0].vector.map(\.bitPattern) == vector.map(\.bitPattern), "seed \(seed)")
            #expect(String(decoding: bytes, as: UTF8.self).contains("\"vector64\""))
        }
    }

    /// Records written before vectors were base64 (a JSON array) still replay.
    @Test func recordsWithVectorArraysStillDecode() throws {
        let old = #"{"mutations":[{"putChunk":{"document":7,"chunk":{"id":9,"vector":[0.5,-1,3.25]}}}]}"#
        let decoded = try JSONDecoder().decode(PreparedTransaction.self, from: Data(old.utf8))
        guard case .putChunk(_, let chunk) = decoded.mutations[0] else { Issue.record("wrong case"); return }
        #expect(chunk.vector == [0.5, -1, 3.25])
        let bad = old.replacingOccurrences(of: #""vector":[0.5,-1,3.25]"#, with: #""vector64":"AAA""#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PreparedTransaction.self, from: Data(bad.utf8)) }
    }

    @Test func aRecordIsAboutAThirdOfTheJSONArraySize() throws {
        var rng = SeededGenerator(seed: 1)
        let vector = (0..<384).map { _ in Float(Double(rng.next() % 2_000_000) / 1_000_000 - 1) / 20 }
        let record = try JSONEncoder().encode(ChunkInput(id: ChunkID(high: 0, low: 1), vector: vector))
        let asArray = try JSONEncoder().encode(vector)
        #expect(record.count < asArray.count / 2, "\(record.count) bytes against \(asArray.count) for the array alone")
    }
}
