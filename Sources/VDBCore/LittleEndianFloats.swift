import Foundation

/// Float32 vectors as base64 of their little-endian bytes: bit-exact (NaN payloads, -0 and
/// subnormals survive) and far shorter than decimal text. The WAL stores vectors this way.
package enum LittleEndianFloats {
    package static func encodeBase64(_ vector: [Float]) -> String {
        var bytes = [UInt8](repeating: 0, count: vector.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in vector.enumerated() {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        return Data(bytes).base64EncodedString()
    }

    /// The floats `text` encodes, or nil when it is not base64 or not a whole number of floats.
    ///
    /// Standard base64 with its padding (RFC 4648 §4): length a multiple of 4, `=` only at the
    /// end and at most two, nothing outside the alphabet (no whitespace). Decoded in one pass
    /// straight into the floats' memory: a search body's query goes through here, and
    /// Foundation's decoder plus a copy per float cost about as much as reading the rest.
    package static func decode(base64 text: String) -> [Float]? {
        var text = text
        return text.withUTF8 { decode(base64: UnsafeRawBufferPointer($0)) }
    }

    /// ``decode(base64:)-(String)`` over the text's UTF-8 bytes.
    package static func decode(base64 text: UnsafeRawBufferPointer) -> [Float]? {
        guard text.count % 4 == 0 else { return nil }
        var padding = 0
        if text.count >= 4 {
            let last = text[text.count - 1] == UInt8(ascii: "="), secondLast = text[text.count - 2] == UInt8(ascii: "=")
            if last { padding = secondLast ? 2 : 1 } else if secondLast { return nil }  // "QQ=A": a character after `=`
        }
        let byteCount = text.count / 4 * 3 - padding
        guard byteCount % 4 == 0 else { return nil }
        var valid = true
        let floats = [Float](unsafeUninitializedCapacity: byteCount / 4) { buffer, initialized in
            valid = Base64Alphabet.decode(text, padding: padding, into: UnsafeMutableRawBufferPointer(buffer))
            #if _endian(big)
            for i in 0..<byteCount / 4 { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
            #endif
            initialized = byteCount / 4
        }
        return valid ? floats : nil
    }
}

/// Standard base64 decoding (RFC 4648 §4) by table.
enum Base64Alphabet {
    /// Each byte's 6-bit value, or 0xFF for a byte outside the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Decodes `text` (a multiple of 4 long, ending in `padding` `=`) into `out`, which holds
    /// exactly its bytes; false when a character is outside the alphabet (an `=` anywhere but
    /// the padding included).
    static func decode(_ text: UnsafeRawBufferPointer, padding: Int, into out: UnsafeMutableRawBufferPointer) -> Bool {
        values.withUnsafeBufferPointer { table in
            let groups = text.count / 4
            guard groups > 0 else { return true }
            var bad: UInt8 = 0
            func word(_ i: Int, keep: Int) -> UInt32 {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])]
                let c = keep >= 3 ? table[Int(text[i + 2])] : 0
                let d = keep >= 4 ? table[Int(text[i + 3])] : 0
                bad |= (a | b | c | d) & 0xC0
                return UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
            }
            for g in 0..<groups - 1 {
                let w = word(g * 4, keep: 4)
                out[g * 3] = UInt8(truncatingIfNeeded: w >> 16)
                out[g * 3 + 1] = UInt8(truncatingIfNeeded: w >> 8)
                out[g * 3 + 2] = UInt8(truncatingIfNeeded: w)
            }
            // The last group: 3, 2 or 1 bytes as its padding says.
            let o = (groups - 1) * 3
            let w = word((groups - 1) * 4, keep: 4 - padding)
            out[o] = UInt8(truncatingIfNeeded: w >> 16)
            if padding < 2 { out[o + 1] = UInt8(truncatingIfNeeded: w >> 8) }
            if padding < 1 { out[o + 2] = UInt8(truncatingIfNeeded: w) }
            return bad == 0
        }
    }
}
