import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import VDBCore
@testable import VDBEngine
@testable import VDBStorage

/// Background work (compaction, index builds in the server) runs niced, on its own thread,
/// with paced writes; these hold each of those promises.
@Suite("Background limits")
struct BackgroundLimitsTests {
    @Test func backgroundWorkRunsNicedOnItsOwnThread() async throws {
        let base = currentThreadNiceness()
        let limits = BackgroundLimits(threads: 1, niceness: 5, writeBytesPerSecond: nil)
        let (niceness, isMain) = try await limits.run { (currentThreadNiceness(), Thread.isMainThread) }
        #expect(niceness == min(19, base + 5))
        #expect(!isMain)
        #expect(currentThreadNiceness() == base, "the caller's thread keeps its priority")
        let unlimited = try await BackgroundLimits.none.run { currentThreadNiceness() }
        #expect(unlimited == base)
    }

    /// With one thread, a parallel loop runs on the caller's (niced) thread, not on a pool's.
    @Test func oneThreadLoopsRunOnTheCallersThread() async throws {
        let limits = BackgroundLimits(threads: 1, niceness: 3, writeBytesPerSecond: nil)
        let seen = try await limits.run { () -> Set<Int32> in
            let values = Mutex<Set<Int32>>([])
            Parallel.forEachBlock(count: 100, blockSize: 7, threads: 1) { _ in
                let n = currentThreadNiceness()
                values.withLock { _ = $0.insert(n) }
            }
            return values.withLock { $0 }
        }
        #expect(seen == [min(19, currentThreadNiceness() + 3)])
    }

    /// 3 MiB at 10 MiB/s cannot take less than 0.2 s (0.3 s less the 0.1 s burst allowance).
    @Test func theThrottleHoldsWritesToItsRate() {
        let throttle = WriteThrottle(bytesPerSecond: 10 << 20)
        let start = Date()
        for _ in 0..<12 { throttle.admit(256 << 10) }
        #expect(Date().timeIntervalSince(start) >= 0.19)
    }

    /// A paced writer writes the same file an unpaced one does.
    @Test func pacedSegmentsAreByteIdentical() throws {
        let dir = TemporaryDirectory()
        let vectors = randomVectors(count: 3_000, dimension: 64, seed: 4)
        func write(_ name: String, throttle: WriteThrottle?) throws -> [UInt8] {
            let path = dir.file(name)
            let writer = try SegmentWriter(path: path, dimension: 64, metric: .l2, throttle: throttle)
            for r in 0..<3_000 {
                try vectors[r * 64..<(r + 1) * 64].withUnsafeBufferPointer { vector in
                    try writer.append(vector: vector, chunkID: ChunkID(row: UInt64(r)), documentID: DocumentID(row: UInt64(r)), text: "row \(r)")
                }
            }
            try writer.finish()
            return readBytes(path)
        }
        let plain = try write("plain.vdbseg", throttle: nil)
        let paced = try write("paced.vdbseg", throttle: WriteThrottle(bytesPerSecond: 1 << 30, writebackInterval: 64 << 10))
        #expect(plain == paced)
        #expect(try Segment(path: dir.file("paced.vdbseg")).rowCount == 3_000)
    }
}
