import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// One deploy stage over a target: the new release starts beside what serves, the environment's
/// strategy moves traffic to it with gates on the way, and a failing gate puts traffic back on the
/// release that was serving, which the same gates then verify. Everything it does to the target is
/// a recorded step of the stage.
///
/// It knows targets only through ``DeployTarget`` and strategies only through ``RolloutStrategy``.
struct Rollout: Sendable {
    let context: RunContext
    let target: any DeployTarget
    let log: StepRecorder

    var environment: EnvironmentSpec { context.plan.environment }
    var store: any DeployStore { context.store }
    var clock: any Clock<Duration> { context.engine.clock }

    func targets(_ instance: TargetInstance, release: ReleaseReference? = nil, stable: TargetInstance? = nil) -> GateTargets {
        GateTargets(
            targetURL: instance.url, serviceURL: target.serviceURL, release: release, instance: instance, target: target,
            stable: stable.flatMap { $0.name == instance.name ? nil : $0 })
    }

    // MARK: - Gates

    /// Runs the named gates against `targets` together (one check point), each as a recorded step
    /// with every measurement recorded; throws at the first failure, which stops the others.
    func gates(_ names: [String], targets: GateTargets, label: String, firstFailure: Moment) async throws {
        let specs = names.compactMap { name in context.plan.pipeline.gates.first { $0.name == name } }
        let checks = try specs.map { try context.check(for: $0, targets: targets) }
        if let instance = targets.instance, specs.contains(where: \.check.isPrometheus) {
            try await awaitScrape(instance)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (gate, check) in zip(specs, checks) {
                group.addTask {
                    try await self.gate(gate, check: check, targets: targets, label: label, firstFailure: firstFailure)
                }
            }
            do {
                for try await _ in group {}
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// One gate as a recorded step; its measurements go to the run record as they are taken.
    func gate(_ gate: GateSpec, check: any GateChecking, targets: GateTargets, label: String, firstFailure: Moment) async throws {
        let runner = GateRunner(clock: clock)
        let description = gate.description(targets: targets)
        let checkpoint =
            label.trimmingCharacters(in: CharacterSet(charactersIn: " ()")).isEmpty
            ? "gates" : label.trimmingCharacters(in: CharacterSet(charactersIn: " ()"))
        let context = self.context
        let stage = log.stage.name
        try await log.step("gate \(gate.name)\(label)", command: description) { say in
            let counter = Mutex(0)
            let result = await runner.run(gate, check: check) { measurement in
                if !measurement.passed { firstFailure.mark() }
                let number = counter.withLock { value in
                    value += 1
                    return value
                }
                let verdict = measurement.passed ? "pass" : measurement.inconclusive != nil ? "INCONCLUSIVE" : "FAIL"
                say("\(verdict) #\(number): \(measurement.detail)")
                try? await context.store.recordMeasurements([
                    GateMeasurementRecord(
                        runID: context.runID, stage: stage, gate: gate.name, checkpoint: checkpoint, at: measurement.at,
                        verdict: measurement.verdict, value: measurement.value, stableValue: measurement.stableValue,
                        detail: context.masker.mask(measurement.detail), query: context.masker.mask(measurement.query ?? description))
                ])
            }
            if Task.isCancelled { throw CancellationError() }
            if !result.passed { throw StepRecorder.Failed(description: result.reason ?? "gate \(gate.name) failed") }
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

    // MARK: - The target, as recorded steps

    /// Sends traffic as `shares` say; returns how long the switch took.
    @discardableResult
    func move(to shares: [TrafficShare], label: String) async throws -> Duration {
        try await log.step(label, command: target.describe(.route)) { say in
            let started = ContinuousClock.now
            let summary = try await target.route(shares)
            let took = ContinuousClock.now - started
            say(summary)
            let split = shares.filter { $0.weight > 0 }.map { "\($0.instance.label) \($0.weight)%" }.joined(separator: ", ")
            try? await store.append(
                EventRecord(
                    runID: context.runID, at: Date(), kind: .traffic, stage: log.stage.name, message: split.isEmpty ? "nothing" : split))
            FaultPoint.moved.reached()
            return took
        }
    }

    func startCandidate(_ release: ReleaseReference, history: [ReleaseReference]) async throws -> TargetInstance {
        let name = "r\(context.runID)"
        let instance = try await log.step("start \(release.version ?? name)", command: target.describe(.stage(release, name: name))) {
            say in
            try await target.stage(release, run: context.runID, history: history, say: say)
        }
        FaultPoint.started.reached()
        return instance
    }

    /// The target's own checks before anything changes, as a recorded step (when it has any).
    func preflight() async throws {
        guard target.checksBeforeChanges else { return }
        try await log.step("preflight", command: "\(target.kind): can it be driven?") { say in
            try await target.preflight(say: say)
        }
    }

    /// Removes an instance as a recorded step.
    func retire(_ instance: TargetInstance, step: String? = nil, why: String? = nil) async throws {
        try await log.step(step ?? "remove \(instance.name)", command: target.describe(.retire(instance))) { say in
            try await target.retire(instance)
            say("removed \(instance.name)" + (why.map { " (\($0))" } ?? ""))
        }
    }

    /// Removes an instance the environment no longer needs. A failure does not fail the run: it is
    /// recorded on the run as a warning, and the next deploy or rollback removes what was left
    /// (each begins by removing every instance that takes no traffic).
    func retireOrWarn(_ instance: TargetInstance, step: String? = nil, why: String? = nil) async {
        do {
            try await retire(instance, step: step, why: why)
        } catch {
            let message =
                "warning: \(instance.name) (\(instance.label)) was left behind: removing it failed (\(error)); "
                + "the next deploy or rollback of \(environment.name) removes it"
            try? await store.append(
                EventRecord(runID: context.runID, at: Date(), kind: .cleanupFailed, stage: log.stage.name, message: message))
            context.reporter.report(.notice(message))
        }
    }

    /// Removes instances a crashed deploy left behind: not routed to. Returns their names.
    func cleanUp(_ now: TargetObservation) async throws -> Set<String> {
        var removed = Set<String>()
        for instance in now.unrouted {
            removed.insert(instance.name)
            try await retire(
                instance, step: "clean up \(instance.name)", why: "left by run \(instance.startedBy ?? "?"), taking no traffic")
        }
        return removed
    }

    /// The good releases before this one, newest first, for the new instance to carry.
    func goodHistory(_ now: TargetObservation) async -> [ReleaseReference] {
        var history: [ReleaseReference] = []
        if let stable = now.stable, let release = stable.release {
            // What serves is good unless the run store says otherwise. The store may not know that
            // run at all, or (a store lost and begun again) know another run by the same id: only a
            // run of this very image counts.
            let recorded = try? await store.run(id: release.run)
            let same = recorded.map { $0.id != context.runID && $0.image == release.image } ?? false
            if !same || recorded?.outcome == .succeeded { history.append(release) }
            history += stable.goodHistory
        }
        var seen = Set<Int64>()
        return history.filter { seen.insert($0.run).inserted }
    }

    /// Keeps checking the environment's gates until the bake period is over.
    func bake(_ period: Duration, candidate: TargetInstance, firstFailure: Moment) async -> String? {
        FaultPoint.baking.reached()
        if environment.gates.isEmpty {
            do {
                try await log.step("bake", command: "wait \(DurationParser.format(period))") { _ in
                    try await clock.sleep(for: period)
                }
                return nil
            } catch {
                return Task.isCancelled ? "cancelled" : "\(error)"
            }
        }
        let over = clock.deadline(after: period)
        var round = 0
        repeat {
            round += 1
            if let failure = await gatesVerdict(
                environment.gates, targets: targets(candidate), label: " (bake \(round))", firstFailure: firstFailure)
            {
                return failure
            }
            if Task.isCancelled { return "cancelled" }
        } while !over()
        return nil
    }

    // MARK: - Deploy

    /// The image this run deploys (``RunContext/releaseImage(for:)``).
    func image() async throws -> String? {
        try await context.releaseImage(for: environment)
    }

    func deploy() async -> RunContext.StageOutcome {
        if let worst = context.plan.worstCaseToAbort {
            context.reporter.report(
                .notice(
                    "worst-case time to abort and restore: \(DurationParser.format(worst.total)) (\(worst.parts.joined(separator: ", ")))"))
        }
        do {
            try await preflight()
        } catch {
            return .init(outcome: .failed, reason: "\(error)")
        }
        let imageReference: String
        do {
            guard let found = try await image() else {
                return .init(
                    outcome: .failed,
                    reason:
                        "no image for release \(context.release.description): add build and push stages, or deploy a release that was pushed"
                )
            }
            imageReference = found
            try await store.setRelease(runID: context.runID, version: context.release.version, sha: context.release.sha, image: found)
        } catch {
            return .init(outcome: .failed, reason: "\(error)")
        }
        let release = ReleaseReference(
            run: context.runID, version: context.release.version, sha: context.release.sha, image: imageReference)
        var now: TargetObservation
        do {
            now = try await target.observe()
            let removed = try await cleanUp(now)
            now.instances.removeAll { removed.contains($0.name) }
        } catch {
            return .init(outcome: .failed, reason: "cannot read what runs in \(environment.name): \(error)")
        }
        let stable = now.stable
        let candidate: TargetInstance
        do {
            candidate = try await startCandidate(release, history: goodHistory(now))
        } catch {
            return .init(outcome: .failed, reason: "\(error)")
        }
        if Task.isCancelled { return await cancelled(candidate: candidate, stable: stable, moved: false) }
        let firstFailure = Moment()
        let strategy = (environment.strategy ?? .blueGreen(previewGates: [], bake: nil)).strategy

        var failure: String?
        let verdict = await context.control.handlingAbort {
            await supervised(strategy, candidate: candidate, stable: stable, firstFailure: firstFailure)
        }
        switch verdict {
        case .passed:
            break
        case .refusedBeforeTraffic(let reason):
            if Task.isCancelled { return await cancelled(candidate: candidate, stable: stable, moved: false) }
            await retireOrWarn(candidate)
            return .init(outcome: .failed, reason: "\(reason); the release never took traffic and was removed")
        case .failed(let reason):
            failure = reason
        }
        if Task.isCancelled { return await cancelled(candidate: candidate, stable: stable, moved: true) }
        if failure == nil, environment.rehearseRollback {
            switch await Rehearsal(rollout: self).run(candidate: candidate, stable: stable) {
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
                        "\(reason); \(environment.name) keeps serving \(candidate.label), which passed its gates, but a rollback from it would not work",
                    environmentChanged: true)
            }
        }
        // An abort wins over a promotion in flight: the new release took all traffic, but it goes.
        if failure == nil, let abort = context.control.abort {
            firstFailure.mark()
            failure = abort.said
        }
        if let failure {
            return await context.control.handlingAbort {
                await RollbackProcedure(rollout: self).rollBack(from: candidate, to: stable, reason: failure, firstFailure: firstFailure)
            }
        }

        // Every gate held: the old release goes, and this one is the environment's good release.
        for instance in now.instances where instance.name != candidate.name {
            await retireOrWarn(instance, step: "retire \(instance.label)")
        }
        context.reporter.report(.notice("\(environment.name) serves \(candidate.label) at \(target.serviceURL)"))
        return .init(outcome: .succeeded)
    }

    // MARK: - Metrics

    /// The Prometheus servers the environment's gates ask (its gates, preview gates and analysis).
    func prometheusURLs() -> [String] {
        var names = environment.gates
        switch environment.strategy {
        case .canary(_, _, let analysis, _): names += analysis
        case .blueGreen(let preview, _): names += preview
        default: break
        }
        let values = context.variables(stage: "gate")
        var urls: [String] = []
        for name in names {
            guard case .prometheus(let url, _) = context.plan.pipeline.gates.first(where: { $0.name == name })?.check,
                let expanded = try? Variables.expand(url, with: values), !urls.contains(expanded)
            else { continue }
            urls.append(expanded)
        }
        return urls
    }

    /// Before the first metric gate measures an instance, each Prometheus the environment's gates
    /// ask must be scraping it (once per instance and run): analysis then measures the release
    /// from its first requests, instead of reading "no data" while Prometheus's discovery catches up.
    func awaitScrape(_ candidate: TargetInstance) async throws {
        let urls = prometheusURLs()
        guard !urls.isEmpty, context.scraped.insert(candidate.name) else { return }
        try await log.step(
            "wait for Prometheus to scrape \(candidate.label)",
            command: "up{slipway_instance=\"\(candidate.name)\"} == 1 in \(urls.joined(separator: ", "))"
        ) { say in
            for url in urls {
                let took = try await PrometheusCheck.awaitScrape(of: candidate.name, url: url, limit: Self.scrapeLimit)
                say("\(url) scrapes \(candidate.name) (after \(DurationParser.format(took)))")
            }
        }
    }

    /// How long Prometheus may take to scrape a new release (its discovery applies changes in ~10 s).
    static let scrapeLimit = Duration.seconds(30)

    // MARK: - Supervision

    /// How long the strategy may take: its part of the worst-case time to abort (`deploy plan`),
    /// with a tenth and 5 s more for the run's own bookkeeping; time held by `deploy pause` is not
    /// counted (the canary's `hold_limit` bounds it).
    func deadline(_ strategy: any RolloutStrategy) -> Duration {
        let parts = strategy.worstCase(context.plan, budget: target.budget).map(\.1).saturatingSum()
        return parts.saturatingPlus(parts / 10).saturatingPlus(.seconds(5))
    }

    /// Runs the strategy under the run's controls: `deploy abort` stops it at once, and so does its
    /// deadline; either way the verdict is a failure, and the rollback path runs.
    func supervised(_ strategy: any RolloutStrategy, candidate: TargetInstance, stable: TargetInstance?, firstFailure: Moment) async
        -> RolloutVerdict
    {
        let control = context.control
        let limit = deadline(strategy)
        let started = ContinuousClock.now
        return await withTaskGroup(of: RolloutVerdict?.self) { group in
            group.addTask { await strategy.run(self, candidate: candidate, stable: stable, firstFailure: firstFailure) }
            group.addTask {
                while !Task.isCancelled {
                    if let abort = control.abort {
                        firstFailure.mark()
                        return .failed(abort.said)
                    }
                    if ContinuousClock.now - started - control.held > limit {
                        firstFailure.mark()
                        return .failed(
                            "the rollout passed its deadline of \(DurationParser.format(limit)) (the pipeline's worst case for this strategy)"
                        )
                    }
                    do { try await Task.sleep(for: .milliseconds(100)) } catch { return nil }
                }
                return nil
            }
            var verdict: RolloutVerdict?
            while verdict == nil, let next = await group.next() { verdict = next }
            group.cancelAll()
            return verdict ?? .failed("cancelled")
        }
    }

    /// Holds the rollout while `deploy pause` is in force, as a recorded step: until `deploy resume`,
    /// an abort (the supervisor takes it), or `limit`, past which the rollout fails.
    func holdIfPaused(limit: Duration, label: String) async -> String? {
        let control = context.control
        guard let pause = control.pause, control.abort == nil else { return nil }
        control.beginHold()
        defer { control.endHold() }
        do {
            try await log.step(
                "hold\(label)",
                command: "\(pause.said); `deploy resume \(context.runID)` goes on (hold_limit \(DurationParser.format(limit)))"
            ) { say in
                say("held \(label.trimmingCharacters(in: .whitespaces)): \(pause.said)")
                let started = ContinuousClock.now
                while control.pause != nil, control.abort == nil {
                    if ContinuousClock.now - started > limit {
                        throw StepRecorder.Failed(
                            description: "held for \(DurationParser.format(limit)) (\(pause.said)), longer than hold_limit allows")
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                if control.abort == nil { say("resumed") }
            }
        } catch {
            return Task.isCancelled ? "cancelled" : "\(error)"
        }
        // Aborted while held: the canary goes no further (the supervisor rolls back).
        return control.abort?.said
    }

    /// The run was stopped: traffic goes back where it was, and the new instance goes.
    func cancelled(candidate: TargetInstance, stable: TargetInstance?, moved: Bool) async -> RunContext.StageOutcome {
        await uncancelled {
            if moved, let stable {
                _ = try? await move(to: [TrafficShare(stable, weight: 100)], label: "restore \(stable.label)")
            }
            await retireOrWarn(candidate)
        }
        return .init(outcome: .cancelled, reason: moved ? "traffic was put back on the release that served before" : nil)
    }
}

/// Runs `body` in a task of its own, which the caller's cancellation does not reach: what puts
/// traffic back must finish even while the run is being stopped.
func uncancelled<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
    await Task { await body() }.value
}

extension Clock where Duration == Swift.Duration {
    /// Says whether `period` has passed on this clock since the call (the engine's clock: tests
    /// pass one that never waits).
    func deadline(after period: Swift.Duration) -> @Sendable () -> Bool {
        let end = now.advanced(by: period)
        return { now >= end }
    }
}
