import Foundation
import Slipway
import SlipwayProcess
import SlipwayStore
import SlipwayTestSupport
import Synchronization
import Testing

/// Collects every event, and can fire an interrupt when a given line of output appears.
final class RecordingReporter: Reporting, Sendable {
    let events = Mutex<[RunEvent]>([])
    let interruptOn: String?
    let continuation: AsyncStream<Int32>.Continuation?

    init(interruptOn: String? = nil, continuation: AsyncStream<Int32>.Continuation? = nil) {
        self.interruptOn = interruptOn
        self.continuation = continuation
    }

    private let waiters = Mutex<[(predicate: @Sendable (RunEvent) -> Bool, continuation: CheckedContinuation<RunEvent, Never>)]>([])

    /// The first event (reported already, or yet to come) that `predicate` accepts, or the run's
    /// end if it comes first (a test waiting for a step never waits for a run that is over).
    func first(where accepts: @escaping @Sendable (RunEvent) -> Bool) async -> RunEvent {
        let predicate: @Sendable (RunEvent) -> Bool = { event in
            if case .runFinished = event { return true }
            return accepts(event)
        }
        return await firstReported(where: predicate)
    }

    private func firstReported(where predicate: @escaping @Sendable (RunEvent) -> Bool) async -> RunEvent {
        await withCheckedContinuation { continuation in
            let seen: RunEvent? = events.withLock { events in
                if let found = events.first(where: predicate) { return found }
                waiters.withLock { $0.append((predicate, continuation)) }
                return nil
            }
            if let seen { continuation.resume(returning: seen) }
        }
    }

    /// Waits until a step called `step` has started.
    func stepStarted(_ step: String) async {
        _ = await first { if case .stepStarted(_, let name, _, _, _) = $0 { name == step } else { false } }
    }

    /// Waits until a notice containing `text` was given.
    func notice(containing text: String) async {
        _ = await first { if case .notice(let said) = $0 { said.contains(text) } else { false } }
    }

    func report(_ event: RunEvent) {
        let ready = events.withLock { events in
            events.append(event)
            return waiters.withLock { waiters in
                let matched = waiters.filter { $0.predicate(event) }
                waiters.removeAll { $0.predicate(event) }
                return matched.map(\.continuation)
            }
        }
        for continuation in ready { continuation.resume(returning: event) }
        if case .output(_, _, let line) = event, let interruptOn, line.text == interruptOn {
            continuation?.yield(SIGINT)
        }
    }

    var outputLines: [String] {
        events.withLock { $0.compactMap { if case .output(_, _, let line) = $0 { line.text } else { nil } } }
    }
}

/// An engine over an in-memory store, real processes, and a clock that never waits.
struct EngineFixture {
    let directory: TemporaryDirectory
    let store: RunStore
    let clock = ImmediateClock()
    let reporter: RecordingReporter
    var environment: [String: String] = ProcessInfo.processInfo.environment
    /// The wall clock the engine sees (freeze windows).
    var now = Date()

    /// Step and hook timeouts pass at once when `immediateTimeouts` (the launcher shares the
    /// immediate clock); otherwise they run on real time, and only backoff is immediate.
    let immediateTimeouts: Bool

    init(reporter: RecordingReporter = RecordingReporter(), immediateTimeouts: Bool = false) throws {
        directory = try TemporaryDirectory("engine")
        store = try RunStore.inMemory()
        self.reporter = reporter
        self.immediateTimeouts = immediateTimeouts
    }

    func pipeline(_ yaml: String) throws -> Pipeline {
        try PipelineLoader.parse(yaml: yaml.replacingOccurrences(of: "$DIR", with: directory.path), file: "test.yml").pipeline
    }

