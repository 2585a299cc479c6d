import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore

extension Rollout {
    /// `deploy rollback`: undoes the latest change to the environment, at once and with no
    /// analysis, putting back the last release that passed its gates and bake here (or the one
    /// named by `--to`: a version, a run id or a commit) after checking that its image can still
    /// be run.
    ///
    /// When the latest change finished, that is the good release before the one serving. When it
    /// did not (a deploy killed, cancelled or failed, perhaps mid-canary), it is the release that
    /// change started from: if that already serves all traffic nothing moves; if it serves part of
    /// it, it is given all of it. The run store says which releases were good; when it has nothing
    /// (missing or replaced), the instances' own records (labels, annotations) do.
    func emergencyRollback(to wanted: String?) async -> RunContext.StageOutcome {
        let started = ContinuousClock.now
        var now: TargetObservation
        do {
            try await preflight()
            now = try await target.observe()
        } catch {
            return .init(outcome: .rollbackFailed, reason: "cannot read what runs in \(environment.name): \(error)")
        }
        let stable = now.stable
        let serving = stable?.release
        let recorded =
            await (try? store.goodReleases(environment: environment.name, before: wanted == nil ? serving?.run : nil, limit: 50)) ?? []
        var candidates = recorded.compactMap { run in
            run.image.map { ReleaseReference(run: run.id, version: run.version, sha: run.sha, image: $0) }
        }
        var source = "the run store"
        if candidates.isEmpty, let stable {
            candidates = stable.goodHistory
            source = "the record kept by \(stable.name)"
        }
        if wanted == nil, let change = await unfinishedChange(now) {
            if let outcome = await restoreServing(change, now: now, started: started) { return outcome }
            // The release the change started from no longer serves: start it again.
            candidates = [change.lastGood] + candidates.filter { $0.image != change.lastGood.image }
            source = change.source
        }
        if let wanted {
            let run = Int64(wanted.hasPrefix("#") ? String(wanted.dropFirst()) : wanted)
            candidates = candidates.filter {
                $0.version == wanted || $0.run == run || ($0.sha.map { wanted.count >= 7 && $0.hasPrefix(wanted) } ?? false)
            }
            if candidates.isEmpty {
                return .init(
                    outcome: .failed,
                    reason:
                        "no release '\(wanted)' passed its gates in \(environment.name) (according to \(source)); `deploy history \(environment.name)` lists them"
                )
            }
        }
        candidates = candidates.filter { $0.run != serving?.run || $0.image != serving?.image }
        guard !candidates.isEmpty else {
            guard stable != nil || !now.routes.isEmpty else {
                return .init(
                    outcome: .failed,
                    reason:
                        "nothing serves \(environment.name), and no release is known to have passed its gates there (\(source) names none); "
                        + "deploy one by name: `deploy \(environment.name) --release VERSION`")
            }
            return .init(
                outcome: .failed,
                reason:
                    "nothing to roll back to: according to \(source), no release passed its gates in \(environment.name) before \(serving?.description ?? "the current one")"
            )
        }
        context.reporter.report(
            .notice("choosing from \(candidates.count) good release\(candidates.count == 1 ? "" : "s") known to \(source)"))

        let chosen: ReleaseReference
        do {
            chosen = try await log.step("find image", command: target.describe(.findImage)) { say -> ReleaseReference in
                for candidate in candidates {
                    if await target.imageAvailable(candidate.image, say: say) {
                        say("\(candidate.description): \(candidate.image) is available")
                        return candidate
                    }
                    say("\(candidate.description): image \(candidate.image) is gone; trying an older release")
                }
                throw StepRecorder.Failed(description: "none of the good releases' images can be found any more")
            }
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(error)")
        }
        try? await store.setRelease(runID: context.runID, version: chosen.version, sha: chosen.sha, image: chosen.image)
        await sayImpact(from: serving, to: chosen)

        // What a killed deploy left and takes no traffic goes first (the next deploy would).
        let removed = (try? await cleanUp(now)) ?? []
        now.instances.removeAll { removed.contains($0.name) }
        // The restored release's history: the good ones before it.
        let history = candidates.drop { $0.run != chosen.run }.dropFirst()
        let restored: TargetInstance
        do {
            restored = try await startCandidate(chosen, history: Array(history))
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(error)")
        }
        return await switchTo(restored, release: chosen, now: now, started: started)
    }

    /// Gives `restored` all traffic, removes every other instance, records and pins.
    private func switchTo(
        _ restored: TargetInstance, release chosen: ReleaseReference, now: TargetObservation, started: ContinuousClock.Instant
    )
        async -> RunContext.StageOutcome
    {
        let switched = Moment()
        let outcome = await uncancelled { () -> RunContext.StageOutcome in
            do {
                try await move(to: [TrafficShare(restored, weight: 100)], label: "switch to \(restored.label)")
            } catch {
                if !now.routes.contains(where: { $0.instance.name == restored.name }) { await retireOrWarn(restored) }
                return .init(outcome: .rollbackFailed, reason: "moving traffic to \(chosen.description) failed: \(error)")
            }
            switched.mark()
            for instance in now.instances where instance.name != restored.name {
                await retireOrWarn(instance, step: "remove \(instance.label)")
            }
            return .init(outcome: .succeeded)
        }
        guard outcome.outcome == .succeeded else { return outcome }
        let ms = Int(((switched.value ?? .now) - started) / .milliseconds(1))
        try? await store.recordRollback(runID: context.runID, restoredRunID: chosen.run, milliseconds: ms)
        await pin("rolled back by hand to \(chosen.description)")
        context.reporter.report(
            .notice("\(environment.name) serves \(chosen.description) at \(target.serviceURL) (rolled back in \(ms) ms)"))
        return .init(outcome: .succeeded)
    }

