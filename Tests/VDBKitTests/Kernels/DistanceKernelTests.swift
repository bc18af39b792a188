import CVDBKernels
import PropertyBased
import Testing
import VDBKit

@Suite("Distance kernels")
struct DistanceKernelTests {
    static let levels: [vdb_kernel_level] = [VDB_KERNEL_SCALAR, VDB_KERNEL_AVX2, VDB_KERNEL_AVX512]

    /// Every variant this CPU runs agrees with a Double-precision reference, for every length
    /// (tails of each SIMD width included).
    @Test func variantsMatchReference() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...1100), Gen.uint64(in: 0...UInt64.max)) { dimension, seed in
            let v = randomVectors(count: 2, dimension: dimension, seed: seed, range: -10...10)
            let a = Array(v[0..<dimension]), b = Array(v[dimension...])
            var l2 = 0.0, dot = 0.0, scale = 0.0
            for i in 0..<dimension {
                let x = Double(a[i]), y = Double(b[i])
                l2 += (x - y) * (x - y)
                dot += x * y
                scale += abs(x * y)
            }
            for level in Self.levels where vdb_kernel_level_supported(level) != 0 {
                let gotL2 = Double(vdb_l2sq_f32_level(level, a, b, dimension))
                let gotDot = Double(vdb_dot_f32_level(level, a, b, dimension))
                #expect(abs(gotL2 - l2) <= 1e-5 * max(1, l2), "l2 level \(level.rawValue) dim \(dimension)")
                #expect(abs(gotDot - dot) <= 1e-5 * max(1, scale), "dot level \(level.rawValue) dim \(dimension)")
            }
            #expect(vdb_l2sq_f32(a, b, dimension) == vdb_l2sq_f32_level(vdb_kernel_level_active(), a, b, dimension))
            #expect(vdb_dot_f32(a, b, dimension) == vdb_dot_f32_level(vdb_kernel_level_active(), a, b, dimension))
        }
    }

    /// The float-by-byte kernel (scalar quantization) agrees with a Double reference.
    @Test func floatByByteMatchesReference() async {
        await propertyCheck(count: 200, input: Gen.int(in: 1...800), Gen.uint64(in: 0...UInt64.max)) { dimension, seed in
            let q = randomVectors(count: 1, dimension: dimension, seed: seed, range: -2...2)
            var rng = SeededGenerator(seed: seed &+ 1)
            let codes = (0..<dimension).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var exact = 0.0, scale = 0.0
            for i in 0..<dimension {
                exact += Double(q[i]) * Double(codes[i])
                scale += abs(Double(q[i]) * Double(codes[i]))
            }
            for level in Self.levels where vdb_kernel_level_supported(level) != 0 {
                let got = Double(vdb_dot_f32_u8_level(level, q, codes, dimension))
                #expect(abs(got - exact) <= 1e-5 * max(1, scale), "level \(level.rawValue) dim \(dimension)")
            }
            #expect(vdb_dot_f32_u8(q, codes, dimension) == vdb_dot_f32_u8_level(vdb_kernel_level_active(), q, codes, dimension))
        }
    }

    /// The row scans give the pairwise kernel's numbers, row by row (to rounding: the low-dimension
    /// scans sum in another order).
    @Test(arguments: [1, 2, 3, 5, 7, 8, 9, 16, 100, 128, 384])
    func rowScanMatchesPairwise(dimension: Int) {
        let rows = 37
        let base = randomVectors(count: rows, dimension: dimension, seed: 7)
        let query = randomVectors(count: 1, dimension: dimension, seed: 8)
        var l2 = [Float](repeating: 0, count: rows), dot = [Float](repeating: 0, count: rows)
        vdb_l2sq_f32_rows(query, base, rows, dimension, &l2)
        vdb_dot_f32_rows(query, base, rows, dimension, &dot)
        base.withUnsafeBufferPointer { b in
            for r in 0..<rows {
                let row = b.baseAddress! + r * dimension
                let pairL2 = vdb_l2sq_f32(query, row, dimension), pairDot = vdb_dot_f32(query, row, dimension)
                #expect(abs(l2[r] - pairL2) <= 1e-5 * max(1, abs(pairL2)))
                #expect(abs(dot[r] - pairDot) <= 1e-5 * max(1, abs(pairDot)))
            }
        }
    }

    @Test func activeLevelIsSupported() {
        #expect(vdb_kernel_level_supported(vdb_kernel_level_active()) != 0)
        #expect(["avx512", "avx2+fma", "scalar"].contains(Distance.activeInstructionSet))
    }
}

@Suite("CRC32C")
struct CRC32CTests {
    /// The check value of the Castagnoli CRC (RFC 3720, appendix B.4).
    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([]) == 0)
    }

    /// The hardware path equals the portable one, and checksums chain across splits.
    @Test func hardwareMatchesPortableAndChains() async {
        await propertyCheck(count: 200, input: Gen.uint8().array(of: 0...300), Gen.int(in: 0...300)) { bytes, cut in
            let split = min(cut, bytes.count)
            let whole = CRC32C.checksum(bytes)
            #expect(whole == vdb_crc32c_portable(0, bytes, bytes.count))
            let chained = CRC32C.checksum(Array(bytes[split...]), continuing: CRC32C.checksum(Array(bytes[..<split])))
            #expect(chained == whole)
        }
    }
}
