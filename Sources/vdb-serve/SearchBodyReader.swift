#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Search bodies of the usual shapes read straight from their bytes.
///
/// Foundation's `JSONDecoder` builds a tree of the whole body and then a value per number: for
/// a 384-d query sent as a JSON array that was ~0.3 ms, more than the search, and even for
/// base64 it was the largest part of the server's own work per request. This reader takes one
/// pass over the bytes and writes the floats into their array.
///
/// It reads only what it can answer exactly as the strict decoder would: an object of known
/// keys, each once, with plain strings (no escapes), integers written as digits, numbers
/// within float32's range, and no `filter`. For anything else it returns nil, and the body
/// goes through ``StrictBody/decodeStrictly(from:)``, which also names every error; so the
/// two paths cannot disagree on what is refused, nor on how.
enum SearchBodyReader {
    /// The fields of a search or batch body.
    struct Fields {
        var vector: [Float]?
        var vectors: [[Float]]?
        var base64: String?
        var options = SearchOptions()
    }

    /// A single search's body (`vector` or `vectorBase64`), or nil to decode it strictly.
    static func search(_ bytes: UnsafeRawBufferPointer) -> SearchRequest? {
        guard let fields = read(bytes, batch: false) else { return nil }
        return SearchRequest(vector: fields.vector, vectorBase64: fields.base64, options: fields.options)
    }

    /// A batch's body (`vectors` or `vectorsBase64`), or nil to decode it strictly.
    static func batch(_ bytes: UnsafeRawBufferPointer) -> BatchSearchRequest? {
        guard let fields = read(bytes, batch: true) else { return nil }
        return BatchSearchRequest(vectors: fields.vectors, vectorsBase64: fields.base64, options: fields.options)
    }

