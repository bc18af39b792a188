/// JSON written straight into bytes, for the paths where `JSONEncoder` costs more than the work
/// (search responses, one log line per request).
extension Array where Element == UInt8 {
    /// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    /// Most texts need no escape and go in as one copy.
    mutating func appendJSONString(_ text: String) {
        append(UInt8(ascii: "\""))
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            append(contentsOf: text.utf8)
        } else {
            for byte in text.utf8 { appendEscaped(byte) }
        }
        append(UInt8(ascii: "\""))
    }

    @inline(__always)
    private mutating func appendEscaped(_ byte: UInt8) {
        let hex: StaticString = "0123456789abcdef"
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): appendPair(byte)
        case 0x0A: appendPair(UInt8(ascii: "n"))
        case 0x0D: appendPair(UInt8(ascii: "r"))
        case 0x09: appendPair(UInt8(ascii: "t"))
        case 0..<0x20:
            append(contentsOf: "\\u00".utf8)
            append(hex.utf8Start[Int(byte >> 4)])
            append(hex.utf8Start[Int(byte & 15)])
        default: append(byte)
        }
    }

    /// A backslash and `letter`.
    @inline(__always)
    private mutating func appendPair(_ letter: UInt8) {
        append(UInt8(ascii: "\\"))
        append(letter)
    }

    /// `value` in decimal, zero-padded to at least `width` digits, without making a String.
    mutating func appendDecimal(_ value: Int, width: Int = 1) {
        precondition(value >= 0, "a non-negative value")
        appendDecimal(UInt64(value), width: width)
    }

    /// ``appendDecimal(_:width:)-(Int,_)`` for any 64-bit unsigned value (a row id).
    mutating func appendDecimal(_ value: UInt64, width: Int = 1) {
        precondition(width <= 19, "at most 19 digits of padding")
        var divisor: UInt64 = 1, digits = 1
        while digits < width || value / divisor >= 10 {
            divisor *= 10
            digits += 1
        }
        var rest = value
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
