import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Testing

/// The rollout strategies, rehearsal and rollbacks over the target protocol, with a real
/// in-process target (``InProcessTarget``): the engine runs for real (store, gates as commands,
/// a clock that never waits), only the place where releases run is in this process.
struct RolloutHarness {
    let fixture: EngineFixture
    let target: InProcessTarget

    init(target: InProcessTarget = InProcessTarget(), reporter: RecordingReporter = RecordingReporter()) throws {
        fixture = try EngineFixture(reporter: reporter)
        self.target = target
    }

    static let image = "127.0.0.1:5000/hello@sha256:"

    /// A release an earlier run pushed (and, with `serving`, that runs now and passed its gates).
    @discardableResult
    func pushed(_ version: String, serving: Bool = false, good: Bool = true, history: [ReleaseReference] = []) async throws
        -> ReleaseReference
    {
        let sha = String(repeating: version.replacingOccurrences(of: ".", with: ""), count: 14).prefix(40)
        var record = try await fixture.store.insert(
            RunRecord(
                pipeline: "p.yml", app: "hello", environment: "staging", trigger: Trigger(user: "ann"), sha: String(sha),
                version: version, startedAt: Date(), ownerPID: 1, ownerHost: "h"))
        record.image = Self.image + String(repeating: version.first!, count: 64)
        record.outcome = good ? .succeeded : .failed
        try await fixture.store.update(record)
        let release = ReleaseReference(run: record.id, version: version, sha: String(sha), image: record.image!)
        if serving { target.seed(release, history: history) }
        return release
    }

    /// Marks `version` as failing the `healthy` gate from now on.
    func breakRelease(_ version: String, gate: String = "bad") throws {
        try "".write(toFile: fixture.directory.file("\(gate)-\(version)"), atomically: true, encoding: .utf8)
    }

    func pipeline(strategy: String, rehearse: Bool = false, gates: String = "[healthy]", moreGates: String = "") -> String {
        """
        app: hello
        environments:
          staging:
            target: { docker: { listen: "127.0.0.1:9" } }
            strategy: \(strategy)
            gates: \(gates)
            rehearse_rollback: \(rehearse)
        gates:
          healthy: { command: [sh, -c, 'test ! -e "$0/bad-$1"', "$DIR", "${VERSION}"] }
          preview: { command: [sh, -c, 'test ! -e "$0/preview-bad-$1"', "$DIR", "${VERSION}"] }
          paced: { command: [sh, -c, 'test ! -e "$0/bad-$1"', "$DIR", "${VERSION}"], every: 1m, times: 2 }
          third-fails: { command: [sh, -c, 'c="$0/count-$1"; n=$(cat "$c" 2>/dev/null || echo 0); echo $((n+1)) > "$c"; test "$n" -lt 2', "$DIR", "${VERSION}"] }
          \(moreGates)
        stages:
          - { name: staging, deploy: staging }
        """
    }

    func deploy(_ version: String, strategy: String, rehearse: Bool = false, gates: String = "[healthy]", moreGates: String = "")
        async throws -> RunResult
    {
        let release = try await fixture.store.pushedRelease(named: version)
        return try await fixture.run(
            pipeline(strategy: strategy, rehearse: rehearse, gates: gates, moreGates: moreGates),
            release: Release(sha: release?.sha, version: version), target: target)
    }

    func rollback(to: String? = nil) async throws -> RunResult {
        try await fixture.run(pipeline(strategy: "rolling"), target: target, rollback: true, rollbackTo: to)
    }

    func steps(_ result: RunResult) async throws -> [String] { try await fixture.detail(result).steps.map(\.name) }
}