    private static func read(_ bytes: UnsafeRawBufferPointer, batch: Bool) -> Fields? {
        guard let base = bytes.baseAddress else { return nil }
        var cursor = Cursor(base: base.assumingMemoryBound(to: UInt8.self), end: bytes.count)
        var fields = Fields()
        var seen: [String] = []
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        if !cursor.consume(UInt8(ascii: "}")) {
            repeat {
                // A key twice: the strict decoder's to judge.
                guard let key = cursor.plainString(), !seen.contains(key), cursor.consume(UInt8(ascii: ":")) else { return nil }
                seen.append(key)
                switch key {
                case "vector" where !batch: guard let v = cursor.floats() else { return nil }; fields.vector = v
                case "vectors" where batch: guard let v = cursor.floatRows() else { return nil }; fields.vectors = v
                case "vectorBase64" where !batch, "vectorsBase64" where batch: guard let s = cursor.plainString() else { return nil }; fields.base64 = s
                case "k": guard let n = cursor.integer() else { return nil }; fields.options.k = n
                case "ef": guard let n = cursor.integer() else { return nil }; fields.options.ef = n
                case "nprobe": guard let n = cursor.integer() else { return nil }; fields.options.nprobe = n
                case "rerank": guard let n = cursor.integer() else { return nil }; fields.options.rerank = n
                case "leaves": guard let n = cursor.integer() else { return nil }; fields.options.leaves = n
                case "include": guard let s = cursor.strings() else { return nil }; fields.options.include = s
                case "consistency": guard let s = cursor.plainString() else { return nil }; fields.options.consistency = s
                default: return nil  // `filter`, an unknown key: the strict decoder's
                }
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        }
        guard cursor.atEnd else { return nil }
        return fields
    }

    /// A position in the body; every read skips the whitespace before its value.
    struct Cursor {
        let base: UnsafePointer<UInt8>
        let end: Int
        var i = 0

        var atEnd: Bool {
            mutating get {
                skipSpace()
                return i == end
            }
        }

        mutating func skipSpace() {
            while i < end, base[i] == 0x20 || base[i] == 0x0A || base[i] == 0x0D || base[i] == 0x09 { i += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < end, base[i] == byte else { return false }
            i += 1
            return true
        }

        /// A string with no escapes or control characters, as valid UTF-8.
        mutating func plainString() -> String? {
            guard consume(UInt8(ascii: "\"")) else { return nil }
            let start = i
            while i < end, base[i] != UInt8(ascii: "\"") {
                if base[i] == UInt8(ascii: "\\") || base[i] < 0x20 { return nil }
                i += 1
            }
            guard i < end else { return nil }
            let text = String(validating: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
            i += 1
            return text
        }

        /// `[` strings `]`.
        mutating func strings() -> [String]? { list { $0.plainString() } }

        /// An integer written as digits (at most 18, so it fits an Int), optionally negative.
        mutating func integer() -> Int? {
            skipSpace()
            var j = i
            let negative = j < end && base[j] == UInt8(ascii: "-")
            if negative { j += 1 }
            let first = j
            var value = 0
            while j < end, base[j] >= UInt8(ascii: "0"), base[j] <= UInt8(ascii: "9") {
                // Past 18 digits the value is not kept (it would overflow); the guard below declines.
                if j - first < 18 { value = value * 10 + Int(base[j] - UInt8(ascii: "0")) }
                j += 1
            }
            let digits = j - first
            guard digits > 0, digits <= 18, digits == 1 || base[first] != UInt8(ascii: "0") else { return nil }
            // A fraction or an exponent: the strict decoder decides what it means.
            if j < end, base[j] == UInt8(ascii: ".") || base[j] == UInt8(ascii: "e") || base[j] == UInt8(ascii: "E") { return nil }
            i = j
            return negative ? -value : value
        }

        /// A JSON number as the nearest float32 to its nearest double (as the strict decoder
        /// reads it), or nil when it is not valid JSON or lies outside float32's range.
        mutating func float() -> Float? {
            skipSpace()
            let start = i
            var j = i
            let negative = j < end && base[j] == UInt8(ascii: "-")
            if negative { j += 1 }
            // The significant digits (up to 19, as an integer) and the power of ten they are
            // scaled by, read on the way, for ``nearFloat``.
            var mantissa: UInt64 = 0
            var significant = 0
            var scale = 0
            func digits(fraction: Bool) -> Int {
                let from = j
                // Eight digits at a time while the mantissa has room for them (a float's
                // fraction is usually 15-18 digits long): the same mantissa, significant count
                // and scale as the loop below would reach one digit at a time.
                while fraction, mantissa < 100_000_000_000, j + 8 <= end, let eight = Self.eightDigits(base + j) {
                    if mantissa > 0 {
                        significant += 8
                    } else if eight > 0 {
                        significant += Self.decimalLength(eight)
                    }
                    mantissa = mantissa * 100_000_000 + eight
                    scale -= 8
                    j += 8
                }
                while j < end, base[j] >= UInt8(ascii: "0"), base[j] <= UInt8(ascii: "9") {
                    let digit = UInt64(base[j] - UInt8(ascii: "0"))
                    if significant > 0 || digit != 0 {
                        significant += 1
                        if significant <= 19 { mantissa = mantissa * 10 + digit } else if !fraction { scale += 1 }
                    }
                    if fraction, significant <= 19 { scale -= 1 }
                    j += 1
                }
                return j - from
            }
            let intStart = j
            let intDigits = digits(fraction: false)
            guard intDigits > 0, intDigits == 1 || base[intStart] != UInt8(ascii: "0") else { return nil }
            if j < end, base[j] == UInt8(ascii: ".") {
                j += 1
                guard digits(fraction: true) > 0 else { return nil }
            }
            var exponent = 0
            if j < end, base[j] == UInt8(ascii: "e") || base[j] == UInt8(ascii: "E") {
                j += 1
                var sign = 1
                if j < end, base[j] == UInt8(ascii: "+") || base[j] == UInt8(ascii: "-") {
                    if base[j] == UInt8(ascii: "-") { sign = -1 }
                    j += 1
                }
                let from = j
                while j < end, base[j] >= UInt8(ascii: "0"), base[j] <= UInt8(ascii: "9") {
                    if exponent < 100_000 { exponent = exponent * 10 + Int(base[j] - UInt8(ascii: "0")) }
                    j += 1
                }
                guard j > from else { return nil }
                exponent *= sign
            }
            if significant <= 19, let value = Self.nearFloat(mantissa, scale + exponent, negative: negative) {
                i = j
                return value
            }
            let length = j - start
            guard length < 64 else { return nil }
            // strtod reads a NUL-terminated copy; the whole token must be read (a locale whose
            // decimal point is not "." would stop early, and then the strict decoder reads it).
            let parsed: Double? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
                let text = buffer.baseAddress!
                UnsafeMutableRawPointer(text).copyMemory(from: base + start, byteCount: length)
                text[length] = 0
                var stop: UnsafeMutablePointer<CChar>?
                errno = 0
                let value = strtod(text, &stop)
                // Past a double's range either way (ERANGE): the strict decoder's to judge.
                return stop == text + length && errno == 0 ? value : nil
            }
            guard let parsed, Float32Values.fits(parsed) else { return nil }
            i = j
            return Float(parsed)
        }

        /// The 8 bytes at `p` as a number, when all are ASCII digits (SWAR: one load, a
        /// test of all eight bytes at once, and three multiplications instead of eight).
        @inline(__always)
        static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
            let bytes = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
            // Each byte is 0x30...0x39: its high nibble is 3, and adding 6 does not carry into it.
            guard bytes & 0xF0F0_F0F0_F0F0_F0F0 == 0x3030_3030_3030_3030,
                  (bytes &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0 == 0x3030_3030_3030_3030
            else { return nil }
            // The first digit is the lowest byte. Pairs, then fours, then all eight.
            var v = bytes &- 0x3030_3030_3030_3030
            v = (v &* 10) &+ (v >> 8)  // each even byte: two digits as 0...99
            v = (((v & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32)))
                &+ (((v >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32)))) >> 32
            return v
        }

        /// How many decimal digits `value` (1...99,999,999) has.
        @inline(__always)
        static func decimalLength(_ value: UInt64) -> Int {
            var length = 1, bound: UInt64 = 10
            while value >= bound {
                length += 1
                bound *= 10
            }
            return length
        }

        /// Powers of ten that a double holds exactly.
        private static let exactPowers: [Double] = (0...22).map { (0..<$0).reduce(1.0) { x, _ in x * 10 } }
        /// Their reciprocals, each correctly rounded: a multiplication instead of a division
        /// (which took a tenth of a JSON array query's reading time).
        private static let reciprocals: [Double] = exactPowers.map { 1 / $0 }

        /// `mantissa` × 10^`power` as the float32 nearest to its nearest double, when that can
        /// be known without strtod; nil otherwise (strtod decides).
        ///
        /// The double here is at most three roundings from the exact value (the mantissa, then
        /// a product with an exact power of ten, or with a power's rounded reciprocal, or two
        /// divisions by exact powers): within 3.5 units in the last place of the correctly
        /// rounded double. If every double 8 units either side narrows to the same
        /// float, so does the correctly rounded one, since narrowing is monotonic; only numbers
        /// within a few parts in 10^16 of halfway between two floats go on to strtod.
        @inline(__always)
        static func nearFloat(_ mantissa: UInt64, _ power: Int, negative: Bool) -> Float? {
            if mantissa == 0 { return negative ? -0.0 : 0.0 }
            var value = Double(mantissa)
            switch power {
            case 0...22: value *= exactPowers[power]
            case -22..<0: value *= reciprocals[-power]
            case -44 ..< -22: value = value / exactPowers[22] / exactPowers[-22 - power]
            default: return nil
            }
            // Normal floats only: a subnormal or an overflow is strtod's and the range check's.
            guard value >= 1.2e-38, value <= 3.4e38 else { return nil }
            let low = Float(Double(bitPattern: value.bitPattern - 8)), high = Float(Double(bitPattern: value.bitPattern + 8))
            guard low == high else { return nil }
            return negative ? -low : low
        }

        /// `[` numbers `]`.
        mutating func floats() -> [Float]? { list(reserving: 384) { $0.float() } }

        /// `[` arrays of numbers `]`.
        mutating func floatRows() -> [[Float]]? { list { $0.floats() } }

        /// `[` elements `,` … `]`, or nil when an element or the brackets are not there.
        @inline(__always)
        mutating func list<Element>(reserving capacity: Int = 0, _ element: (inout Cursor) -> Element?) -> [Element]? {
            guard consume(UInt8(ascii: "[")) else { return nil }
            var out = [Element]()
            out.reserveCapacity(capacity)
            if consume(UInt8(ascii: "]")) { return out }
            repeat {
                guard let x = element(&self) else { return nil }
                out.append(x)
            } while consume(UInt8(ascii: ","))
            return consume(UInt8(ascii: "]")) ? out : nil
        }
    }
}
