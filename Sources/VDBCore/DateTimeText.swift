public import Foundation

/// ISO-8601 date-times as metadata holds them: strings such as `2024-03-01T12:00:00Z`, with or
/// without fractional seconds, or a bare date (`2024-03-01`, midnight UTC).
///
/// One parser for the three places that must agree: filter operands, schema validation of
/// declared `datetime` fields, and their sorted columns in segments.
public enum DateTimeText {
    /// The instant `text` names, or nil when it is not an ISO-8601 date-time or date.
    public static func parse(_ text: String) -> Date? {
        // Cheap rejection first: filters call this on every string operand.
        guard text.utf8.count >= 10, let first = text.utf8.first, (0x30...0x39).contains(first) else { return nil }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        if text.utf8.count == 10, let date = try? Date(text + "T00:00:00Z", strategy: .iso8601) { return date }
        return nil
    }
}
