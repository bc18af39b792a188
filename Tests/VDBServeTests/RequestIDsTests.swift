import Testing
@testable import vdb_serve

/// Ids made for requests that bring none.
@Suite("Request ids")
struct RequestIDsTests {
    @Test func idsAre24LowercaseHexDigitsAndDistinct() {
        let ids = (0..<20_000).map { _ in RequestIDs.next() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(id.utf8.count == 24, "\(id)")
            #expect(id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }, "\(id)")
        }
        // One process's tag ends every id; the mixed counter does not read as a sequence.
        #expect(Set(ids.map { $0.suffix(8) }).count == 1)
        #expect(Set(ids.prefix(100).map { $0.prefix(4) }).count > 50)
    }

    @Test func formatPrintsBothPartsInFull() {
        #expect(RequestIDs.format(mixed: 0, tag: 0) == "000000000000000000000000")
        #expect(RequestIDs.format(mixed: 0x0123_4567_89AB_CDEF, tag: 0xFEDC_BA98) == "0123456789abcdeffedcba98")
        #expect(RequestIDs.format(mixed: .max, tag: .max) == "ffffffffffffffffffffffff")
    }

    /// The mix is a bijection (so a process never repeats an id): distinct inputs, distinct outputs.
    @Test func mixKeepsDistinctInputsDistinct() {
        var seen = Set<UInt64>()
        for n in 0..<UInt64(50_000) { seen.insert(RequestIDs.mix(n)) }
        for n in 0..<UInt64(1_000) { seen.insert(RequestIDs.mix(n &* 0x1_0000_0001 &+ 1 << 63)) }
        #expect(seen.count == 51_000)
    }

    @Test func aUsableGivenIDIsKeptAndOthersReplaced() {
        #expect(RequestObservationMiddleware.requestID(given: "trace-me-42") == "trace-me-42")
        #expect(RequestObservationMiddleware.requestID(given: "has space").utf8.count == 24)
        #expect(RequestObservationMiddleware.requestID(given: String(repeating: "x", count: 129)).utf8.count == 24)
        #expect(RequestObservationMiddleware.requestID(given: nil).utf8.count == 24)
    }
}
