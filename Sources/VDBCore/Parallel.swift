import Dispatch
import Synchronization

/// Data-parallel loops for index builds: `threads` workers take fixed-size blocks in turn, so
/// uneven blocks balance out and the width is the caller's (`--threads`), not the pool's.
package enum Parallel {
    /// Runs `body` on every block of `blockSize` items of `0..<count`; `finished` (if any) is told
    /// how many items are done after each block, from whichever worker finished it.
    ///
    /// `body` runs on several threads at once: it must only write what its range owns.
    package static func forEachBlock(
        count: Int, blockSize: Int, threads: Int, finished: (@Sendable (Int) -> Void)? = nil, _ body: (Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let blockSize = max(1, blockSize)
        let blocks = (count + blockSize - 1) / blockSize
        // One worker is the caller itself, at the caller's priority (a niced background job).
        if threads <= 1 || blocks == 1 {
            var done = 0
            for block in 0..<blocks {
                let range = block * blockSize..<min(count, (block + 1) * blockSize)
                body(range)
                done += range.count
                finished?(done)
            }
            return
        }
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            // The caller's contract (disjoint writes) is what makes sharing `body` safe.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, blocks))) { _ in
                while true {
                    let block = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if block >= blocks { break }
                    let range = block * blockSize..<min(count, (block + 1) * blockSize)
                    body(range)
                    let total = done.wrappingAdd(range.count, ordering: .relaxed).newValue
                    finished?(total)
                }
            }
        }
    }
}
