import Foundation
import PropertyBased
import Testing
import VDBKit
@testable import vdb_serve

/// The direct reader of search bodies agrees with the strict decoder: every body it reads, the
/// decoder reads to the same fields (floats bit for bit), and what it declines goes to the
/// decoder, which names the error.
@Suite("Search body reader")
struct SearchBodyReaderTests {
    /// What both paths produce, for comparing them.
    struct Seen: Equatable {
        var vector: [UInt32]?
        var vectors: [[UInt32]]?
        var base64: String?
        var k, ef, nprobe, rerank, leaves: Int?
        var include: [String]?
        var consistency: String?
        var filter: Bool

        init(_ r: SearchRequest) {
            vector = r.vector?.map(\.bitPattern)
            base64 = r.vectorBase64
            (k, ef, nprobe, rerank, leaves) = (r.options.k, r.options.ef, r.options.nprobe, r.options.rerank, r.options.leaves)
            (include, consistency, filter) = (r.options.include, r.options.consistency, r.options.filter != nil)
        }

        init(_ r: BatchSearchRequest) {
            vectors = r.vectors?.map { $0.map(\.bitPattern) }
            base64 = r.vectorsBase64
            (k, ef, nprobe, rerank, leaves) = (r.options.k, r.options.ef, r.options.nprobe, r.options.rerank, r.options.leaves)
            (include, consistency, filter) = (r.options.include, r.options.consistency, r.options.filter != nil)
        }
    }

    static func direct(_ body: String) -> Seen? {
        Array(body.utf8).withUnsafeBytes { SearchRequest.readDirectly($0) }.map(Seen.init)
    }

    static func strict(_ body: String) -> Seen? {
        (try? SearchRequest.decodeStrictly(from: Data(body.utf8))).map(Seen.init)
    }

    /// A number as clients write it: Python's repr of a float32 widened, fixed, exponents.
    static func number(_ rng: inout SeededGenerator) -> String {
        let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
        let y: Float = x.isFinite ? x : Float(Int(rng.next() % 2001) - 1000) / 1000
        switch rng.next() % 6 {
        case 0: return "\(Double(y))"
        case 1: return String(format: "%.9g", Double(y))
        case 2: return String(format: "%.3e", Double(y)).replacingOccurrences(of: "e+", with: rng.next() % 2 == 0 ? "E+" : "e")
        case 3: return "\(Int(rng.next() % 200) - 100)"
        case 4: return String(format: "%.17g", Double(y) / 1e30)
        default: return "-0.0"
        }
    }

    static func space(_ rng: inout SeededGenerator) -> String {
        [" ", "", "", "\n", "\t ", "\r\n"][Int(rng.next() % 6)]
    }

