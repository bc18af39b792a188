public import Foundation

/// A 128-bit identifier that is either a UUID or a row number (`high == 0`): the shared shape
/// of ``ChunkID`` and ``DocumentID``, which stay distinct types so the compiler keeps them apart.
/// JSON spells a UUID as a string and a row number as a number.
public protocol Identifier128: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    var high: UInt64 { get }
    var low: UInt64 { get }
    init(high: UInt64, low: UInt64)
}

extension Identifier128 {
    /// The id of row `row` of an ingested dataset.
    public init(row: UInt64) { self.init(high: 0, low: row) }

    public init(uuid: UUID) {
        let (h, l) = uuidWords(uuid)
        self.init(high: h, low: l)
    }

    /// A fresh random (version 4) UUID id.
    public static func random() -> Self { Self(uuid: UUID()) }

    /// Parses a decimal row number or a UUID string.
    public init?(_ text: String) {
        guard let (h, l) = parseIdentifier(text) else { return nil }
        self.init(high: h, low: l)
    }

    /// The row number, when this id is one (`high == 0`).
    public var row: UInt64? { high == 0 ? low : nil }

    public var description: String { formatIdentifier(high, low) }

    public static func < (a: Self, b: Self) -> Bool { (a.high, a.low) < (b.high, b.low) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let row = try? c.decode(UInt64.self) {
            self.init(row: row)
        } else if let text = try? c.decode(String.self), let id = Self(text) {
            self = id
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "an id is a non-negative integer or a UUID string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let row { try c.encode(row) } else { try c.encode(description) }
    }
}

/// The external, user-visible identity of a chunk, stable across compactions: a UUID for chunks
/// created over REST, the row number for datasets ingested without documents.
public struct ChunkID: Identifier128 {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
}

/// The identity of a document; the same two forms as ``ChunkID``. Documents are placed whole on
/// one shard by a stable hash of this id.
public struct DocumentID: Identifier128 {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A hash that is the same in every process and on every machine (Swift's `Hasher` is
    /// seeded per process, so it cannot place data).
    public var stableHash: UInt64 { mix64(high ^ mix64(low &+ 0x9E37_79B9_7F4A_7C15)) }

    /// The deterministic id of the `ordinal`-th chunk of this document, for inputs that give
    /// chunks no ids of their own (so re-ingesting a file yields the same ids).
    public func derivedChunkID(ordinal: Int) -> ChunkID {
        var h = mix64(high ^ 0xD6E8_FEB8_6659_FD93 ^ UInt64(ordinal))
        var l = mix64(low ^ mix64(UInt64(ordinal) &+ 0xA076_1D64_78BD_642F))
        // Mark it as an RFC 4122 version-8 ("custom") UUID so it never reads as a row number.
        h = (h & ~0xF000) | 0x8000
        l = (l & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return ChunkID(high: h, low: l)
    }
}

/// A position inside one segment. It never leaves VDBKit's storage and index layers.
public typealias RowOffset = UInt32

/// A manifest version; monotonic per library.
public typealias Epoch = UInt64

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit bijection.
@inlinable
func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

private func uuidWords(_ uuid: UUID) -> (UInt64, UInt64) {
    let b = uuid.uuid
    let h = [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let l = [b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return (h, l)
}

private func parseIdentifier(_ text: String) -> (UInt64, UInt64)? {
    if let row = UInt64(text) { return (0, row) }
    guard let uuid = UUID(uuidString: text) else { return nil }
    let (h, l) = uuidWords(uuid)
    // A UUID whose high word is zero would read back as a row number; RFC UUIDs never have one.
    return h == 0 ? nil : (h, l)
}

private func formatIdentifier(_ high: UInt64, _ low: UInt64) -> String {
    if high == 0 { return String(low) }
    var bytes = [UInt8](repeating: 0, count: 16)
    for i in 0..<8 {
        bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
        bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
    }
    let uuid = bytes.withUnsafeBytes { raw in raw.load(as: uuid_t.self) }
    return UUID(uuid: uuid).uuidString.lowercased()
}
