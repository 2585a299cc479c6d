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

    func targets(_ instance: TargetInstance, release: ReleaseReference? = nil) -> GateTargets {
        GateTargets(targetURL: instance.url, serviceURL: target.serviceURL, release: release, instance: instance, target: target)
    }

    // MARK: - Gates

    /// Runs the named gates in order against `targets`, each as a recorded step; throws at the first failure.
    func gates(_ names: [String], targets: GateTargets, label: String, firstFailure: Moment) async throws {
        let runner = GateRunner(clock: clock)
        for name in names {
            guard let gate = context.plan.pipeline.gates.first(where: { $0.name == name }) else { continue }
            let check = try context.check(for: gate, targets: targets)
            try await log.step("gate \(name)\(label)", command: gate.description(targets: targets)) { say in
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
                if !result.passed { throw StepRecorder.Failed(description: result.reason ?? "gate \(name) failed") }
            }
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
        switch await strategy.run(self, candidate: candidate, stable: stable, firstFailure: firstFailure) {
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
        if let failure {
            return await RollbackProcedure(rollout: self).rollBack(from: candidate, to: stable, reason: failure, firstFailure: firstFailure)
        }

        // Every gate held: the old release goes, and this one is the environment's good release.
        for instance in now.instances where instance.name != candidate.name {
            await retireOrWarn(instance, step: "retire \(instance.label)")
        }
        context.reporter.report(.notice("\(environment.name) serves \(candidate.label) at \(target.serviceURL)"))
        return .init(outcome: .succeeded)
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
