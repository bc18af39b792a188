import Foundation
import PropertyBased
import Testing
@testable import VDBCore

/// Float vectors as base64 (search bodies' `vectorBase64`, the WAL's vectors): our decoder
/// against Foundation's encoder, bit for bit, and every malformed form refused.
@Suite("Base64 float vectors")
struct LittleEndianFloatsTests {
    /// Any bit pattern, NaN payloads and -0 included, as 32-bit words.
    static func words(count: Int, seed: UInt64) -> [UInt32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
    }

    static func base64(_ words: [UInt32]) -> String {
        Data(words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }).base64EncodedString()
    }

    @Test func decodesFoundationsEncodingBitForBit() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...70), Gen.uint64(in: 0...UInt64.max)) { count, seed in
            let words = Self.words(count: count, seed: seed)
            let decoded = LittleEndianFloats.decode(base64: Self.base64(words))
            #expect(decoded?.map(\.bitPattern) == words, "count \(count), seed \(seed)")
        }
    }

    @Test func roundTripsItsOwnEncoding() async {
        await propertyCheck(count: 100, input: Gen.int(in: 0...70), Gen.uint64(in: 0...UInt64.max)) { count, seed in
            let vector = Self.words(count: count, seed: seed).map(Float.init(bitPattern:))
            let decoded = LittleEndianFloats.decode(base64: LittleEndianFloats.encodeBase64(vector))
            #expect(decoded?.map(\.bitPattern) == vector.map(\.bitPattern))
        }
    }

    /// One byte anywhere replaced by one outside the alphabet (whitespace, `-`, `_`, a
    /// non-ASCII byte, or `=` before the padding): refused, as Foundation refuses it.
    @Test func refusesAByteOutsideTheAlphabet() async {
        let outside: [UInt8] = [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), 0, 0xC3, 0x80]
        await propertyCheck(count: 200, input: Gen.int(in: 1...40), Gen.uint64(in: 0...UInt64.max)) { count, seed in
            var rng = SeededGenerator(seed: seed)
            var text = Array(Self.base64(Self.words(count: count, seed: seed)).utf8)
            let at = Int.random(in: 0..<text.count, using: &rng)
            let padded = text[at] == UInt8(ascii: "=")
            text[at] = padded ? UInt8(ascii: "A") : (outside + [UInt8(ascii: "=")]).randomElement(using: &rng)!
            let string = String(decoding: text, as: UTF8.self)
            if padded {
                // Padding replaced by a character: the length no longer names whole floats.
                #expect(LittleEndianFloats.decode(base64: string) == nil)
            } else {
                #expect(LittleEndianFloats.decode(base64: string) == nil, "\(string) at \(at)")
                #expect(Data(base64Encoded: string) == nil || text[at] == UInt8(ascii: "="), "Foundation agrees")
            }
        }
    }

    @Test func refusesMalformedPaddingAndLengths() {
        let three = Self.base64([0x0102_0304, 0x0506_0708, 0x090A_0B0C])  // 12 bytes: 16 characters, no padding
        #expect(LittleEndianFloats.decode(base64: three)?.count == 3)
        #expect(LittleEndianFloats.decode(base64: String(three.dropLast())) == nil, "not a multiple of 4")
        #expect(LittleEndianFloats.decode(base64: "") == [])
        for bad in ["====", "QQ=A", "Q===", "QQ==QQ==", "AAAA=AAA", " AAAAAA=", "AAAAAA="] {
            #expect(LittleEndianFloats.decode(base64: bad) == nil, "\(bad)")
        }
        // Whole bytes that are not whole floats: 1, 2, 3, 5 bytes.
        for bytes in [1, 2, 3, 5] {
            #expect(LittleEndianFloats.decode(base64: Data(repeating: 7, count: bytes).base64EncodedString()) == nil, "\(bytes) bytes")
        }
        // Padding as it should be: 8 bytes end in "=" (two floats), 4 bytes in "==" (one).
        #expect(LittleEndianFloats.decode(base64: Self.base64([1, 2]))?.map(\.bitPattern) == [1, 2])
        #expect(LittleEndianFloats.decode(base64: Self.base64([0xFFFF_FFFF]))?.map(\.bitPattern) == [0xFFFF_FFFF])
    }
}
