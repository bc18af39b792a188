import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// swift-log's backend for `vdb-serve`: one JSON object per line on standard error, so a log
/// shipper (Vector, Fluent Bit, Loki's promtail) reads fields, not prose:
///
///     {"time":"2026-12-02T18:40:00.123Z","level":"info","logger":"vdb-serve","message":"request","request_id":"…",…}
///
/// Metadata becomes top-level fields (nested values as JSON); a field named like one of the
/// four fixed ones is kept under `metadata.`. Each line is one `write(2)`, so lines from
/// concurrent requests never interleave.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    /// Where lines go: standard error, or a test's capture.
    let sink: @Sendable ([UInt8]) -> Void

    init(label: String, level: Logger.Level, sink: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String, function: String,
        line: UInt
    ) {
        var line: [UInt8] = []
        line.reserveCapacity(320)
        line.append(contentsOf: "{\"time\":\"".utf8)
        Self.appendTimestamp(to: &line)
        line.append(contentsOf: "\",\"level\":".utf8)
        line.appendJSONString(level.rawValue)
        line.append(contentsOf: ",\"logger\":".utf8)
        line.appendJSONString(label)
        line.append(contentsOf: ",\"message\":".utf8)
        line.appendJSONString(message.description)
        // The common cases without a merged copy: only the call's fields, or only the logger's.
        var fields = metadata
        if let explicit {
            if fields.isEmpty { fields = explicit } else { fields.merge(explicit) { $1 } }
        }
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: ","))
            line.appendJSONString(Self.reserved.contains(key) ? "metadata." + key : key)
            line.append(UInt8(ascii: ":"))
            Self.append(value, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        sink(line)
    }

    private static let reserved: Set<String> = ["time", "level", "logger", "message"]

    private static func append(_ value: Logger.Metadata.Value, to line: inout [UInt8]) {
        switch value {
        case .string(let text):
            line.appendJSONString(text)
        case .stringConvertible(let convertible):
            // Numbers stay numbers, so a query like `duration_ms > 100` works downstream.
            switch convertible {
            case let number as Int where number >= 0: line.appendDecimal(number)
            case let number as any BinaryInteger: line.append(contentsOf: "\(number)".utf8)
            case let number as Double where number.isFinite: line.append(contentsOf: "\(number)".utf8)
            case let flag as Bool: line.append(contentsOf: (flag ? "true" : "false").utf8)
            default: line.appendJSONString(convertible.description)
            }
        case .array(let values):
            line.append(UInt8(ascii: "["))
            for (i, element) in values.enumerated() {
                if i > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let fields):
            line.append(UInt8(ascii: "{"))
            for (i, (key, element)) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { line.append(UInt8(ascii: ",")) }
                line.appendJSONString(key)
                line.append(UInt8(ascii: ":"))
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    /// The time now, RFC 3339 in UTC with milliseconds (`2026-12-02T18:40:00.123Z`), written
    /// straight into the line: one per request, so no formatter and no String.
    static func appendTimestamp(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        appendTimestamp(seconds: now.tv_sec, milliseconds: Int(now.tv_nsec / 1_000_000), to: &line)
    }

    static func appendTimestamp(seconds: Int, milliseconds: Int, to line: inout [UInt8]) {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        line.appendDecimal(Int(parts.tm_year) + 1900, width: 4)
        line.append(UInt8(ascii: "-"))
        line.appendDecimal(Int(parts.tm_mon) + 1, width: 2)
        line.append(UInt8(ascii: "-"))
        line.appendDecimal(Int(parts.tm_mday), width: 2)
        line.append(UInt8(ascii: "T"))
        line.appendDecimal(Int(parts.tm_hour), width: 2)
        line.append(UInt8(ascii: ":"))
        line.appendDecimal(Int(parts.tm_min), width: 2)
        line.append(UInt8(ascii: ":"))
        line.appendDecimal(Int(parts.tm_sec), width: 2)
        line.append(UInt8(ascii: "."))
        line.appendDecimal(milliseconds, width: 3)
        line.append(UInt8(ascii: "Z"))
    }

    @Sendable static func standardError(_ line: [UInt8]) {
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if written < 0, errno == EINTR { continue }
                    return  // standard error is gone: nothing better to do with a log line
                }
                offset += written
            }
        }
    }
}
