import Foundation
import Logging
import Testing
import VDBKit
@testable import vdb_serve

/// The access log's lines are written byte by byte (one per request): each must still be one
/// JSON object with an RFC 3339 time, numbers as numbers, and the fixed fields protected.
@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test(arguments: [
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (1_796_236_800, 123, "2026-12-02T18:40:00.123Z"),
        (951_868_799, 7, "2000-02-29T23:59:59.007Z"),
        (253_402_300_799, 999, "9999-12-31T23:59:59.999Z"),
    ])
    func timestampsAreRFC3339WithMilliseconds(seconds: Int, milliseconds: Int, expected: String) {
        var line: [UInt8] = []
        JSONLogHandler.appendTimestamp(seconds: seconds, milliseconds: milliseconds, to: &line)
        #expect(String(decoding: line, as: UTF8.self) == expected)
    }

    @Test func decimalsMatchStringFormatting() {
        var generator = SeededGenerator(seed: 17)  // seeded: a failure replays
        var values = [0, 1, 9, 10, 99, 100, 999, 1_000, Int.max, Int.max / 10]
        for _ in 0..<500 { values.append(Int.random(in: 0...Int.max, using: &generator) >> Int.random(in: 0..<63, using: &generator)) }
        for value in values {
            for width in [1, 2, 3, 4, 18] {
                var line: [UInt8] = []
                line.appendDecimal(value, width: width)
                let plain = String(value)
                let padded = String(repeating: "0", count: max(0, width - plain.count)) + plain
                #expect(String(decoding: line, as: UTF8.self) == padded, "\(value) width \(width)")
            }
        }
        // Row ids: the whole unsigned range, past Int.max and at the top power of ten.
        var rows: [UInt64] = [UInt64(Int.max) + 1, 9_999_999_999_999_999_999, 10_000_000_000_000_000_000, .max]
        for _ in 0..<200 { rows.append(UInt64.random(in: 0...UInt64.max, using: &generator)) }
        for row in rows {
            for width in [1, 19] {
                var line: [UInt8] = []
                line.appendDecimal(row, width: width)
                let plain = String(row)
                #expect(String(decoding: line, as: UTF8.self) == String(repeating: "0", count: max(0, width - plain.count)) + plain, "\(row)")
            }
        }
    }

    @Test func aLineIsOneJSONObjectWithTypedFields() throws {
        let captured = Locked<[[UInt8]]>([])
        var logger = Logger(label: "vdb-serve") { label in
            JSONLogHandler(label: label, level: .info) { line in captured.withLock { $0.append(line) } }
        }
        logger[metadataKey: "request_id"] = "abc"
        let before = Date()
        logger.info("request \"quoted\"\n", metadata: [
            "status": .stringConvertible(200), "offset": .stringConvertible(-3), "duration_ms": .stringConvertible(0.25),
            "ok": .stringConvertible(true), "level": "shadowed", "tags": .array(["a", "b"]),
        ])
        let lines = captured.withLock { $0 }
        #expect(lines.count == 1)
        let bytes = try #require(lines.first)
        #expect(bytes.last == UInt8(ascii: "\n") && bytes.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["message"] as? String == "request \"quoted\"\n")
        #expect(object["level"] as? String == "info")
        #expect(object["metadata.level"] as? String == "shadowed")
        #expect(object["logger"] as? String == "vdb-serve")
        #expect(object["request_id"] as? String == "abc")
        #expect(object["status"] as? Int == 200)
        #expect(object["offset"] as? Int == -3)
        #expect(object["duration_ms"] as? Double == 0.25)
        #expect(object["ok"] as? Bool == true)
        #expect(object["tags"] as? [String] == ["a", "b"])
        let time = try #require(object["time"] as? String)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: time), "\(time)")
        #expect(abs(parsed.timeIntervalSince(before)) < 5)
    }
}
