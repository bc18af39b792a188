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

    /// The bf16 coarse pass (SIMD where the CPU has it, and the portable loop) stays within its
    /// stated bound of the float products, for odd dimensions, odd block counts and query
    /// counts off the groups of four; bf16 conversion rounds to nearest even.
    @Test func bf16CoarseProductsStayWithinTheirBound() async {
        var rounded: UInt16 = 0
        for (value, bits) in [(Float(1), UInt16(0x3f80)), (1 + 1.0 / 256, 0x3f80), (1 + 3.0 / 256, 0x3f82), (-2.5, 0xc020)] as [(Float, UInt16)] {
            withUnsafePointer(to: value) { vdb_f32_to_bf16($0, &rounded, 1) }
            #expect(rounded == bits, "bf16 of \(value)")
        }
        await propertyCheck(count: 40, input: Gen.int(in: 1...70), Gen.int(in: 1...9), Gen.uint64(in: 0...UInt64.max)) { dimension, count, seed in
            let blocks = 1 + Int(seed % 3), pairs = (dimension + 1) / 2
            let vectors = randomVectors(count: blocks * 16, dimension: dimension, seed: seed, range: -3...3)
            let queries = randomVectors(count: count, dimension: dimension, seed: seed &+ 1, range: -3...3)
            var blocked = [UInt16](repeating: 0, count: blocks * pairs * 32), q16 = [UInt16](repeating: 0, count: count * 2 * pairs)
            var half: UInt16 = 0
            for v in 0..<(blocks * 16) {
                for t in 0..<dimension {
                    withUnsafePointer(to: vectors[v * dimension + t]) { vdb_f32_to_bf16($0, &half, 1) }
                    blocked[(((v / 16) * pairs + t / 2) * 16 + v % 16) * 2 + t % 2] = half
                }
            }
            for i in 0..<count { for t in 0..<dimension { withUnsafePointer(to: queries[i * dimension + t]) { vdb_f32_to_bf16($0, &q16[i * 2 * pairs + t], 1) } } }
            var simd = [Float](repeating: .nan, count: count * blocks * 16), portable = simd
            vdb_dot_bf16_blocked16_batch(q16, count, pairs, blocked, blocks, &simd)
            vdb_dot_bf16_blocked16_batch_portable(q16, count, pairs, blocked, blocks, &portable)
            let bound = vdb_bf16_dot_error(2 * pairs)
            for i in 0..<count {
                let q = queries[(i * dimension)..<((i + 1) * dimension)]
                let qn = q.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                for v in 0..<(blocks * 16) {
                    let x = vectors[(v * dimension)..<((v + 1) * dimension)]
                    let exact = zip(q, x).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    let limit = bound * qn * x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot() + 1e-6
                    #expect(abs(simd[i * blocks * 16 + v] - exact) <= limit, "query \(i), vector \(v), dim \(dimension)")
                    #expect(abs(portable[i * blocks * 16 + v] - exact) <= limit)
                }
            }
        }
    }

    /// Product-quantization kernels against plain loops: the per-query tables (every variant),
    /// the blocked centroid products (every variant, block counts with and without the 4-block
    /// fast path), the ADC scan with and without a bias (odd and even row and code counts), and
    /// the nearest-codeword search.
    @Test func productQuantizationKernelsMatchReference() async {
        await propertyCheck(count: 60, input: Gen.int(in: 1...12), Gen.int(in: 1...9), Gen.uint64(in: 0...UInt64.max)) { m, sub, seed in
            let q = randomVectors(count: 1, dimension: m * sub, seed: seed, range: -2...2)
            let books = randomVectors(count: m * 256, dimension: sub, seed: seed &+ 1, range: -2...2)
            var transposed = [Float](repeating: 0, count: m * sub * 256)
            for j in 0..<m { for c in 0..<256 { for t in 0..<sub { transposed[(j * sub + t) * 256 + c] = books[(j * 256 + c) * sub + t] } } }
            var expected = [Float](repeating: 0, count: m * 256)
            for j in 0..<m { for c in 0..<256 { expected[j * 256 + c] = -2 * (0..<sub).reduce(0) { $0 + q[j * sub + $1] * books[(j * 256 + c) * sub + $1] } } }
            for level in Self.levels where vdb_kernel_level_supported(level) != 0 {
                var got = [Float](repeating: .nan, count: m * 256)
                vdb_pq_query_tables_level(level, q, transposed, m, sub, -2, &got)
                #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "tables, level \(level.rawValue)")
            }
            // The ADC scan over codes in blocks of 64 rows: bias + the sum of each row's table
            // entries, for a range starting anywhere in a block (4-row groups and single rows).
            var rng = SeededGenerator(seed: seed &+ 2)
            let rows = Int(rng.next() % 150), first = Int(rng.next() % 70)
            let codes = (0..<((first + rows) * m)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var blockedCodes = [UInt8](repeating: 0xee, count: (first + rows + 63) / 64 * 64 * m)
            vdb_pq_block_codes(codes, first + rows, m, &blockedCodes)
            let bias = randomVectors(count: 1, dimension: max(1, rows), seed: seed &+ 3)
            var scores = [Float](repeating: .nan, count: max(1, rows)), plain = scores
            vdb_pq_adc_scan_blocked(expected, blockedCodes, m, first, rows, bias, &scores)
            vdb_pq_adc_scan_blocked(expected, blockedCodes, m, first, rows, nil, &plain)
            for i in 0..<rows {
                let sum = (0..<m).reduce(Float(0)) { $0 + expected[$1 * 256 + Int(codes[(first + i) * m + $1])] }
                #expect(abs(plain[i] - sum) <= 1e-4 * max(1, abs(sum)), "scan row \(i)")
                #expect(abs(scores[i] - (sum + bias[i])) <= 1e-4 * max(1, abs(sum + bias[i])), "biased scan row \(i)")
                // A row scores the same bits alone as in its group.
                var alone: Float = 0
                vdb_pq_adc_scan_blocked(expected, blockedCodes, m, first + i, 1, nil, &alone)
                #expect(alone == plain[i], "row \(i) alone")
            }
            let total = first + rows, lastBlock = total / 64 * 64 * m
            for j in 0..<m where total % 64 != 0 {
                #expect(blockedCodes[(lastBlock + j * 64 + total % 64)..<(lastBlock + j * 64 + 64)].allSatisfy { $0 == 0 }, "the last block is zero-padded")
            }
            // Blocked products: 16 × blocks vectors of m · sub components.
            let dimension = m * sub, blocks = 1 + Int(rng.next() % 9)
            let vectors = randomVectors(count: blocks * 16, dimension: dimension, seed: seed &+ 4)
            var blocked = [Float](repeating: 0, count: blocks * 16 * dimension)
            for v in 0..<(blocks * 16) { for t in 0..<dimension { blocked[(v / 16) * dimension * 16 + t * 16 + v % 16] = vectors[v * dimension + t] } }
            for level in Self.levels where vdb_kernel_level_supported(level) != 0 {
                var got = [Float](repeating: .nan, count: blocks * 16)
                vdb_dot_f32_blocked16_level(level, q, blocked, blocks, dimension, &got)
                for v in 0..<(blocks * 16) {
                    let dot = (0..<dimension).reduce(Float(0)) { $0 + q[$1] * vectors[v * dimension + $1] }
                    #expect(abs(got[v] - dot) <= 1e-4 * max(1, abs(dot)), "blocked level \(level.rawValue) vector \(v)")
                }
            }
            // Batched forms: every query's row equals its single-query result.
            let queries = randomVectors(count: 5, dimension: dimension, seed: seed &+ 5)
            var batchTables = [Float](repeating: .nan, count: 5 * m * 256), batchDots = [Float](repeating: .nan, count: 5 * blocks * 16)
            vdb_pq_query_tables_batch(queries, 5, dimension, transposed, m, sub, -1, &batchTables)
            vdb_dot_f32_blocked16_batch(queries, 5, blocked, blocks, dimension, &batchDots)
            for i in 0..<5 {
                let query = Array(queries[i * dimension..<(i + 1) * dimension])
                var one = [Float](repeating: 0, count: m * 256), dots = [Float](repeating: 0, count: blocks * 16)
                vdb_pq_query_tables(query, transposed, m, sub, -1, &one)
                vdb_dot_f32_blocked16(query, blocked, blocks, dimension, &dots)
                #expect(Array(batchTables[i * m * 256..<(i + 1) * m * 256]) == one, "batched tables, query \(i)")
                #expect(zip(batchDots[i * blocks * 16..<(i + 1) * blocks * 16], dots).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "batched products, query \(i)")
            }
            // Nearest codeword of sub-space 0 for the query's first sub-vector, from the
            // transposed codebook (sub rows of 256).
            var scratch = [Float](repeating: 0, count: 256)
            let nearest = vdb_nearest_l2sq_transposed(q, transposed, 256, sub, &scratch)
            let distances = (0..<256).map { c in (0..<sub).reduce(Float(0)) { $0 + (q[$1] - books[c * sub + $1]) * (q[$1] - books[c * sub + $1]) } }
            #expect(abs(distances[nearest] - distances.min()!) <= 1e-5 * max(1, distances.min()!))
        }
    }

    /// Nearest-codeword search over a transposed codebook returns the first index of the
    /// minimum, ties included: small integer components make the distances exact in float and
    /// tie often, so any lane or tail order other than "first" shows. Sizes cover the fused
    /// kernel's blocks of 8, its scalar tail, k < 8 and sub-spaces above 16 components.
    @Test func nearestCodewordPicksTheFirstMinimum() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...20), Gen.int(in: 1...300), Gen.uint64(in: 0...UInt64.max)) { dim, k, seed in
            var rng = SeededGenerator(seed: seed)
            let centroids = (0..<(k * dim)).map { _ in Float(Int(rng.next() % 4)) }
            let q = (0..<dim).map { _ in Float(Int(rng.next() % 4)) }
            var transposed = [Float](repeating: 0, count: k * dim)
            for c in 0..<k { for t in 0..<dim { transposed[t * k + c] = centroids[c * dim + t] } }
            let distances = (0..<k).map { c in (0..<dim).reduce(Float(0)) { $0 + (q[$1] - centroids[c * dim + $1]) * (q[$1] - centroids[c * dim + $1]) } }
            let first = distances.firstIndex(of: distances.min()!)!
            var scratch = [Float](repeating: 0, count: k)
            #expect(vdb_nearest_l2sq_transposed(q, transposed, k, dim, &scratch) == first, "dim \(dim) k \(k)")
        }
    }

    /// The affine argmin (a k-means assignment from BLAS products) gives the scalar loop's
    /// answer, the first of tied minima included, with and without offsets.
    @Test func affineArgminMatchesScalar() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...300), Gen.uint64(in: 0...UInt64.max)) { k, seed in
            var rng = SeededGenerator(seed: seed)
            let scores = (0..<k).map { _ in Float(Int(rng.next() % 6)) }
            let offsets = (0..<k).map { _ in Float(Int(rng.next() % 6)) }
            for scale: Float in [-1, -2] {
                let plain = (0..<k).map { scale * scores[$0] }
                #expect(vdb_argmin_affine(scores, nil, scale, k) == plain.firstIndex(of: plain.min()!)!)
                #expect(vdb_argmin_affine(scores, nil, scale, k) == vdb_argmin_affine_portable(scores, nil, scale, k))
                let shifted = (0..<k).map { offsets[$0] + scale * scores[$0] }
                #expect(vdb_argmin_affine(scores, offsets, scale, k) == shifted.firstIndex(of: shifted.min()!)!, "k \(k)")
            }
        }
    }

    /// The 16-bit-by-byte kernel (scalar quantization) is exact integer arithmetic: every level
    /// gives the reference sum, at every length (the 32-, 16- and 1-wide tails) and at the
    /// extremes of both operands.
    @Test func weightByByteMatchesReference() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...800), Gen.uint64(in: 0...UInt64.max)) { dimension, seed in
            var rng = SeededGenerator(seed: seed)
            // One case in four at the extremes, where a widening or sign mistake shows.
            let extreme = seed % 4 == 0
            let weights = (0..<dimension).map { _ in
                extreme ? (Bool.random(using: &rng) ? Int16(32_767) : -32_767) : Int16.random(in: -32_767...32_767, using: &rng)
            }
            let codes = (0..<dimension).map { _ in extreme ? UInt8(255) : UInt8.random(in: 0...255, using: &rng) }
            // Within the caller's bound (255 · Σ|w| < 2^31): as long as that holds, no partial sum overflows.
            var usable = dimension
            while 255 * weights.prefix(usable).reduce(0, { $0 + Int(abs(Int32($1))) }) >= Int(Int32.max) { usable -= 1 }
            let reference = (0..<usable).reduce(0) { $0 + Int(weights[$1]) * Int(codes[$1]) }
            for level in Self.levels where vdb_kernel_level_supported(level) != 0 {
                #expect(Int(vdb_dot_i16_u8_level(level, weights, codes, usable)) == reference, "level \(level.rawValue) dim \(usable)")
            }
            #expect(Int(vdb_dot_i16_u8(weights, codes, usable)) == reference)
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
