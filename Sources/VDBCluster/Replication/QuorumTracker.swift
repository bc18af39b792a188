import VDBKit

/// A shard leader's view of its followers' durable positions: a write waits here until enough
/// followers hold its record (with the leader, a quorum of the replica set).
final class QuorumTracker: Sendable {
    /// Follower confirmations a record needs (the quorum less the leader itself).
    let needed: Int
    private let state = Locked(State())

    private struct State {
        var positions: [String: UInt64] = [:]
        var waiters: [UInt64: (sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] = [:]
        var nextWaiter: UInt64 = 0
        var stopped: (any Error)?
    }

    init(needed: Int) { self.needed = needed }

    /// The followers' positions as last confirmed.
    var positions: [String: UInt64] { state.withLock { $0.positions } }

    /// Records that `node` holds every record through `position` durably.
    func confirm(_ node: String, through position: UInt64) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.positions[node] = max(state.positions[node] ?? 0, position)
            let done = state.waiters.filter { self.reached($0.value.sequence, in: state.positions) }
            for id in done.keys { state.waiters[id] = nil }
            return done.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    private func reached(_ sequence: UInt64, in positions: [String: UInt64]) -> Bool {
        positions.values.count { $0 >= sequence } >= needed
    }

    /// Returns once a quorum holds `sequence`.
    /// - Throws: `ClusterError.quorumUnavailable` after `timeout`, or the error the tracker was
    ///   stopped with (leadership lost).
    func wait(for sequence: UInt64, timeout: Duration) async throws {
        guard needed > 0 else { return }
        let id = try state.withLock { state -> UInt64? in
            if let stopped = state.stopped { throw stopped }
            if reached(sequence, in: state.positions) { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else { return }
        try await withCheckedThrowingContinuation { continuation in
            let registered = state.withLock { state -> Bool in
                if reached(sequence, in: state.positions) || state.stopped != nil { return false }
                state.waiters[id] = (sequence, continuation)
                return true
            }
            guard registered else {
                let stopped = state.withLock { $0.stopped }
                if let stopped { continuation.resume(throwing: stopped) } else { continuation.resume() }
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                self.fail(id, ClusterError(
                    .quorumUnavailable, "record \(sequence) was not confirmed by \(self.needed) follower(s) within \(timeout); it may or may not be kept"))
            }
        }
    }

    private func fail(_ id: UInt64, _ error: any Error) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(throwing: error)
    }

    /// Fails every waiting write and every later one with `error` (leadership lost).
    func stop(_ error: any Error) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.stopped = error
            defer { state.waiters.removeAll() }
            return state.waiters.values.map(\.continuation)
        }
        for continuation in waiting { continuation.resume(throwing: error) }
    }
}
