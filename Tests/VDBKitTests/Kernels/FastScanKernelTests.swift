import CVDBKernels
import PropertyBased
import Testing
import VDBKit

/// The byte-table fast scan and the table quantizer behind it (`pq_blocked.c`).
@Suite("PQ fast scan kernels")
struct FastScanKernelTests {
    /// Byte sums from the SIMD kernel (where the CPU has it), the portable one and a plain loop
    /// agree for every row of any run of blocks; and the quantized tables keep each row's float
    /// sum within the reported bound of bias + step × byte sum, with entries small enough that
    /// m of them fit 16 bits (m above 257 included); with fine tables (m ≤ 257), within the
    /// fine bound of the two sums' estimate (the fast scan's margin for float error aside).
    @Test func fastScanAndQuantizerMatchReference() async {
        await propertyCheck(count: 40, input: Gen.int(in: 1...300), Gen.uint64(in: 0...UInt64.max)) { m, seed in
            var rng = SeededGenerator(seed: seed)
            // Tables of uneven ranges per sub-quantizer, like real ones.
            let spread = randomVectors(count: 1, dimension: m, seed: seed &+ 1, range: 0.01...3)
            let raw = randomVectors(count: m, dimension: 256, seed: seed &+ 2, range: -1...1)
            let tables = (0..<(m * 256)).map { raw[$0] * spread[$0 / 256] }
            var bytes = [UInt8](repeating: 0, count: m * 256), mins = [Float](repeating: 0, count: m)
            var fine = [UInt8](repeating: 0, count: m * 256), coarseOnly = bytes
            var quantized = vdb_pq_quantized(), unrefined = vdb_pq_quantized()
            vdb_pq_quantize_tables(tables, m, &mins, &coarseOnly, nil, &unrefined)
            if m <= 257 {
                vdb_pq_quantize_tables(tables, m, &mins, &bytes, &fine, &quantized)
                #expect(bytes == coarseOnly && quantized.bound == unrefined.bound, "fine tables leave the byte tables as they were")
                #expect(quantized.fine_bound <= quantized.bound / 200 + 1e-30, "fine bound \(quantized.fine_bound) vs \(quantized.bound)")
            } else {
                (bytes, quantized) = (coarseOnly, unrefined)
            }
            let top = m <= 257 ? 255 : 65535 / m
            #expect(bytes.allSatisfy { Int($0) <= top }, "entries fit 16-bit sums")

            let blocks = 1 + Int(rng.next() % 5), first = Int(rng.next() % 3)
            let rows = (first + blocks) * 64
            let codes = (0..<(rows * m)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var blocked = [UInt8](repeating: 0, count: rows * m)
            vdb_pq_block_codes(codes, rows, m, &blocked)
            var simd = [UInt16](repeating: 0xbeef, count: blocks * 64), portable = simd, fineSums = simd
            vdb_pq_fast_scan(bytes, blocked, m, first, blocks, &simd)
            vdb_pq_fast_scan_portable(bytes, blocked, m, first, blocks, &portable)
            if m <= 257 { vdb_pq_fast_scan(fine, blocked, m, first, blocks, &fineSums) }
            var floats = [Float](repeating: 0, count: blocks * 64)
            vdb_pq_adc_scan_blocked(tables, blocked, m, first * 64, blocks * 64, nil, &floats)
            for i in 0..<(blocks * 64) {
                let row = first * 64 + i
                let sum = (0..<m).reduce(0) { $0 + Int(bytes[$1 * 256 + Int(codes[row * m + $1])]) }
                #expect(Int(simd[i]) == sum && Int(portable[i]) == sum, "byte sum of row \(row), m \(m)")
                let approx = quantized.bias + quantized.step * Float(sum)
                #expect(abs(approx - floats[i]) <= quantized.bound * 1.0001 + 1e-4 * max(1, abs(floats[i])), "bound, row \(row), m \(m)")
                guard m <= 257 else { continue }
                let fineSum = (0..<m).reduce(0) { $0 + Int(fine[$1 * 256 + Int(codes[row * m + $1])]) }
                #expect(Int(fineSums[i]) == fineSum, "fine sum of row \(row)")
                let exact = (0..<m).reduce(0.0) { $0 + Double(tables[$1 * 256 + Int(codes[row * m + $1])]) }
                // The bias summed exactly (its float sum may be off by m roundings); the other
                // float parameters' rounding is the margin.
                let bias = mins.reduce(0.0) { $0 + Double($1) }
                let refined = bias + Double(quantized.fine_offset) + Double(quantized.step) * Double(sum) + Double(quantized.fine_step) * Double(fineSum)
                let margin = 1e-6 * Double(abs(quantized.fine_offset) + quantized.step * Float(255 * m))
                #expect(abs(refined - exact) <= Double(quantized.fine_bound) * 1.0001 + margin, "fine bound, row \(row), m \(m)")
            }
        }
    }

    /// Selection (SIMD with spare room, SIMD without, portable) returns what sorting would put
    /// at position k, with duplicates and any k, and leaves the values partitioned around it
    /// (the fast scan's reservoir keeps the first k).
    @Test func selectionMatchesSorting() async {
        await propertyCheck(count: 200, input: Gen.int(in: 1...2_000), Gen.uint64(in: 0...UInt64.max)) { n, seed in
            var rng = SeededGenerator(seed: seed)
            // Few distinct values half the time, so runs of equal values are common.
            let distinct = rng.next() % 2 == 0 ? 4 : 1_000_000
            let values = (0..<n).map { _ in Float(Int(rng.next() % UInt64(distinct))) - 2 }
            let sorted = values.sorted()
            for k in Set([1, n, 1 + Int(rng.next() % UInt64(n))]) {
                for way in 0..<3 {
                    // The values sit inside a larger buffer: writes past them would show.
                    var buffer = [Float](repeating: -99, count: n + 32)
                    var spare = [Float](repeating: .nan, count: n + 16)
                    for i in 0..<n { buffer[16 + i] = values[i] }
                    let kth = buffer.withUnsafeMutableBufferPointer { b in
                        switch way {
                        case 0: vdb_select_kth(b.baseAddress! + 16, n, k, &spare)
                        case 1: vdb_select_kth(b.baseAddress! + 16, n, k, nil)
                        default: vdb_select_kth_portable(b.baseAddress! + 16, n, k)
                        }
                    }
                    let copy = Array(buffer[16..<(16 + n)])
                    #expect(kth == sorted[k - 1], "n \(n), k \(k), way \(way)")
                    #expect(copy[..<k].allSatisfy { $0 <= kth } && copy[k...].allSatisfy { $0 >= kth }, "partitioned around k")
                    #expect(copy.sorted() == sorted, "a permutation")
                    #expect(buffer[..<16].allSatisfy { $0 == -99 } && buffer[(16 + n)...].allSatisfy { $0 == -99 }, "nothing written outside")
                }
            }
        }
    }

    /// Score bounds (SIMD and portable) keep exactly the rows at or under the cut, in order,
    /// with the bounds a plain computation gives, and report the least lower bound dropped.
    @Test(arguments: [VDB_PQ_BOUNDS_L2, VDB_PQ_BOUNDS_DOT, VDB_PQ_BOUNDS_COSINE])
    func boundsKeepRowsUnderTheCut(mode: vdb_pq_bounds_mode) async {
        await propertyCheck(count: 50, input: Gen.int(in: 0...200), Gen.uint64(in: 0...UInt64.max)) { n, seed in
            var rng = SeededGenerator(seed: seed)
            let sums = (0..<n).map { _ in UInt16(rng.next() % 20_000) }
            let fine = (0..<n).map { _ in UInt16(rng.next() % 20_000) }
            let refined = rng.next() % 2 == 0
            let terms = randomVectors(count: 1, dimension: max(1, n), seed: seed &+ 1, range: 0...0.5)
            let (offset, step, slack, norm): (Float, Float, Float, Float) = (-0.8, 1e-4, 0.01, 0.9)
            let fineStep: Float = refined ? step / 254 : 0
            func bounds(_ i: Int) -> (Float, Float) {
                let a = offset + step * Float(sums[i]) + fineStep * Float(fine[i])
                switch mode {
                case VDB_PQ_BOUNDS_L2: return (a + terms[i] - slack, a + terms[i] + slack)
                case VDB_PQ_BOUNDS_COSINE:
                    let scale = 1 / max(1e-12, norm + terms[i]).squareRoot()
                    return ((a - slack) * scale, (a + slack) * scale)
                default: return (a - slack, a + slack)
                }
            }
            // A cut halfway between two neighbouring lower bounds, clear of float differences
            // between this computation and the kernel's (which may fuse multiply and add).
            let lows = (0..<n).map { bounds($0).0 }.sorted()
            // Only between lows far enough apart: equal sums give equal lows, and a cut on one
            // would keep or drop it by the last bit of the kernel's arithmetic.
            let splits = [0] + (1..<max(1, n)).filter { lows[$0] - lows[$0 - 1] > 1e-4 * max(1, abs(lows[$0])) } + (n > 0 ? [n] : [])
            let split = splits[Int(rng.next() % UInt64(splits.count))]
            let cut: Float = n == 0 ? 0 : split == 0 ? lows[0] - 1 : split == n ? lows[n - 1] + 1 : (lows[split - 1] + lows[split]) / 2
            let expected = (0..<n).filter { bounds($0).0 <= cut }
            let least = (0..<n).filter { bounds($0).0 > cut }.map { bounds($0).0 }.min() ?? .infinity
            for portable in [false, true] {
                var low = [Float](repeating: .nan, count: n + 16), high = low, index = [UInt32](repeating: 0, count: n + 16)
                var dropped = Float.infinity
                let kept = portable
                    ? vdb_pq_fast_bounds_portable(
                        sums, refined ? fine : nil, n, terms, mode, offset, step, fineStep, slack, norm, cut, &low, &high, &index, &dropped)
                    : vdb_pq_fast_bounds(sums, refined ? fine : nil, n, terms, mode, offset, step, fineStep, slack, norm, cut, &low, &high, &index, &dropped)
                #expect(index[..<kept].map(Int.init) == expected, "kept rows, portable \(portable)")
                for (t, i) in expected.enumerated() where t < kept {
                    let (lo, hi) = bounds(i)
                    #expect(abs(low[t] - lo) <= 1e-5 * max(1, abs(lo)) && abs(high[t] - hi) <= 1e-5 * max(1, abs(hi)))
                }
                #expect(dropped == least || abs(dropped - least) <= 1e-5 * max(1, abs(least)), "least dropped, portable \(portable)")
            }
        }
    }

    /// Constant tables (zero range) quantize to zeros with no error.
    @Test func flatTablesQuantizeExactly() {
        let tables = [Float](repeating: 0.25, count: 3 * 256)
        var bytes = [UInt8](repeating: 9, count: 3 * 256), mins = [Float](repeating: 0, count: 3)
        var quantized = vdb_pq_quantized()
        var fine = bytes
        vdb_pq_quantize_tables(tables, 3, &mins, &bytes, &fine, &quantized)
        #expect(bytes.allSatisfy { $0 == 0 } && fine.allSatisfy { $0 == 128 })
        #expect(quantized.bias == 0.75 && quantized.bound == 0 && quantized.fine_bound == 0)
    }
}
