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
    package static func decode(base64 text: String) -> [Float]? {
        guard let data = Data(base64Encoded: text), data.count % 4 == 0 else { return nil }
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}