    func run(
        _ yaml: String, environment name: String = "staging", interrupts: AsyncStream<Int32> = AsyncStream { $0.finish() },
        release: Release = Release(sha: "0123456789abcdef0123456789abcdef01234567", version: "1.2.3"),
        freezeOverride: String? = nil, explicitRelease: Bool = false, target: (any DeployTarget)? = nil, rollback: Bool = false,
        rollbackTo: String? = nil
    ) async throws -> RunResult {
        let launcher = immediateTimeouts ? ProcessRunner(clock: clock) : ProcessRunner()
        let engine = Engine(
            store: store, launcher: launcher, clock: clock, reporter: reporter,
            environment: environment, jitter: { 0.5 }, now: { [now] in now }, stateDirectory: directory.file(".slipway"),
            makeTarget: { spec, setting in try target ?? spec.makeTarget(setting) })
        let pipeline = try pipeline(yaml)
        let plan = rollback ? try Plan(pipeline: pipeline, rollback: name, to: rollbackTo) : try Plan(pipeline: pipeline, environment: name)
        return try await engine.run(
            plan, release: release,
            trigger: Trigger(user: "tester"), interrupts: interrupts, freezeOverride: freezeOverride,
            explicitRelease: explicitRelease)
    }

    func detail(_ result: RunResult) async throws -> RunDetail { try #require(try await store.detail(runID: result.runID)) }

    func read(_ name: String) -> String { (try? String(contentsOfFile: directory.file(name), encoding: .utf8)) ?? "" }
}

@Suite("Engine")
struct EngineTests {
    @Test("stages run in pipeline order and each is recorded")
    func ordering() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: one, sh: "echo one >> $DIR/order" }
              - name: two
                steps:
                  - { name: a, sh: "echo two-a >> $DIR/order" }
                  - { name: b, sh: "echo two-b >> $DIR/order" }
              - { name: three, run: [sh, -c, "echo three >> $DIR/order"] }
              - { name: staging, deploy: staging }
            """)
        #expect(result.exitStatus == .success)
        #expect(fixture.read("order") == "one\ntwo-a\ntwo-b\nthree\n")
        let detail = try await fixture.detail(result)
        #expect(detail.stages.map(\.name) == ["one", "two", "three", "staging"])
        #expect(detail.stages.allSatisfy { $0.outcome == .succeeded })
        #expect(detail.steps.map(\.name) == ["one", "a", "b", "three"])
        #expect(detail.run.outcome == .succeeded && detail.run.endedAt != nil)
    }

    @Test("a failing step stops the run: later stages are skipped and the on-failure hook runs")
    func failureStops() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: build, sh: "echo building; exit 7" }
              - { name: after, sh: "touch $DIR/ran-after" }
            hooks:
              on-failure: [sh, -c, 'echo "$DEPLOY_HOOK $DEPLOY_OUTCOME: $DEPLOY_REASON" > $DIR/hook.out']
            """)
        #expect(result.exitStatus == .failed)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("ran-after")))
        let detail = try await fixture.detail(result)
        #expect(detail.stages.map(\.outcome) == [.failed, .skipped])
        #expect(detail.steps.first?.exitCode == 7)
        #expect(detail.steps.first?.output == "building\n")
        #expect(fixture.read("hook.out") == "on-failure failed: build failed with exit 7\n")
    }

    @Test("retries back off exponentially, with jitter, and stop at the first success")
    func retriesWithBackoff() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        // Fails on the first two attempts, succeeds on the third.
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - name: flaky
                sh: "echo x >> $DIR/count; [ $(wc -l < $DIR/count) -ge 3 ]"
                retries: 4
                backoff: 2s
            """)
        #expect(result.exitStatus == .success)
        // jitter 0.5: half the ceiling plus a quarter; ceilings 2s then 4s
        #expect(fixture.clock.sleeps == [.milliseconds(1500), .milliseconds(3000)])
        let step = try await #require(try fixture.detail(result).steps.first)
        #expect(step.attempts == 3)
        #expect(step.outcome == .succeeded)
        #expect(step.output.contains("[attempt 3 of 5]"))
    }

    @Test("a step that keeps failing is tried retries + 1 times")
    func retriesExhausted() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: never, run: ["false"], retries: 3, backoff: 1s }
            """)
        #expect(result.exitStatus == .failed)
        #expect(fixture.clock.sleeps == [.milliseconds(750), .milliseconds(1500), .milliseconds(3000)])
        let step = try await #require(try fixture.detail(result).steps.first)
        #expect(step.attempts == 4)
        #expect(step.exitCode == 1)
    }

    @Test("backoff is capped and its jitter stays within half the ceiling")
    func backoffBounds() {
        #expect(Backoff.delay(base: .seconds(1), retry: 1, jitter: 0) == .milliseconds(500))
        #expect(Backoff.delay(base: .seconds(1), retry: 1, jitter: 1) == .seconds(1))
        #expect(Backoff.ceiling(base: .seconds(1), retry: 30) == Step.maximumBackoff)
    }

    @Test("a step past its timeout is stopped and the run fails")
    func timeout() async throws {
        let fixture = try EngineFixture(immediateTimeouts: true)
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: slow, run: [sleep, "300"], timeout: 10s }
              - { name: after, sh: "touch $DIR/ran-after" }
            """)
        #expect(result.exitStatus == .failed)
        let step = try await #require(try fixture.detail(result).steps.first)
        #expect(step.outcome == .timedOut)
        #expect(ProcessWatch.waitForExit(try #require(step.childPID)))
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("ran-after")))
        #expect(result.reason == "slow timed out after 10s")
    }

    @Test("continue_on_error lets the run go on and records the failure")
    func continueOnError() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: optional, run: ["false"], continue_on_error: true }
              - { name: after, sh: "touch $DIR/ran-after" }
            """)
        #expect(result.exitStatus == .success)
        #expect(FileManager.default.fileExists(atPath: fixture.directory.file("ran-after")))
        await #expect(try fixture.detail(result).steps.map(\.outcome) == [.failedAllowed, .succeeded])
    }

    @Test("an interrupt stops the running step's process group, records cancelled and runs on-failure")
    func cancellation() async throws {
        let (interrupts, continuation) = AsyncStream.makeStream(of: Int32.self)
        let fixture = try EngineFixture(reporter: RecordingReporter(interruptOn: "ready", continuation: continuation))
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: long, sh: "sleep 300 & echo grandchild $!; echo ready; wait" }
              - { name: after, sh: "touch $DIR/ran-after" }
            hooks:
              on-failure: [sh, -c, 'echo "$DEPLOY_OUTCOME" > $DIR/hook.out']
            """, interrupts: interrupts)
        #expect(result.exitStatus == .cancelled)
        #expect(result.exitStatus.rawValue == 130)
        let detail = try await fixture.detail(result)
        #expect(detail.run.outcome == .cancelled)
        #expect(detail.run.reason?.hasPrefix("cancelled by SIGINT (Ctrl-C)") == true)
        #expect(detail.stages.map(\.outcome) == [.cancelled, .skipped])
        #expect(fixture.read("hook.out") == "cancelled\n")
        let grandchild = Int32(try #require(fixture.reporter.outputLines.first { $0.hasPrefix("grandchild ") }).dropFirst(11))!
        #expect(ProcessWatch.waitForExit(try #require(detail.steps.first?.childPID)))
        #expect(ProcessWatch.waitForExit(grandchild))
    }

    @Test("secrets are masked in what is shown and in what is recorded")
    func secretsMasked() async throws {
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        fixture.environment["API_TOKEN"] = "tok-9f8e7d6c"
        let result = try await fixture.run(
            """
            app: hello
            secrets: [API_TOKEN]
            environments: { staging: {} }
            stages:
              - { name: leak, sh: "echo token is $API_TOKEN; echo $API_TOKEN >&2; exit 1" }
            """)
        let detail = try await fixture.detail(result)
        let recorded = Set(try #require(detail.steps.first?.output).split(separator: "\n").map(String.init))
        #expect(recorded == ["token is ***", "***"])
        #expect(fixture.reporter.outputLines.sorted() == ["***", "token is ***"])
        let everything = detail.events.map(\.message).joined() + (detail.run.reason ?? "") + detail.steps.map(\.output).joined()
        #expect(!everything.contains("tok-9f8e7d6c"))
    }

    @Test("a declared secret that is not set refuses the run before anything is recorded")
    func missingSecret() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        await #expect(throws: RunRefused.self) {
            _ = try await fixture.run(
                "app: hello\nsecrets: [NOT_SET_ANYWHERE_X]\nenvironments: { staging: {} }\nstages:\n  - { name: a, run: [\"true\"] }\n")
        }
        await #expect(try fixture.store.history(limit: 20).isEmpty)
    }

    @Test("steps get the run's facts and the pipeline's variables, and sh scripts get values only through the environment")
    func stepEnvironment() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            variables:
              GREETING: "$(touch $DIR/pwned)"
            environments: { staging: {} }
            stages:
              - name: facts
                sh: |
                  echo "$DEPLOY_RUN_ID $DEPLOY_ENV $DEPLOY_STAGE $DEPLOY_VERSION $DEPLOY_SHA"
                  echo "$GREETING"
              - { name: argv, run: [echo, "v${VERSION}-${SHORT_SHA}", "${GREETING}"] }
            """)
        #expect(result.exitStatus == .success)
        let lines = fixture.reporter.outputLines
        #expect(lines[0] == "\(result.runID) staging facts 1.2.3 0123456789abcdef0123456789abcdef01234567")
        #expect(lines[1] == "$(touch \(fixture.directory.path)/pwned)")
        #expect(lines[2] == "v1.2.3-0123456 $(touch \(fixture.directory.path)/pwned)")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("pwned")))
    }

    @Test("long output keeps its head and tail with a marker")
    func outputTruncation() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            output_limit: 4KiB
            environments: { staging: {} }
            stages:
              - { name: chatty, run: [seq, "1", "20000"] }
            """)
        let step = try await #require(try fixture.detail(result).steps.first)
        #expect(step.outputTruncated)
        let printed = (1...20000).map { String($0).count + 1 }.reduce(0, +)
        #expect(step.outputBytes == printed)
        #expect(step.output.hasPrefix("1\n2\n3\n"))
        #expect(step.output.hasSuffix("19999\n20000\n"))
        #expect(step.output.contains("left out"))
        #expect(step.output.utf8.count < 4096 + 200)
    }

    @Test("a run reaching an environment with promote_from runs only what remains")
    func promotionPlan() throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let pipeline = try fixture.pipeline(valid)
        let plan = try Plan(pipeline: pipeline, environment: "production")
        #expect(plan.running.map(\.name) == ["production"])
        let staging = try Plan(pipeline: pipeline, environment: "staging")
        #expect(staging.running.map(\.name) == ["test", "staging"])
        #expect(throws: Plan.UnknownEnvironment.self) { try Plan(pipeline: pipeline, environment: "prod") }
    }

    @Test("a promoted environment takes only a release that succeeded in the environment before it")
    func promotionNeedsTheEarlierEnvironment() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let pipeline = """
            app: hello
            environments:
              staging: {}
              production: { promote_from: staging }
            stages:
              - { name: test, run: ["true"] }
              - { name: staging, deploy: staging }
              - { name: production, deploy: production }
            """
        let release = Release(sha: "1111111111111111111111111111111111111111", version: "2.0.0")
        // Given nothing has passed staging, production is refused before anything is recorded
        await #expect(throws: RunRefused.self) { _ = try await fixture.run(pipeline, environment: "production", release: release) }
        await #expect(try fixture.store.history(limit: 20).isEmpty)
        // When this release passes staging, production takes it, and runs only its own stage
        #expect(try await fixture.run(pipeline, environment: "staging", release: release).exitStatus == .success)
        let production = try await fixture.run(pipeline, environment: "production", release: release)
        #expect(production.exitStatus == .success)
        await #expect(try fixture.detail(production).stages.map(\.outcome) == [.skipped, .skipped, .succeeded])
        // A different commit is still refused
        await #expect(throws: RunRefused.self) {
            _ = try await fixture.run(
                pipeline, environment: "production", release: Release(sha: "2222222222222222222222222222222222222222", version: "2.0.1"))
        }
    }
}
