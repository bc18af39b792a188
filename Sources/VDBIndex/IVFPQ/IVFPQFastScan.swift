import CVDBKernels
import VDBCore

// The fast scan: step 2 of an IVF-PQ search by byte tables and SIMD lookups (codes in blocks of
// 64 rows, ``vdb_pq_fast_scan``), for queries that probe many rows. Split from
// `IVFPQIndex.swift`, which chooses between it and the float scan.
extension IVFPQIndex {
    /// From this many candidates on, the fast scan adds the fine tables. Measured on synthetic
    /// 384-d (m = 96): at K = 100 they made queries 20-35% faster, at K = 10 10-15% slower
    /// (few rows sit between the bounds when K is small, and the second lookup pass costs).
    static let fineTablesFromCandidates = 32

    /// Step 2 by byte tables, for queries probing many rows: the same candidates as the float
    /// scan, with few float sums. Every probed row's byte sum (``vdb_pq_fast_scan``, 64 rows a
    /// lookup) puts its float score within [lower, upper], half a byte step per sub-quantizer
    /// wide; with the fine tables of the byte tables' rounding (many candidates), half a step in
    /// all. With K candidates wanted, U the K-th smallest upper bound and L the (K+1)-th
    /// smallest lower bound:
    /// - a row with lower > U is out: K rows score at most U, below it;
    /// - a row with upper < L is in: only the K rows of smallest lower bounds (itself among
    ///   them) can score below it;
    /// - only the rows between get their float sums, to compete for the places left.
    /// While scanning, a running U (the K-th smallest upper bound so far, kept by a reservoir of
    /// 2K bounds cut back to K by selection) already drops most rows, so the exact U and L are
    /// selected from the few rows kept. With re-ranking the candidates' PQ scores are not used
    /// after this (step 3 scores their vectors), so rows that are in are kept at −∞ and never
    /// evicted; without (`scored`), the PQ scores are the answer and those rows get their
    /// float sums too.
    func fastScan(
        table: UnsafePointer<Float>, coarse: UnsafeMutablePointer<Float>, probe: Probe, probed: UnsafePointer<Int32>, scratch: Scratch,
        metric: Metric, filter: RowSet?, scored: Bool
    ) {
        let m = layout.m
        let candidates = scratch.candidates
        let want = candidates.pointee.k
        scratch.reserve(rows: probe.rows, reservoir: 2 * want)
        let (lower, upper, listOf, position) = (scratch.lower, scratch.upper, scratch.listOf, scratch.position)
        let (reservoir, spare) = (scratch.selection, scratch.selectionSpare)
        var quantized = vdb_pq_quantized()
        // Fine tables (sums to 1/254 of a step) for many candidates, when their sums fit 16
        // bits: with the byte bound alone (half a step per sub-quantizer) most of 800 rows
        // stayed between the bounds at K = 100 on synthetic 384-d, each then summed in float.
        let fine = m <= 257 && want >= Self.fineTablesFromCandidates ? scratch.fineTable : nil
        vdb_pq_quantize_tables(table, m, scratch.mins, scratch.byteTable, fine, &quantized)
        // The rounding bound, plus a margin for float error in either way of adding up a score
        // (a few roundings of terms no larger than these).
        let slackBase = quantized.fine_bound + 1e-5 * (abs(quantized.bias) + quantized.step * Float(255 * m) + largestRowTerm)
        var kept = 0, held = 0
        var cut = Float.infinity, leastDropped = Float.infinity
        let mode = switch metric {
        case .l2: VDB_PQ_BOUNDS_L2
        case .dot: VDB_PQ_BOUNDS_DOT
        case .cosine: VDB_PQ_BOUNDS_COSINE
        }
        for p in 0..<probe.lists {
            if p + 1 < probe.lists { prefetchCodes(list: Int(probed[p + 1])) }
            let l = Int(probed[p])
            let start = Int(listStarts[l]), count = Int(listStarts[l + 1]) - start
            if count == 0 { continue }
            let firstBlock = start / 64
            let blocks = (start + count - 1) / 64 - firstBlock + 1
            vdb_pq_fast_scan(scratch.byteTable, codes, m, firstBlock, blocks, scratch.sums)
            if let fine { vdb_pq_fast_scan(fine, codes, m, firstBlock, blocks, scratch.fineSums) }
            let listPart = listScore(l, coarse: coarse, metric: metric)
            let offset = listPart + quantized.bias + quantized.fine_offset, slack = slackBase + 1e-5 * abs(listPart)
            // The rows that can still be among the K, written after those kept so far; then
            // filtered and moved down in place, list and position attached.
            let found = vdb_pq_fast_bounds(
                scratch.sums + (start - firstBlock * 64), fine == nil ? nil : scratch.fineSums + (start - firstBlock * 64), count, rowTerms + start,
                mode, offset, quantized.step, quantized.fine_step, slack, centroidNorms[l], cut,
                lower + kept, upper + kept, position + kept, &leastDropped)
            for t in kept..<(kept + found) {
                let p = start + Int(position[t])
                if let filter, !filter.contains(listRows[p]) { continue }
                let high = upper[t]
                (lower[kept], upper[kept], listOf[kept], position[kept]) = (lower[t], high, UInt32(l), UInt32(p))
                kept += 1
                if high < cut {
                    reservoir[held] = high
                    held += 1
                    if held == 2 * want {
                        cut = vdb_select_kth(reservoir, held, want, spare)
                        held = want
                    }
                }
            }
        }
        // A kept row's float score, as the float scan computes it.
        func score(_ i: Int) -> Float {
            let l = Int(listOf[i]), p = Int(position[i])
            var sum: Float = 0
            vdb_pq_adc_scan_blocked(table, codes, m, p, 1, metric == .l2 ? rowTerms + p : nil, &sum)
            let offset = listScore(l, coarse: coarse, metric: metric)
            return metric == .cosine ? (offset + sum) / max(1e-12, centroidNorms[l] + rowTerms[p]).squareRoot() : sum + offset
        }
        if kept <= want {
            for i in 0..<kept { candidates.pointee.insert(distance: scored ? score(i) : -.infinity, id: UInt64(listRows[Int(position[i])])) }
            return
        }
        // Every row with upper ≤ U went into the reservoir (its bounds were below the running U
        // then), so U is selected from it alone. The K rows of upper ≤ U have lower ≤ U, so if
        // more rows than K have lower ≤ U, L is among theirs; if just K, those K are in (their
        // upper ≤ U < every other lower bound, dropped ones included).
        let cap = vdb_select_kth(reservoir, held, want, spare)
        var below = 0
        for i in 0..<kept where lower[i] <= cap {
            reservoir[below] = lower[i]
            below += 1
        }
        let floor = below > want ? min(leastDropped, vdb_select_kth(reservoir, below, want + 1, spare)) : leastDropped
        var threshold = Float.infinity
        for i in 0..<kept where lower[i] <= cap {
            let row = UInt64(listRows[Int(position[i])])
            if upper[i] < floor {
                candidates.pointee.insert(distance: scored ? score(i) : -.infinity, id: row)
                threshold = candidates.pointee.threshold
                continue
            }
            guard lower[i] < threshold else { continue }
            let exact = score(i)
            guard exact < threshold else { continue }
            candidates.pointee.insert(distance: exact, id: row)
            threshold = candidates.pointee.threshold
        }
    }
}