@Suite("Rollout strategies over a target")
struct RolloutStrategyTests {
    @Test("rolling: one switch to the new release, its gates, the old release retired")
    func rolling() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        let old = try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "rolling")
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.moves == ["1.1.0 100%"])
        #expect(harness.target.serving == "1.1.0 100%")
        #expect(harness.target.retired == ["r\(old.run)"])
        await #expect(try harness.steps(result) == ["start 1.1.0", "switch to 1.1.0", "gate healthy", "retire 1.0.0"])
    }

    @Test("blue-green: a failing preview gate removes the new release before it takes any traffic")
    func previewFailure() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        try harness.breakRelease("1.1.0", gate: "preview-bad")
        let result = try await harness.deploy("1.1.0", strategy: "{ blue_green: { preview_gates: [preview] } }")
        #expect(result.exitStatus == .failed)
        #expect(result.reason?.contains("the release never took traffic and was removed") == true, "\(String(describing: result.reason))")
        #expect(harness.target.moves.isEmpty)
        #expect(harness.target.serving == "1.0.0 100%")
        #expect(harness.target.instances.count == 1)
    }

    @Test("blue-green: the gates keep being checked through the bake, on the engine's clock")
    func bake() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "{ blue_green: { bake: 5m } }", gates: "[paced]")
        #expect(result.exitStatus == .success, "\(result)")
        // Each pass of the paced gate takes 1m of the clock's time: the 5m bake takes five passes.
        let bakes = try await harness.steps(result).filter { $0.hasPrefix("gate paced (bake") }
        #expect(bakes == (1...5).map { "gate paced (bake \($0))" })
        #expect(harness.target.serving == "1.1.0 100%")
    }

    @Test("blue-green: a gate failing during the bake rolls back to the release that served")
    func bakeFailure() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "{ blue_green: { bake: 5m } }", gates: "[third-fails]")
        #expect(result.exitStatus == .rolledBack, "\(result)")
        #expect(harness.target.moves == ["1.1.0 100%", "1.0.0 100%"])
        await #expect(
            try harness.steps(result).filter { $0.hasPrefix("gate") } == [
                "gate third-fails", "gate third-fails (bake 1)", "gate third-fails (bake 2)", "gate third-fails (verify 1.0.0)",
            ])
        #expect(harness.target.serving == "1.0.0 100%")
    }

    @Test("canary: the weighted steps in order, the stable release taking the rest")
    func canarySteps() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "{ canary: { steps: [25, 50, 100], pause: 1m, analysis: [preview] } }")
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.moves == ["1.1.0 25%, 1.0.0 75%", "1.1.0 50%, 1.0.0 50%", "1.1.0 100%"])
        let gates = try await harness.steps(result).filter { $0.hasPrefix("gate") }
        #expect(
            gates == [
                "gate healthy at 25%", "gate preview at 25%", "gate healthy at 50%", "gate preview at 50%", "gate healthy at 100%",
                "gate preview at 100%",
            ])
        await #expect(try harness.steps(result).filter { $0 == "pause" }.count == 2)
    }

    @Test("canary: a failing step sends all traffic back, verifies the stable release and pins the environment")
    func canaryRollback() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        let stable = try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        try harness.breakRelease("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "{ canary: { steps: [25, 50, 100] } }")
        #expect(result.exitStatus == .rolledBack, "\(result)")
        #expect(harness.target.moves == ["1.1.0 25%, 1.0.0 75%", "1.0.0 100%"])
        #expect(harness.target.instances == ["r\(stable.run)"])
        await #expect(try harness.steps(result).contains("gate healthy (verify 1.0.0)"))
        let run = try await #require(try harness.fixture.store.run(id: result.runID))
        #expect(run.restoredRunID == stable.run)
        #expect(run.rollbackMS != nil)
        await #expect(try harness.fixture.store.pin(environment: "staging") != nil)
    }

    @Test("a first release that fails its gates is removed and nothing serves, as before it")
    func firstReleaseFails() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.1.0")
        try harness.breakRelease("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "rolling")
        #expect(result.exitStatus == .failed)
        #expect(harness.target.moves == ["1.1.0 100%", "nothing"])
        #expect(harness.target.instances.isEmpty)
    }

    @Test("rehearsal: back to the previous release and forward again, the time recorded")
    func rehearsalPasses() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        let result = try await harness.deploy("1.1.0", strategy: "rolling", rehearse: true)
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.moves == ["1.1.0 100%", "1.0.0 100%", "1.1.0 100%"])
        let run = try await #require(try harness.fixture.store.run(id: result.runID))
        #expect(run.rehearsal == .passed)
        #expect(run.rehearsalMS != nil)
    }

    @Test("rehearsal: a previous release that fails keeps the new one serving, exit 6")
    func rehearsalFindsPreviousBroken() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0")
        try harness.breakRelease("1.0.0")
        let result = try await harness.deploy("1.1.0", strategy: "rolling", rehearse: true)
        #expect(result.exitStatus == .failedAfterChange, "\(result)")
        #expect(harness.target.serving == "1.1.0 100%")
        await #expect(try harness.fixture.store.run(id: result.runID)?.rehearsal == .failed)
    }

    @Test("deploy rollback: the newest good release before the serving one whose image still exists")
    func emergencyRollback() async throws {
        let missing = RolloutHarness.image + String(repeating: "1", count: 64)
        let harness = try RolloutHarness(target: InProcessTarget(missingImages: [missing]))
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("0.9.0")
        try await harness.pushed("1.0.0")
        try await harness.pushed("1.1.0", serving: true)
        let result = try await harness.rollback()
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.serving == "0.9.0 100%")
        await #expect(try harness.fixture.store.pin(environment: "staging")?.reason.contains("rolled back by hand to 0.9.0") == true)
    }

    @Test("deploy rollback with the run store empty falls back on the history the serving instance carries")
    func rollbackFromInstanceHistory() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        let previous = ReleaseReference(
            run: 41, version: "1.0.0", sha: nil, image: RolloutHarness.image + String(repeating: "1", count: 64))
        harness.target.seed(
            ReleaseReference(run: 42, version: "1.1.0", sha: nil, image: RolloutHarness.image + String(repeating: "2", count: 64)),
            history: [previous])
        let result = try await harness.rollback()
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.serving == "1.0.0 100%")
    }

    @Test("deploy rollback after a deploy its gates rolled back: the last good release already serves all traffic, nothing moves")
    func rollbackAfterFailedDeploy() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        try await harness.pushed("0.9.0")
        try await harness.pushed("1.0.0", serving: true)
        try await harness.pushed("1.1.0", good: false)
        try harness.breakRelease("1.1.0")
        let failed = try await harness.deploy("1.1.0", strategy: "rolling")
        #expect(failed.exitStatus == .rolledBack, "\(failed)")
        let moves = harness.target.moves
        let result = try await harness.rollback()
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.serving == "1.0.0 100%")
        #expect(harness.target.moves == moves, "a rollback with nothing to undo moved traffic")
        let detail = try await harness.fixture.detail(result)
        let said = detail.stages.compactMap(\.reason) + detail.events.map(\.message)
        #expect(said.contains { $0.contains("1.0.0") && $0.contains("already serves all traffic") }, "\(said)")
    }

    @Test("deploy rollback after a canary left at 25 %: the last good release is given all traffic, with no new instance")
    func rollbackAfterUnfinishedCanary() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        let stable = try await harness.pushed("1.0.0", serving: true)
        let candidate = try await harness.pushed("1.1.0", good: false)
        // What a deploy killed at its first canary step leaves: its run interrupted in its deploy
        // stage, the new instance taking 25 %.
        var run = try #require(try await harness.fixture.store.run(id: candidate.run))
        run.outcome = .interrupted
        try await harness.fixture.store.update(run)
        var stage = StageRecord(runID: run.id, position: 0, name: "staging", kind: "deploy")
        stage.outcome = .interrupted
        stage.startedAt = Date()
        _ = try await harness.fixture.store.insert([stage])
        let now = try await harness.target.observe()
        let serving = try #require(now.routes.first?.instance)
        let canary = try await harness.target.stage(candidate, run: run.id, history: [stable], say: { _ in })
        _ = try await harness.target.route([TrafficShare(canary, weight: 25), TrafficShare(serving, weight: 75)])
        let result = try await harness.rollback()
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.serving == "1.0.0 100%")
        #expect(harness.target.instances == [serving.name], "instances left: \(harness.target.instances)")
    }

    @Test("deploy rollback with no run store, after a deploy killed before its switch: the release it started from still serves")
    func rollbackUnfinishedFromLabels() async throws {
        let harness = try RolloutHarness()
        defer { harness.fixture.directory.remove() }
        let image = RolloutHarness.image
        let older = ReleaseReference(run: 40, version: "0.9.0", sha: nil, image: image + String(repeating: "9", count: 64))
        let good = ReleaseReference(run: 41, version: "1.0.0", sha: nil, image: image + String(repeating: "1", count: 64))
        harness.target.seed(good, history: [older])
        // A killed deploy's instance: it names 1.0.0 as the good release it started from.
        _ = try await harness.target.stage(
            ReleaseReference(run: 42, version: "1.1.0", sha: nil, image: image + String(repeating: "2", count: 64)), run: 42,
            history: [good, older], say: { _ in })
        let result = try await harness.rollback()
        #expect(result.exitStatus == .success, "\(result)")
        #expect(harness.target.serving == "1.0.0 100%")
        #expect(harness.target.instances == ["r41"], "instances left: \(harness.target.instances)")
    }
}
