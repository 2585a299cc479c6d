import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Synchronization
import Testing

/// Waiting for an environment's lease (`--wait`): on a clock that moves only when the test says,
/// so each behaviour is seen one tick at a time.
@Suite("Waiting for the lease")
struct LeaseWaitTests {
    static let pipeline = """
        app: hello
        environments: { staging: {} }
        stages:
          - { name: staging, deploy: staging }
        """

    func engine(_ store: RunStore, clock: ManualClock, reporter: RecordingReporter) -> Engine {
        Engine(store: store, clock: clock, reporter: reporter, environment: ProcessInfo.processInfo.environment, host: "here")
    }

    func plan() throws -> Plan {
        try Plan(pipeline: try PipelineLoader.parse(yaml: Self.pipeline, file: "p.yml").pipeline, environment: "staging")
    }

    func notices(_ reporter: RecordingReporter) -> [String] {
        reporter.events.withLock { $0.compactMap { if case .notice(let text) = $0 { text } else { nil } } }
    }

    func lock(_ store: RunStore) async throws {
        _ = try await store.lock(
            environment: "staging", by: "ann", reason: "maintenance", host: "here", now: Date(), isAlive: { _ in true })
    }

    @Test("without --wait, a held environment is refused at once, saying who holds it and how to free it")
    func refusedAtOnce() async throws {
        let store = try RunStore.inMemory()
        try await lock(store)
        let engine = engine(store, clock: ManualClock(), reporter: RecordingReporter())
        await #expect {
            _ = try await engine.run(try plan(), release: Release(sha: nil, version: "1.0.0"), trigger: Trigger(user: "bob"))
        } throws: { error in
            "\(error)".contains("staging is locked by ann") && "\(error)".contains("deploy unlock staging")
        }
        await #expect(try store.history(limit: 5).isEmpty)
    }

    @Test("with --wait, the deploy queues, says why, and starts as soon as the lock is released")
    func startsWhenFreed() async throws {
        let store = try RunStore.inMemory()
        try await lock(store)
        let clock = ManualClock()
        let reporter = RecordingReporter()
        let engine = engine(store, clock: clock, reporter: reporter)
        let plan = try plan()
        let run = Task {
            try await engine.run(plan, release: Release(sha: nil, version: "1.0.0"), trigger: Trigger(user: "bob"), wait: .seconds(60))
        }
        await clock.waitForSleeper()
        #expect(notices(reporter).contains { $0.hasPrefix("waiting for staging: held by") })
        _ = try await store.unlock(environment: "staging", by: "ann", now: Date())
        clock.advance(by: .milliseconds(250))
        let result = try await run.value
        #expect(result.exitStatus == .success)
        #expect(notices(reporter).contains("staging is free: starting"))
    }

    @Test("with --wait, a deploy gives up once its budget has passed, and leaves the queue")
    func givesUp() async throws {
        let store = try RunStore.inMemory()
        try await lock(store)
        let clock = ManualClock()
        let engine = engine(store, clock: clock, reporter: RecordingReporter())
        let plan = try plan()
        let run = Task {
            try await engine.run(plan, release: Release(sha: nil, version: "1.0.0"), trigger: Trigger(user: "bob"), wait: .seconds(1))
        }
        for _ in 0..<4 {
            await clock.waitForSleeper()
            clock.advance(by: .milliseconds(250))
        }
        await #expect {
            _ = try await run.value
        } throws: { error in
            "\(error)".contains("gave up waiting for staging after 1s")
        }
        // Nobody is left queued: the next deploy does not wait behind a ghost.
        _ = try await store.unlock(environment: "staging", by: "ann", now: Date())
        let next = try await engine.run(plan, release: Release(sha: nil, version: "1.0.0"), trigger: Trigger(user: "cy"))
        #expect(next.exitStatus == .success)
    }
}