    /// Says, before anything moves, what going from `serving` back to `restored` undoes (the
    /// risk report of the commits between them: migrations above all), and records it.
    private func sayImpact(from serving: ReleaseReference?, to restored: ReleaseReference) async {
        guard let from = serving?.sha, let to = restored.sha, from != to, let impact = context.engine.rollbackImpact,
            let said = await impact(from, to)
        else { return }
        context.reporter.report(.notice(said))
        try? await store.append(EventRecord(runID: context.runID, at: Date(), kind: .rollback, stage: log.stage.name, message: said))
    }

    private func pin(_ reason: String) async {
        try? await store.pin(
            environment: environment.name, runID: context.runID, actor: context.trigger.description, reason: reason, at: Date())
    }

    /// When the release an unfinished change started from still takes traffic: says so if it
    /// takes all of it (removing only what takes none), else gives it all. Nil when it takes none.
    private func restoreServing(_ change: UnfinishedChange, now: TargetObservation, started: ContinuousClock.Instant) async
        -> RunContext.StageOutcome?
    {
        let running = Set(now.instances.filter(\.running).map(\.name))
        guard
            let share = now.routes.filter({ $0.instance.release?.image == change.lastGood.image && running.contains($0.instance.name) })
                .max(by: { $0.weight < $1.weight })
        else { return nil }
        let release = share.instance.release ?? change.lastGood
        context.reporter.report(.notice("\(change.description); the last good release is \(release.description)"))
        try? await store.setRelease(runID: context.runID, version: release.version, sha: release.sha, image: release.image)
        guard share.weight < 100 || now.routes.count > 1 else {
            _ = try? await cleanUp(now)
            await pin("rollback found \(release.description) already serving all traffic after \(change.description)")
            let said =
                "\(release.description) already serves all traffic in \(environment.name): nothing changed "
                + "(`deploy rollback \(environment.name) --to VERSION` goes further back)"
            context.reporter.report(.notice(said))
            return .init(outcome: .succeeded, reason: said)
        }
        context.reporter.report(.notice("\(release.description) takes \(share.weight)% of traffic: giving it all of it"))
        let leaving = now.routes.filter { $0.instance.name != share.instance.name }.max { $0.weight < $1.weight }?.instance.release
        await sayImpact(from: leaving, to: release)
        return await switchTo(share.instance, release: release, now: now, started: started)
    }
}

/// The latest change to an environment, when it did not finish, and the release it started from.
struct UnfinishedChange: Sendable, CustomStringConvertible {
    /// `run 7 (deploying 1.3.0) ended interrupted`, or what the instances say.
    var description: String
    var lastGood: ReleaseReference
    /// Who says `lastGood` was good.
    var source: String
}

extension Rollout {
    /// The latest change to the environment if it did not finish: from the run store, else (the
    /// store knows no run here) from the instances, one of which names in its record a release
    /// that still takes traffic as the good one it started from.
    func unfinishedChange(_ now: TargetObservation) async -> UnfinishedChange? {
        let runs = ((try? await store.history(environment: environment.name, limit: 20)) ?? []).filter { $0.id != context.runID }
        if !runs.isEmpty {
            var unfinished: RunRecord?
            for run in runs where await changedEnvironment(run) {
                guard let latest = unfinished else {
                    if run.outcome == .succeeded { return nil }
                    unfinished = run
                    continue
                }
                if run.outcome == .succeeded, let image = run.image {
                    let restored = run.kind == "rollback" ? run.restoredRunID ?? run.id : run.id
                    return UnfinishedChange(
                        description:
                            "run \(latest.id) (\(latest.kind == "rollback" ? "a rollback" : "deploying \(Release(sha: latest.sha, version: latest.version).description)")) ended \(latest.outcome.rawValue)",
                        lastGood: ReleaseReference(run: restored, version: run.version, sha: run.sha, image: image), source: "the run store"
                    )
                }
            }
            return nil
        }
        // No run store: a later instance's record names the good release it started from.
        for share in now.routes {
            guard let release = share.instance.release else { continue }
            if let later = now.instances.first(where: { $0.name != share.instance.name && $0.goodHistory.first?.image == release.image }) {
                return UnfinishedChange(
                    description: "\(later.name) (\(later.label)) was started from \(release.description) and did not take all traffic",
                    lastGood: release, source: "the record kept by \(later.name)")
            }
        }
        return nil
    }

    /// Whether a run changed the environment or set out to: it succeeded, or its deploy or
    /// rollback stage started (a run that failed before changing it exits 1 and is passed over).
    private func changedEnvironment(_ run: RunRecord) async -> Bool {
        if run.outcome == .succeeded { return true }
        if run.exitCode == Int(ExitStatus.failed.rawValue) { return false }
        guard let detail = try? await store.detail(runID: run.id) else { return false }
        return detail.stages.contains { ($0.kind == "deploy" || $0.kind == "rollback") && $0.startedAt != nil }
    }
}
