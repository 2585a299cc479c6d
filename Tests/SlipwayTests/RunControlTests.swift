import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Testing

/// `deploy abort`, `deploy pause` and `deploy resume` as the store carries them to a running
/// deploy, and the rollout's deadline, over the in-process target. A gate that reads a FIFO holds
/// each canary step until the test lets it go: the test knows where the run is without sleeping.
@Suite("abort, pause, resume and deadlines reach a running deploy", .timeLimit(.minutes(2)))
struct RunControlTests {
    /// The write end of the FIFO the `held` gate reads: opening it waits for the gate.
    struct Gatekeeper: Sendable {
        let path: String

        init(directory: TemporaryDirectory) throws {
            path = directory.file("fifo")
            guard mkfifo(path, 0o600) == 0 else { throw DeployProcessError(message: "mkfifo: \(errno)") }
        }

        /// Waits until the gate is reading (on a thread of its own: opening blocks), then lets it pass.
        func pass() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread {
                    let fd = open(path, O_WRONLY)
                    _ = "go\n".withCString { write(fd, $0, 3) }
                    close(fd)
                    continuation.resume()
                }.start()
            }
        }

        /// Waits until the gate is reading, and returns with it still held (``release(_:)`` lets it go).
        func hold() async -> Int32 {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
                Thread { continuation.resume(returning: open(path, O_WRONLY)) }.start()
            }
        }

        func release(_ fd: Int32) {
            _ = "go\n".withCString { write(fd, $0, 3) }
            close(fd)
        }
    }

    /// Reads the FIFO (held until the test lets it go) until the file `open` exists, then passes at once.
    static let heldGate = #"held: { command: [sh, -c, 'test -e "$0/open" || cat "$0/fifo"', "$DIR"], timeout: 2m }"#
    static let canary = "{ canary: { steps: [50, 100], hold_limit: 1m } }"

    /// A harness with 1.0.0 serving and 2.0.0 pushed, the gate's FIFO made.
    static func harness(target: InProcessTarget = InProcessTarget()) async throws -> (RolloutHarness, Gatekeeper, RecordingReporter) {
        let reporter = RecordingReporter()
        let harness = try RolloutHarness(target: target, reporter: reporter)
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("2.0.0")
        return (harness, try Gatekeeper(directory: harness.fixture.directory), reporter)
    }

    static func running(_ store: RunStore) async throws -> Int64 {
        try #require(try await store.history(limit: 10).first { $0.outcome == .running }?.id)
    }

    /// While the `held` gate holds the canary at 50 %: `deploy pause` by `actor`, seen by the run;
    /// then the gate lets go, and the canary holds. Returns the run's id.
    static func pauseAt50(
        _ harness: RolloutHarness, _ gate: Gatekeeper, _ reporter: RecordingReporter, actor: String, reason: String?
    ) async throws -> Int64 {
        await reporter.stepStarted("gate held at 50%")
        let fd = await gate.hold()
        let id = try await running(harness.fixture.store)
        try await RunControls.request(in: harness.fixture.store, runID: id, action: .pause, actor: actor, reason: reason)
        await reporter.notice(containing: "paused by \(actor)")
        gate.release(fd)
        // Every later measurement of the gate (the next step, a rollback's verification) passes.
        _ = try harness.fixture.directory.write("open", "")
        await reporter.stepStarted("hold at 50%")
        return id
    }

    @Test("deploy pause holds the canary after its step; deploy resume lets it go on to all traffic")
    func pauseAndResume() async throws {
        let (harness, gate, reporter) = try await Self.harness()
        let store = harness.fixture.store
        async let run = harness.deploy("2.0.0", strategy: Self.canary, gates: "[held]", moreGates: Self.heldGate)
        let id = try await Self.pauseAt50(harness, gate, reporter, actor: "ann", reason: "watching a dashboard")
        try await RunControls.request(in: store, runID: id, action: .resume, actor: "bob", reason: nil)
        let result = try await run
        #expect(result.outcome == .succeeded)
        let detail = try await harness.fixture.detail(result)
        #expect(detail.steps.map(\.name).contains("hold at 50%"))
        #expect(detail.steps.first { $0.name == "hold at 50%" }?.outcome == .succeeded)
        #expect(reporter.outputLines.contains("held at 50%: paused by ann: watching a dashboard"))
        let controls = detail.events.filter { $0.kind.hasPrefix("run.pause") || $0.kind.hasPrefix("run.resume") }.map(\.message)
        #expect(controls == ["paused by ann: watching a dashboard", "resumed by bob"])
        let audit = try await store.auditLog().filter { $0.runID == id }.map(\.action)
        #expect(audit.contains("pause") && audit.contains("resume"))
        #expect(harness.target.serving == "2.0.0 100%")
    }

    @Test("deploy abort while the canary is held rolls back through the verified path and says who and why")
    func abortWhileHeld() async throws {
        let (harness, gate, reporter) = try await Self.harness()
        let store = harness.fixture.store
        async let run = harness.deploy("2.0.0", strategy: Self.canary, gates: "[held]", moreGates: Self.heldGate)
        let id = try await Self.pauseAt50(harness, gate, reporter, actor: "ann", reason: nil)
        try await RunControls.request(in: store, runID: id, action: .abort, actor: "carol", reason: "p99 climbing on the dashboard")
        // The rollback's own verification runs the environment's gates (open by now) against 1.0.0.
        let result = try await run
        #expect(result.outcome == .rolledBack)
        #expect(result.reason?.hasPrefix("aborted by carol: p99 climbing on the dashboard; rolled back to 1.0.0") == true)
        let steps = try await harness.fixture.detail(result).steps.map(\.name)
        #expect(steps.contains("roll back to 1.0.0"))
        #expect(steps.contains("gate held (verify 1.0.0)"))
        #expect(!steps.contains("canary 100%"))
        #expect(harness.target.serving == "1.0.0 100%")
        #expect(try await store.auditLog().contains { $0.action == "abort" && $0.actor == "carol" && $0.runID == id })
        // The run is over: another abort is refused, saying so.
        await #expect(throws: ControlRefused.self) {
            try await RunControls.request(in: store, runID: id, action: .abort, actor: "carol", reason: "again")
        }
    }

    @Test("a hold past hold_limit fails the rollout, which rolls back")
    func holdLimit() async throws {
        let (harness, gate, reporter) = try await Self.harness()
        async let run = harness.deploy(
            "2.0.0", strategy: "{ canary: { steps: [50, 100], hold_limit: 1s } }", gates: "[held]", moreGates: Self.heldGate)
        _ = try await Self.pauseAt50(harness, gate, reporter, actor: "ann", reason: "lunch")
        let result = try await run
        #expect(result.outcome == .rolledBack)
        #expect(result.reason?.contains("held for 1s (paused by ann: lunch), longer than hold_limit allows") == true)
    }

    @Test("an abort before the deploy stage stops the run as Ctrl-C would, recording who and why")
    func abortBeforeDeploy() async throws {
        let fixture = try EngineFixture()
        let gate = try Gatekeeper(directory: fixture.directory)
        async let run = fixture.run(
            """
            app: hello
            environments:
              staging: {}
            stages:
              - { name: wait, run: [cat, "$DIR/fifo"] }
              - { name: after, run: ["true"] }
            """)
        let fd = await gate.hold()
        let id = try await Self.running(fixture.store)
        try await RunControls.request(in: fixture.store, runID: id, action: .abort, actor: "dave", reason: "wrong branch")
        let result = try await run
        close(fd)
        #expect(result.outcome == .cancelled)
        #expect(result.reason?.hasPrefix("aborted by dave: wrong branch") == true)
        #expect(try await fixture.detail(result).stages.map(\.outcome) == [.cancelled, .skipped])
    }

    @Test("a rollout past its deadline (a router that never answers) fails and rolls back")
    func deadline() async throws {
        // The second move (to 100 %) never finishes.
        let (harness, gate, reporter) = try await Self.harness(target: InProcessTarget(hangOnMove: 2))
        // Held at 50 % until the test lets it go; from then on (the rollback's verification) open.
        async let run = harness.deploy(
            "2.0.0", strategy: "{ canary: { steps: [50, 100] } }", gates: "[held]",
            moreGates: #"held: { command: [sh, -c, 'test -e "$0/open" || cat "$0/fifo"', "$DIR"], timeout: 5s }"#)
        await reporter.stepStarted("gate held at 50%")
        await gate.pass()
        _ = try harness.fixture.directory.write("open", "")
        let result = try await run
        #expect(result.outcome == .rolledBack)
        #expect(result.reason?.hasPrefix("the rollout passed its deadline of ") == true)
        #expect(harness.target.serving == "1.0.0 100%")
    }
}
