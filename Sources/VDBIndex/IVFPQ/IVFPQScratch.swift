import VDBCore
// The per-query working memory of an IVF-PQ search: tables, heaps and the fast scan's
// buffers, pooled by `IVFPQIndex` so a query allocates nothing. Split from
// `IVFPQIndex.swift`, which had grown past 600 lines.
extension IVFPQIndex {
    /// Per-query working memory, pooled.
    final class Scratch: @unchecked Sendable {
        // @unchecked Sendable: used by one query at a time, handed over through `pool`'s lock.
        let table: UnsafeMutablePointer<Float>
        let coarse: UnsafeMutablePointer<Float>
        let scores: UnsafeMutablePointer<Float>
        /// A query in bf16 (the coarse pass's input), 2 × pairs.
        let queryBF16: UnsafeMutablePointer<UInt16>
        /// Each list's coarse score and (bf16 pass) error bound.
        let listScores: UnsafeMutablePointer<Float>
        let listErrors: UnsafeMutablePointer<Float>
        /// The byte tables, their per-sub-quantizer minimums, and one list's byte sums; the fine
        /// tables (the byte tables' rounding, in bytes) and their sums.
        let byteTable: UnsafeMutablePointer<UInt8>
        let mins: UnsafeMutablePointer<Float>
        let sums: UnsafeMutablePointer<UInt16>
        let fineTable: UnsafeMutablePointer<UInt8>
        let fineSums: UnsafeMutablePointer<UInt16>
        /// Every probed row's score bounds from its byte sum, its list and position (fast scan),
        /// grown to the most rows a query has probed.
        private(set) var lower: UnsafeMutablePointer<Float>
        private(set) var upper: UnsafeMutablePointer<Float>
        private(set) var listOf: UnsafeMutablePointer<UInt32>
        private(set) var position: UnsafeMutablePointer<UInt32>
        /// The fast scan's reservoir of bounds, and the spare room ``vdb_select_kth`` partitions into.
        private(set) var selection: UnsafeMutablePointer<Float>
        private(set) var selectionSpare: UnsafeMutablePointer<Float>
        private var capacity = 0
        // Heaps behind pointers, not class properties: a class property pays a dynamic
        // exclusivity check per access (measured 14% of a query at nprobe 1).
        let lists: UnsafeMutablePointer<TopK>
        let candidates: UnsafeMutablePointer<TopK>
        /// Step 1's lists, nearest first: one run of `listCount` per query of a batch group.
        let probed: UnsafeMutablePointer<Int32>
        /// The queries of a batch group that need distance tables, gathered; per member its
        /// probe and its table's slot among them (−1: none).
        let tableQueries: UnsafeMutablePointer<Float>
        let groupProbes: UnsafeMutablePointer<Probe>
        let groupSlots: UnsafeMutablePointer<Int>
        init(m: Int, lists listCount: Int, longestList: Int, dimension: Int) {
            probed = .allocate(capacity: IVFPQIndex.tableGroup * listCount)
            tableQueries = .allocate(capacity: IVFPQIndex.tableGroup * dimension)
            groupProbes = .allocate(capacity: IVFPQIndex.tableGroup)
            groupSlots = .allocate(capacity: IVFPQIndex.tableGroup)
            queryBF16 = .allocate(capacity: dimension + 1)
            listScores = .allocate(capacity: listCount)
            listErrors = .allocate(capacity: listCount)
            table = .allocate(capacity: m * 256)
            coarse = .allocate(capacity: listCount)
            scores = .allocate(capacity: max(1, longestList))
            byteTable = .allocate(capacity: m * 256)
            mins = .allocate(capacity: m)
            // A list of n rows touches at most ⌈(n + 63) / 64⌉ blocks.
            sums = .allocate(capacity: 64 * ((longestList + 126) / 64))
            fineTable = .allocate(capacity: m * 256)
            fineSums = .allocate(capacity: 64 * ((longestList + 126) / 64))
            (lower, upper, listOf, position, selection) = (.allocate(capacity: 0), .allocate(capacity: 0), .allocate(capacity: 0), .allocate(capacity: 0), .allocate(capacity: 0))
            selectionSpare = .allocate(capacity: 16)
            lists = .allocate(capacity: 1)
            lists.initialize(to: TopK(k: 1))
            candidates = .allocate(capacity: 1)
            candidates.initialize(to: TopK(k: 1))
        }
        deinit {
            probed.deallocate()
            tableQueries.deallocate()
            groupProbes.deallocate()
            groupSlots.deallocate()
            table.deallocate()
            coarse.deallocate()
            scores.deallocate()
            queryBF16.deallocate()
            listScores.deallocate()
            listErrors.deallocate()
            byteTable.deallocate()
            mins.deallocate()
            sums.deallocate()
            fineTable.deallocate()
            fineSums.deallocate()
            freeRows()
            lists.deinitialize(count: 1)
            lists.deallocate()
            candidates.deinitialize(count: 1)
            candidates.deallocate()
        }
        /// Room for `rows` bounds (and the 16 spare slots ``vdb_pq_fast_bounds`` writes into)
        /// and a reservoir of `reservoir`.
        func reserve(rows: Int, reservoir: Int) {
            guard max(rows + 16, reservoir) > capacity else { return }
            freeRows()
            capacity = max(rows + 16, reservoir, 2 * capacity)
            (lower, upper, listOf, position, selection) = (
                .allocate(capacity: capacity), .allocate(capacity: capacity), .allocate(capacity: capacity), .allocate(capacity: capacity),
                .allocate(capacity: capacity)
            )
            selectionSpare = .allocate(capacity: capacity + 16)
        }
        private func freeRows() {
            lower.deallocate()
            upper.deallocate()
            listOf.deallocate()
            position.deallocate()
            selection.deallocate()
            selectionSpare.deallocate()
        }
    }
}
