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
        line.reserveCapacity(256)
        line += Array("{\"time\":".utf8)
        line.appendJSONString(Self.timestamp())
        line += Array(",\"level\":".utf8)
        line.appendJSONString(level.rawValue)
        line += Array(",\"logger\":".utf8)
        line.appendJSONString(label)
        line += Array(",\"message\":".utf8)
        line.appendJSONString(message.description)
        var fields = metadata
        if let explicit { fields.merge(explicit) { $1 } }
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: ","))
            line.appendJSONString(Self.reserved.contains(key) ? "metadata." + key : key)
            line.append(UInt8(ascii: ":"))
            Self.append(value, to: &line)
        }
        line += Array("}\n".utf8)
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
            case let number as any BinaryInteger: line += Array("\(number)".utf8)
            case let number as Double where number.isFinite: line += Array("\(number)".utf8)
            case let flag as Bool: line += Array((flag ? "true" : "false").utf8)
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

    /// RFC 3339 in UTC with milliseconds, without a formatter (they are not cheap to share).
    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
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
