import Foundation
import SlipwayProcess
import SlipwayStore
import Synchronization

/// Records what a deploy stage does (start a container, check a gate, move traffic) as steps of
/// the stage: each is streamed to the reporter and kept in the run record like a command's output.
final class StageLog: Sendable {
    let context: RunContext
    let stage: Stage
    let stageID: Int64
    private let position = Mutex(0)

    init(context: RunContext, stage: Stage, stageID: Int64) {
        self.context = context
        self.stage = stage
        self.stageID = stageID
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` as a recorded step called `name`; what it says goes to the step's output.
    /// Errors end the step failed and are rethrown.
    @discardableResult
    func step<T: Sendable>(_ name: String, command: String, _ body: (_ say: @escaping @Sendable (String) -> Void) async throws -> T)
        async throws -> T
    {
        let context = self.context
        let index = position.withLock { value in
            defer { value += 1 }
            return value
        }
        var record = StepRecord(runID: context.runID, stageID: stageID, position: index, name: name, command: context.masker.mask(command))
        record.outcome = .running
        record.startedAt = Date()
        record = try context.store.start(record, stage: nil, events: [])
        context.reporter.report(.stepStarted(stage: stage.name, step: name, command: record.command, attempt: 1, attempts: 1))
        let capture = Mutex(OutputCapture(limit: context.plan.pipeline.outputLimit))
        let stageName = stage.name
        let masker = context.masker
        let reporter = context.reporter
        let say: @Sendable (String) -> Void = { text in
            let masked = masker.mask(text)
            capture.withLock { $0.append(masked) }
            reporter.report(.output(stage: stageName, step: name, line: OutputLine(stream: .stdout, text: masked)))
        }
        let started = ContinuousClock.now
        func close(_ outcome: Outcome, _ detail: String) {
            let elapsed = ContinuousClock.now - started
            record.outcome = outcome
            record.endedAt = Date()
            record.durationMS = Int(elapsed / .milliseconds(1))
            record.exitCode = outcome == .succeeded ? 0 : 1
            let kept = capture.withLock { $0 }
            record.output = kept.text
            record.outputBytes = kept.totalBytes
            record.outputTruncated = kept.truncated
            let event =
                outcome == .succeeded
                ? []
                : [
                    EventRecord(
                        runID: context.runID, at: Date(), kind: "step.\(outcome.rawValue)", stage: stageName, step: name, message: detail)
                ]
            try? context.store.finish(record, stage: nil, events: event)
            reporter.report(.stepFinished(stage: stageName, step: name, outcome: outcome, detail: detail, duration: elapsed))
        }
        do {
            let value = try await body(say)
            close(.succeeded, "done")
            return value
        } catch {
            let detail = masker.mask("\(error)")
            say(detail)
            close(Task.isCancelled ? .cancelled : .failed, detail)
            throw error
        }
    }
}

/// A deploy to a docker target: the new release starts as a container beside the current one,
/// gates check it, nginx moves traffic (all at once, or in canary steps), and a failing gate puts
/// traffic back on the release that was serving, which the same gates then verify.
struct DockerRollout: Sendable {
    let context: RunContext
    let spec: DockerTargetSpec
    let host: DockerHost
    let proxy: NginxProxy
    let log: StageLog

    init(context: RunContext, spec: DockerTargetSpec, log: StageLog) {
        self.context = context
        self.spec = spec
        self.log = log
        let target = DockerEnvironment(
            pipeline: context.plan.pipeline, environment: context.plan.environment.name, target: spec,
            stateDirectory: context.engine.stateDirectory, processEnvironment: context.engine.environment, launcher: context.engine.launcher
        )
        host = target.host
        proxy = target.proxy
    }

    var environment: EnvironmentSpec { context.plan.environment }
    var store: RunStore { context.store }
    var serviceURL: String { "http://\(spec.listen)" }

    func targets(port: Int, release: ReleaseReference? = nil) -> GateTargets {
        GateTargets(targetURL: "http://127.0.0.1:\(port)", serviceURL: serviceURL, release: release)
    }

    /// What serves now: the proxy's state, checked against the containers that really run.
    struct Current {
        var state: NginxProxy.State?
        var containers: [DeployedContainer]
        /// The backend taking the most traffic, if its container runs.
        var stable: NginxProxy.Backend?
        var stableContainer: DeployedContainer?
    }

    func current() async throws -> Current {
        let state = proxy.state()
        let containers = try await host.containers()
        var result = Current(state: state, containers: containers)
        if let primary = state?.primary, let container = containers.first(where: { $0.name == primary.container && $0.running }) {
            result.stable = primary
            result.stableContainer = container
        }
        return result
    }

    // MARK: - Gates

    /// Runs the named gates in order against `targets`, each as a recorded step; throws at the first failure.
    func gates(_ names: [String], targets: GateTargets, label: String, firstFailure: Moment) async throws {
        let runner = GateRunner(clock: context.engine.clock)
        for name in names {
            guard let gate = context.plan.pipeline.gates.first(where: { $0.name == name }) else { continue }
            let check = try context.check(for: gate, targets: targets)
            try await log.step("gate \(name)\(label)", command: gateDescription(gate, targets: targets)) { say in
                let counter = Mutex(0)
                let result = await runner.run(gate, check: check) { measurement in
                    if !measurement.passed { firstFailure.mark() }
                    let number = counter.withLock { value in
                        value += 1
                        return value
                    }
                    say("\(measurement.passed ? "pass" : "FAIL") #\(number): \(measurement.detail)")
                }
                if Task.isCancelled { throw CancellationError() }
                if !result.passed { throw StageLog.Failed(description: result.reason ?? "gate \(name) failed") }
            }
        }
    }

    func gateDescription(_ gate: GateSpec, targets: GateTargets) -> String {
        let times = gate.times ?? 1
        let cadence = times > 1 ? ", \(times) times" + (gate.every.map { " every \(DurationParser.format($0))" } ?? "") : ""
        switch gate.check {
        case .http(let url, let status, _, _):
            let shown = url.replacingOccurrences(of: "${TARGET_URL}", with: targets.targetURL)
                .replacingOccurrences(of: "${SERVICE_URL}", with: targets.serviceURL)
            return "GET \(shown)" + (status.map { " expecting \($0)" } ?? "") + cadence
        case .prometheus(let url, let query):
            return "prometheus \(url): \(query)" + cadence
        case .command(let argv):
            return argv.joined(separator: " ") + cadence
        }
    }

    /// Runs gates and turns a failure into its reason (nil: they passed).
    func gatesVerdict(_ names: [String], targets: GateTargets, label: String, firstFailure: Moment) async -> String? {
        do {
            try await gates(names, targets: targets, label: label, firstFailure: firstFailure)
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: - Moving traffic

    func move(to backends: [NginxProxy.Backend], label: String) async throws -> Duration {
        try await log.step(label, command: "nginx -s reload (\(spec.listen))") { say in
            let started = ContinuousClock.now
            let state = try await proxy.apply(backends)
            let took = ContinuousClock.now - started
            let shares = state.backends.map { "\($0.release?.version ?? $0.container) \($0.weight)%" }.joined(separator: ", ")
            say(
                "nginx generation \(state.generation) on \(spec.listen): \(shares.isEmpty ? "nothing" : shares) (took \(DurationParser.format(took)))"
            )
            try? store.append(
                EventRecord(
                    runID: context.runID, at: Date(), kind: "traffic", stage: log.stage.name,
                    message: "generation \(state.generation): \(shares.isEmpty ? "nothing" : shares)"))
            return took
        }
    }

    static func backend(_ container: String, port: Int, weight: Int, release: ReleaseReference?) -> NginxProxy.Backend {
        NginxProxy.Backend(port: port, weight: weight, container: container, release: release)
    }

    // MARK: - Deploy

    /// The image this run deploys: pushed by this run, else the one that passed the environment it
    /// is promoted from, else any earlier push of this commit or version.
    func image() throws -> String? {
        if let run = try store.run(id: context.runID), let image = run.image { return image }
        if let from = environment.promoteFrom, let sha = context.release.sha,
            let image = try store.lastSucceeded(environment: from, sha: sha)?.image
        {
            return image
        }
        return try store.image(sha: context.release.sha, version: context.release.version)?.image
    }

    func deploy() async -> RunContext.StageOutcome {
        if let worst = context.plan.worstCaseToAbort {
            context.reporter.report(
                .notice(
                    "worst-case time to abort and restore: \(DurationParser.format(worst.total)) (\(worst.parts.joined(separator: ", ")))"))
        }
        let imageReference: String
        do {
            guard let found = try image() else {
                return .init(
                    outcome: .failed,
                    reason:
                        "no image for release \(context.release.description): add build and push stages, or deploy a release that was pushed"
                )
            }
            imageReference = found
            try store.setRelease(runID: context.runID, version: context.release.version, sha: context.release.sha, image: found)
        } catch {
            return .init(outcome: .failed, reason: "\(error)")
        }
        let release = ReleaseReference(
            run: context.runID, version: context.release.version, sha: context.release.sha, image: imageReference)
        var now: Current
        do {
            now = try await current()
            let removed = try await cleanUp(now)
            now.containers.removeAll { removed.contains($0.name) }
        } catch {
            return .init(outcome: .failed, reason: "cannot read what runs in \(environment.name): \(error)")
        }
        let name = host.containerName(run: context.runID)
        guard let port = LoopbackPort.free() else { return .init(outcome: .failed, reason: "no free port on 127.0.0.1") }
        do {
            try await startContainer(release, name: name, port: port, history: goodHistory(now))
        } catch {
            try? await remove(name)
            return .init(outcome: .failed, reason: "\(error)")
        }
        if Task.isCancelled { return await cancelled(candidate: name, stable: now, moved: false) }
        let candidate = Self.backend(name, port: port, weight: 100, release: release)
        let firstFailure = Moment()
        let strategy = environment.strategy ?? .blueGreen(previewGates: [], bake: nil)

        // Gates on the new release alone, before it takes any traffic.
        if case .blueGreen(let preview, _) = strategy, !preview.isEmpty,
            let failure = await gatesVerdict(preview, targets: targets(port: port), label: " (preview)", firstFailure: firstFailure)
        {
            if Task.isCancelled { return await cancelled(candidate: name, stable: now, moved: false) }
            try? await remove(name)
            return .init(outcome: .failed, reason: "\(failure); the release never took traffic and was removed")
        }

        var failure: String?
        switch strategy {
        case .rolling, .blueGreen:
            do {
                _ = try await move(to: [candidate], label: "switch to \(release.version ?? name)")
                failure = await gatesVerdict(environment.gates, targets: targets(port: port), label: "", firstFailure: firstFailure)
                if failure == nil, case .blueGreen(_, let bake?) = strategy {
                    failure = await self.bake(bake, port: port, firstFailure: firstFailure)
                }
            } catch {
                failure = "\(error)"
            }
        case .canary(let steps, let pause, let analysis):
            for (index, weight) in steps.enumerated() {
                do {
                    var backends = [Self.backend(name, port: port, weight: weight, release: release)]
                    if let stable = now.stable, weight < 100 {
                        backends.append(Self.backend(stable.container, port: stable.port, weight: 100 - weight, release: stable.release))
                    } else {
                        backends[0].weight = 100
                    }
                    _ = try await move(to: backends, label: "canary \(weight)%")
                    failure = await gatesVerdict(
                        environment.gates + analysis, targets: targets(port: port), label: " at \(weight)%", firstFailure: firstFailure)
                    if failure == nil, let pause, index < steps.count - 1 {
                        try await log.step("pause", command: "wait \(DurationParser.format(pause))") { _ in
                            try await context.engine.clock.sleep(for: pause)
                        }
                    }
                } catch {
                    failure = "\(error)"
                }
                if failure != nil { break }
            }
        }
        if Task.isCancelled { return await cancelled(candidate: name, stable: now, moved: true) }
        if failure == nil, environment.rehearseRollback {
            switch await rehearse(candidate: candidate, stable: now) {
            case nil:
                break
            case .forward(let reason):
                failure = reason
            case .previous(let reason):
                // The new release passed; the one a rollback would return to did not. Traffic
                // stays on the new one, the run fails, and promotion refuses this release.
                return .init(
                    outcome: .failed,
                    reason:
                        "\(reason); \(environment.name) keeps serving \(release.version ?? name), which passed its gates, but a rollback from it would not work"
                )
            }
        }
        if let failure {
            return await rollBack(from: name, to: now, reason: failure, firstFailure: firstFailure)
        }

        // Every gate held: the old release goes, and this one is the environment's good release.
        for container in now.containers where container.name != name {
            try? await remove(container.name, step: "retire \(container.release?.version ?? container.name)")
        }
        context.reporter.report(.notice("\(environment.name) serves \(release.version ?? name) at \(serviceURL)"))
        return .init(outcome: .succeeded)
    }

    /// The good releases before this one, newest first, for the new container's label.
    func goodHistory(_ now: Current) -> [ReleaseReference] {
        var history: [ReleaseReference] = []
        if let stable = now.stableContainer, let release = stable.release {
            // Good unless the run store says otherwise (it may not know the run at all).
            let recorded = try? store.run(id: release.run)
            if recorded == nil || recorded?.outcome == .succeeded { history.append(release) }
            history += stable.goodHistory
        }
        var seen = Set<Int64>()
        return history.filter { seen.insert($0.run).inserted }
    }

    /// Removes containers a crashed deploy left behind: not serving and not the stable release.
    func cleanUp(_ now: Current) async throws -> Set<String> {
        let serving = Set(now.state?.backends.map(\.container) ?? [])
        var removed = Set<String>()
        for container in now.containers where !serving.contains(container.name) {
            removed.insert(container.name)
            try await remove(
                container.name, step: "clean up \(container.name)",
                why: "left by run \(container.labels[DockerHost.Label.startedBy] ?? "?"), not serving")
        }
        return removed
    }

    func startContainer(_ release: ReleaseReference, name: String, port: Int, history: [ReleaseReference]) async throws {
        try await log.step("start \(release.version ?? name)", command: "docker run --detach --name \(name) … \(release.image)") { say in
            let id = try await host.start(
                release, name: name, hostPort: port, containerPort: spec.port, history: history, startedBy: context.runID, onLine: say)
            say("container \(name) (\(id.prefix(12))) on 127.0.0.1:\(port)")
            let started = ContinuousClock.now
            guard await DockerHost.waitUntilListening(port: port, timeout: spec.readyTimeout) else {
                let logs = (try? await host.run(["logs", "--tail", "20", name])) ?? ""
                if !logs.isEmpty { say(logs) }
                throw StageLog.Failed(
                    description: "\(name) did not answer on 127.0.0.1:\(port) within \(DurationParser.format(spec.readyTimeout))")
            }
            say("answering after \(DurationParser.format(ContinuousClock.now - started))")
        }
    }

    /// Removes a container (`docker rm --force`) as a recorded step.
    func remove(_ name: String, step: String? = nil, why: String? = nil) async throws {
        try await log.step(step ?? "remove \(name)", command: "docker rm --force \(name)") { say in
            try await host.remove(name)
            say("removed \(name)" + (why.map { " (\($0))" } ?? ""))
        }
    }

    /// Keeps checking the gates until the bake period is over.
    func bake(_ period: Duration, port: Int, firstFailure: Moment) async -> String? {
        if environment.gates.isEmpty {
            do {
                try await log.step("bake", command: "wait \(DurationParser.format(period))") { _ in
                    try await context.engine.clock.sleep(for: period)
                }
                return nil
            } catch {
                return Task.isCancelled ? "cancelled" : "\(error)"
            }
        }
        let end = ContinuousClock.now + period
        var round = 0
        repeat {
            round += 1
            if let failure = await gatesVerdict(
                environment.gates, targets: targets(port: port), label: " (bake \(round))", firstFailure: firstFailure)
            {
                return failure
            }
            if Task.isCancelled { return "cancelled" }
        } while ContinuousClock.now < end
        return nil
    }

    enum RehearsalFailure {
        /// The previous release failed its gates once traffic was back on it.
        case previous(String)
        /// Going forward again failed.
        case forward(String)
    }

    /// Rolls back to the stable release and forward again, timing the rollback.
    func rehearse(candidate: NginxProxy.Backend, stable now: Current) async -> RehearsalFailure? {
        guard let stable = now.stable else {
            try? store.recordRehearsal(runID: context.runID, outcome: "skipped", milliseconds: nil, at: Date())
            context.reporter.report(.notice("rollback rehearsal skipped: nothing ran here before this release"))
            return nil
        }
        let firstFailure = Moment()
        var took: Duration?
        func failed(_ failure: RehearsalFailure) -> RehearsalFailure {
            try? store.recordRehearsal(
                runID: context.runID, outcome: "failed", milliseconds: took.map { Int($0 / .milliseconds(1)) }, at: Date())
            return failure
        }
        do {
            took = try await move(to: [stable], label: "rehearsal: back to \(stable.release?.version ?? stable.container)")
            if let failure = await gatesVerdict(
                environment.gates, targets: targets(port: stable.port, release: stable.release), label: " (rehearsal, previous)",
                firstFailure: firstFailure)
            {
                _ = try? await move(to: [candidate], label: "rehearsal: forward again")
                return failed(.previous("rollback rehearsal failed: the previous release failed its gates: \(failure)"))
            }
        } catch {
            _ = try? await move(to: [candidate], label: "rehearsal: forward again")
            return failed(.previous("rollback rehearsal failed: \(error)"))
        }
        do {
            _ = try await move(to: [candidate], label: "rehearsal: forward to \(candidate.release?.version ?? candidate.container)")
        } catch {
            return failed(.forward("rollback rehearsal failed going forward again: \(error)"))
        }
        if let failure = await gatesVerdict(
            environment.gates, targets: targets(port: candidate.port), label: " (rehearsal, forward)", firstFailure: firstFailure)
        {
            return failed(.forward("rollback rehearsal failed going forward again: \(failure)"))
        }
        let ms = Int((took ?? .zero) / .milliseconds(1))
        try? store.recordRehearsal(runID: context.runID, outcome: "passed", milliseconds: ms, at: Date())
        context.reporter.report(.notice("rollback rehearsal passed: traffic was back on the previous release in \(ms) ms"))
        return nil
    }

    /// Sends all traffic back to what served before, verifies it with the same gates, removes the
    /// failed release and pins the environment.
    func rollBack(from candidate: String, to now: Current, reason: String, firstFailure: Moment) async -> RunContext.StageOutcome {
        // However the run is being stopped, the rollback itself must finish.
        await uncancelled { await rollBackUncancelled(from: candidate, to: now, reason: reason, firstFailure: firstFailure) }
    }

    func rollBackUncancelled(from candidate: String, to now: Current, reason: String, firstFailure: Moment) async
        -> RunContext.StageOutcome
    {
        let decided = firstFailure.value ?? .now
        context.reporter.report(.notice("rolling back: \(reason)"))
        guard let stable = now.stable else {
            _ = try? await move(to: [], label: "stop serving \(candidate)")
            try? await remove(candidate)
            return .init(outcome: .failed, reason: "\(reason); nothing served \(environment.name) before, so nothing was rolled back to")
        }
        let version = stable.release?.version ?? stable.container
        do {
            _ = try await move(to: [stable], label: "roll back to \(version)")
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(reason); then moving traffic back to \(version) failed: \(error)")
        }
        let ms = Int((ContinuousClock.now - decided) / .milliseconds(1))
        try? store.recordRollback(runID: context.runID, restoredRunID: stable.release?.run, milliseconds: ms)
        try? store.append(
            EventRecord(
                runID: context.runID, at: Date(), kind: "rollback", stage: log.stage.name,
                message: "\(version) serves all traffic again, \(ms) ms after the first failed measurement"))
        context.reporter.report(.notice("\(version) serves all traffic again, \(ms) ms after the first failed measurement"))
        let verification = await gatesVerdict(
            environment.gates, targets: targets(port: stable.port, release: stable.release), label: " (verify \(version))",
            firstFailure: Moment())
        try? await remove(candidate)
        let pinReason = "rolled back from \(context.release.description) to \(version): \(reason)"
        try? store.pin(
            environment: environment.name, runID: context.runID, actor: context.trigger.description, reason: pinReason, at: Date())
        if let verification {
            return .init(
                outcome: .rollbackFailed, reason: "\(reason); rolled back to \(version), which then failed its gates too: \(verification)")
        }
        return .init(outcome: .rolledBack, reason: "\(reason); rolled back to \(version) in \(ms) ms")
    }

    /// The run was stopped: traffic goes back where it was, and the new container goes.
    func cancelled(candidate: String, stable now: Current, moved: Bool) async -> RunContext.StageOutcome {
        await uncancelled {
            if moved, let stable = now.stable {
                _ = try? await move(to: [stable], label: "restore \(stable.release?.version ?? stable.container)")
            }
            try? await remove(candidate)
        }
        return .init(outcome: .cancelled, reason: moved ? "traffic was put back on the release that served before" : nil)
    }
}

/// Runs `body` in a task of its own, which the caller's cancellation does not reach: what puts
/// traffic back must finish even while the run is being stopped.
func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
    await Task { await body() }.value
}