    /// A search body of random fields, order and spacing.
    static func body(_ rng: inout SeededGenerator) -> String {
        var fields: [String] = []
        let s = { (rng: inout SeededGenerator) in space(&rng) }
        if rng.next() % 3 != 0 {
            let values = (0..<Int(rng.next() % 20)).map { _ in number(&rng) }
            fields.append("\"vector\":\(s(&rng))[\(values.map { s(&rng) + $0 + s(&rng) }.joined(separator: ","))]")
        } else {
            fields.append("\"vectorBase64\":\"\(Data((0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).base64EncodedString())\"")
        }
        for key in ["k", "ef", "nprobe", "rerank", "leaves"] where rng.next() % 2 == 0 {
            fields.append("\"\(key)\":\(s(&rng))\(Int(rng.next() % 2000) - 10)")
        }
        if rng.next() % 2 == 0 {
            let names = ["text", "metadata", "vector", "é"].filter { _ in rng.next() % 2 == 0 }
            fields.append("\"include\":[\(names.map { "\"\($0)\"" }.joined(separator: ","))]")
        }
        if rng.next() % 3 == 0 { fields.append("\"consistency\":\"\(["leader", "any", "ünknown"][Int(rng.next() % 3)])\"") }
        fields.shuffle(using: &rng)
        return s(&rng) + "{" + fields.map { s(&rng) + $0 + s(&rng) }.joined(separator: ",") + "}" + s(&rng)
    }

    @Test func readsWhatTheStrictDecoderReads() async {
        await propertyCheck(count: 500, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            let body = Self.body(&rng)
            let direct = Self.direct(body)
            #expect(direct != nil, "declined a plain body: \(body)")
            #expect(direct == Self.strict(body), "\(body)")
        }
    }

    /// Bodies with a byte deleted, inserted or changed: whatever the reader still reads, the
    /// strict decoder reads the same way.
    @Test func damagedBodiesAreReadAlikeOrDeclined() async {
        let alphabet = Array("{}[],:\" 0123456789.eE+-\\nulltrue".utf8)
        await propertyCheck(count: 2_000, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            var bytes = Array(Self.body(&rng).utf8)
            for _ in 0...(rng.next() % 3) {
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1 where at < bytes.count: bytes[at] = byte
                default: bytes.insert(byte, at: at)
                }
            }
            let body = String(decoding: bytes, as: UTF8.self)
            if let direct = Self.direct(body) {
                #expect(direct == Self.strict(body), "\(body)")
            }
        }
    }

    /// Numbers read without strtod narrow to the same float32 as the strict decoder's, above
    /// all those near halfway between two floats, where one wrong rounding of the double would
    /// show: each such midpoint written out to 17, 19 and 25 digits, nudged a few units of the
    /// double's last place either way, and with exponents from 10^-44 to 10^22.
    @Test func numbersNearHalfwayBetweenFloatsNarrowAsStrtodDoes() async {
        await propertyCheck(count: 3_000, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            // A normal float32, its neighbour up, and the double exactly halfway between.
            let bits = UInt32(truncatingIfNeeded: rng.next()) % 0x7E00_0000 + 0x0080_0000
            let low = Float(bitPattern: bits)
            let halfway = (Double(low) + Double(low.nextUp)) / 2
            let nudge = Int64(rng.next() % 9) - 4
            let value = Double(bitPattern: UInt64(Int64(halfway.bitPattern) + nudge)) * (rng.next() % 2 == 0 ? 1 : -1)
            var numbers = [String(format: "%.17g", value), String(format: "%.19g", value), String(format: "%.25g", value), String(format: "%.17e", value)]
            numbers.append(String(format: "%.16e", Double(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) % 0x7E00_0000 + 0x0080_0000))))
            let body = "{\"vector\":[\(numbers.joined(separator: ","))]}"
            #expect(Self.direct(body) != nil, "declined \(body)")
            #expect(Self.direct(body) == Self.strict(body), "\(body)")
        }
    }

    /// What the reader leaves to the strict decoder, which reads it or names its error.
    /// Fractions of every length up to 30 digits, with runs of leading zeros that end inside or
    /// across the eight-digit steps: read as the strict decoder reads them.
    @Test func longFractionsReadAsTheStrictDecoderReads() async {
        await propertyCheck(count: 2_000, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SeededGenerator(seed: seed)
            let zeros = Int(rng.next() % 20), length = Int(rng.next() % 30) + 1
            let digits = (0..<length).map { _ in String(rng.next() % 10) }.joined()
            let whole = ["0", "1", "12345678", "9"][Int(rng.next() % 4)]
            let exponent = rng.next() % 3 == 0 ? "e\(Int(rng.next() % 40) - 20)" : ""
            let number = (rng.next() % 2 == 0 ? "-" : "") + whole + "." + String(repeating: "0", count: zeros) + digits + exponent
            let body = "{\"vector\":[\(number),0.5]}"
            #expect(Self.direct(body) != nil, "declined \(body)")
            #expect(Self.direct(body) == Self.strict(body), "\(body)")
        }
    }

    @Test func eightDigitsAtOnce() {
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<2_000 {
            let value = rng.next() % 100_000_000
            var text = Array(String(value).utf8)
            text = Array(repeating: UInt8(ascii: "0"), count: 8 - text.count) + text
            #expect(text.withUnsafeBufferPointer { SearchBodyReader.Cursor.eightDigits($0.baseAddress!) } == value, "\(value)")
            #expect(value == 0 || SearchBodyReader.Cursor.decimalLength(value) == String(value).count)
            // Any byte that is not a digit, anywhere in the eight: not read.
            let at = Int(rng.next() % 8)
            for byte: UInt8 in [UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "e"), 0, 0xB0, 0x39 + 0x80] {
                text[at] = byte
                #expect(text.withUnsafeBufferPointer { SearchBodyReader.Cursor.eightDigits($0.baseAddress!) } == nil, "\(text)")
            }
        }
    }

    @Test func declinesWhatNeedsTheStrictDecoder() {
        let declined = [
            #"{"vector":[1,2],"filter":{"lang":"en"}}"#,  // filters
            #"{"vector":[1,2],"k":3,"k":4}"#,  // a key twice
            #"{"vector":[1,2],"kk":3}"#,  // an unknown key
            #"{"vector":[1,2],"k":null}"#,  // null
            #"{"vector":[1,2],"k":3.0}"#, #"{"vector":[1,2],"k":1e1}"#,  // integers not as digits
            #"{"vector":[1e39]}"#, #"{"vector":[1e400]}"#, #"{"vector":[1e-400]}"#,  // past float32's or double's range
            #"{"vector":[01]}"#, #"{"vector":[1.]}"#, #"{"vector":[.5]}"#, #"{"vector":[+1]}"#,  // not JSON numbers
            #"{"vectorBase64":"AAAA\/AAA"}"#, #"{"consistency":"le\u0061der"}"#,  // escapes
            #"{"vectors":[[1,2]]}"#,  // a batch's key
            #"{"vector":[1,2]} x"#, #"{"vector":[1,2],}"#, #"[1,2]"#, "",  // not one object
            #"{"k":123456789012345678901}"#,  // an integer past Int
        ]
        for body in declined { #expect(Self.direct(body) == nil, "\(body)") }
        #expect(Self.strict(#"{"vector":[1,2],"filter":{"lang":"en"}}"#)?.filter == true)
        #expect(Self.strict(#"{"vectorBase64":"AAAA\/AAA"}"#)?.base64 == "AAAA/AAA")
        #expect(Self.strict(#"{"vector":[1e39]}"#) == nil)
    }

    @Test func readsBatches() throws {
        let body = #"{ "vectors": [[1, -2.5e-1], [], [3]], "k": 5, "include": [] }"#
        let direct = try #require(Array(body.utf8).withUnsafeBytes { BatchSearchRequest.readDirectly($0) })
        let strict = try BatchSearchRequest.decodeStrictly(from: Data(body.utf8))
        #expect(Seen(direct) == Seen(strict))
        #expect(direct.vectors == [[1, -0.25], [], [3]] && direct.options.k == 5 && direct.options.include == [])
        #expect(Array(#"{"vector":[1]}"#.utf8).withUnsafeBytes { BatchSearchRequest.readDirectly($0) } == nil)
    }
}
