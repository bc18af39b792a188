import Synchronization

/// Ids for requests that bring none: 24 hex digits, unique within the process and unlikely to
/// repeat across processes, made without a system call.
///
/// Two `getrandom` calls per request (96 random bits) were a visible part of a search's time on
/// the direct path. Here a counter goes through a bijective mix keyed once per process (so ids
/// of one process never collide and do not read as a sequence), followed by a random tag of
/// the process (so two servers' ids are told apart).
enum RequestIDs {
    private static let key: UInt64 = { var generator = SystemRandomNumberGenerator(); return generator.next() }()
    private static let tag: UInt32 = { var generator = SystemRandomNumberGenerator(); return generator.next() }()
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return format(mixed: mix(n ^ key), tag: tag)
    }

    /// SplitMix64's finalizer: a bijection on 64-bit words that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `mixed` as 16 lowercase hex digits, then `tag` as 8.
    static func format(mixed: UInt64, tag: UInt32) -> String {
        String(unsafeUninitializedCapacity: 24) { out in
            let digits: StaticString = "0123456789abcdef"
            digits.withUTF8Buffer { hex in
                for i in 0..<16 { out[i] = hex[Int(truncatingIfNeeded: mixed >> (60 - 4 * UInt64(i))) & 15] }
                for i in 0..<8 { out[16 + i] = hex[Int(truncatingIfNeeded: tag >> (28 - 4 * UInt32(i))) & 15] }
            }
            return 24
        }
    }
}
