import Metrics
import Synchronization
import VDBKit

/// `vdb_search_duration_seconds` per index family and plan: `unfiltered`, `batch`, or a
/// filtered search's strategies (`exact`, `index`, `exact+index`, …), so a dashboard shows
/// which plan a slow filter took.
enum SearchMetrics {
    private struct Key: Hashable {
        var family: String
        var plan: String
    }

    private static let timers = Mutex<[Key: Metrics.Timer]>([:])

    static func record(family: String, plan: String, duration: Duration) {
        let key = Key(family: family, plan: plan)
        let timer = timers.withLock { timers in
            if let found = timers[key] { return found }
            let made = Metrics.Timer(label: "vdb_search_duration_seconds", dimensions: [("family", family), ("plan", plan)])
            timers[key] = made
            return made
        }
        timer.record(duration: duration)
    }

    /// A filtered search's plan label: its parts' strategies, each once, in name order.
    static func plan(of plans: [SearchPlan]?) -> String {
        guard let plans else { return "unfiltered" }
        let strategies = Set(plans.map(\.strategy).filter { $0 != .none }.map(\.rawValue)).sorted()
        return strategies.isEmpty ? "none" : strategies.joined(separator: "+")
    }
}
