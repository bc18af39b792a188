import Foundation
import Synchronization

/// Cancels requests' work once it runs past its deadline. One thread watches every request in
/// flight, so a request costs a registration (a lock and a dictionary entry) instead of a task
/// group with a sleeping timer task of its own (two child tasks and a timer per request). The
/// thread is the watch's own, so a busy task pool cannot hold a deadline back.
///
/// Lateness is at most one tick: a twentieth of the deadline, within 5...250 ms.
final class DeadlineWatch: Sendable {
    private struct Entry {
        let deadline: ContinuousClock.Instant
        let cancel: @Sendable () -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        var started = false
    }

    let duration: Duration
    private let tick: Duration
    private let state = Mutex(State())

    init(duration: Duration) {
        self.duration = duration
        tick = min(.milliseconds(250), max(.milliseconds(5), duration / 20))
    }

    /// A request in flight: `cancel` runs (on the watch's thread) if the request is still
    /// registered `duration` from now.
    func register(cancel: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = ContinuousClock.now + duration
        let (id, start) = state.withLock { state in
            state.nextID &+= 1
            state.entries[state.nextID] = Entry(deadline: deadline, cancel: cancel)
            defer { state.started = true }
            return (state.nextID, !state.started)
        }
        if start {
            // Holds the watch only while it looks: the thread ends once the router that owns
            // the watch is gone (tests build many).
            let seconds = Double(tick.components.seconds) + Double(tick.components.attoseconds) * 1e-18
            let thread = Thread { [weak self] in
                while self != nil {
                    Thread.sleep(forTimeInterval: seconds)
                    self?.expire()
                }
            }
            thread.name = "vdb-deadlines"
            thread.start()
        }
        return id
    }

    /// The request finished. Returns false when its deadline had passed and it was cancelled.
    @discardableResult
    func finish(_ id: UInt64) -> Bool {
        state.withLock { $0.entries.removeValue(forKey: id) != nil }
    }

    /// Cancels the requests whose deadline has passed.
    private func expire() {
        let now = ContinuousClock.now
        let expired = state.withLock { state in
            let expired = state.entries.filter { $0.value.deadline <= now }
            for id in expired.keys { state.entries.removeValue(forKey: id) }
            return expired
        }
        for entry in expired.values { entry.cancel() }
    }
}
