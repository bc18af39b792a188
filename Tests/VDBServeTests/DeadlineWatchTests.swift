import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import vdb_serve

/// The deadline watch cancels what is still registered past its deadline, and nothing that
/// finished before it.
struct DeadlineWatchTests {
    @Test func cancelsOnlyWorkStillRunningPastItsDeadline() async throws {
        let watch = DeadlineWatch(duration: .milliseconds(40))
        let cancelled = Atomic<Int>(0)
        let quick = watch.register { cancelled.wrappingAdd(1, ordering: .relaxed) }
        #expect(watch.finish(quick), "finished in time: still registered")
        let slow = watch.register { cancelled.wrappingAdd(10, ordering: .relaxed) }
        let started = ContinuousClock.now
        while cancelled.load(ordering: .relaxed) == 0, ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(cancelled.load(ordering: .relaxed) == 10, "only the slow one is cancelled, once")
        #expect(ContinuousClock.now - started >= .milliseconds(40))
        #expect(!watch.finish(slow), "past its deadline: already cancelled and removed")
        // A tick later nothing else has fired.
        try await Task.sleep(for: .milliseconds(60))
        #expect(cancelled.load(ordering: .relaxed) == 10)
    }

    @Test func aRequestPastItsDeadlineIsA503AndTheConnectionTaskIsNotCancelled() async throws {
        let middleware = AdmissionMiddleware(limits: RequestLimits(searchesInFlight: 4, deadline: .milliseconds(30)))
        let router = Router(context: VDBRequestContext.self)
        router.add(middleware: ProblemDetailsMiddleware())
        router.add(middleware: middleware)
        // Uncancelled, this would answer 200 after a minute. (No bound on the elapsed time:
        // with the rest of the suite running, the task pool can be busy for a long while
        // before the cancelled task resumes.)
        router.get("slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(60))
            return "late"
        }
        router.get("quick") { _, _ in "ok" }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/slow", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("deadline-exceeded"))
            }
            // The caller's own task was left uncancelled: the next request is served.
            #expect(!Task.isCancelled)
            try await client.execute(uri: "/quick", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
        }
    }
}
