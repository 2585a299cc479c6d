import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore

extension Rollout {
    /// `deploy rollback`: puts back the last release that passed its gates and bake here (or the
    /// one named by `--to`, a version or a run id), with no analysis, after checking that its image
    /// can still be run. The run store says which releases were good; when it has nothing (missing
    /// or replaced), the serving instance's own record (labels, annotations) does.
    func emergencyRollback(to wanted: String?) async -> RunContext.StageOutcome {
        let started = ContinuousClock.now
        let now: TargetObservation
        do {
            now = try await target.observe()
        } catch {
            return .init(outcome: .rollbackFailed, reason: "cannot read what runs in \(environment.name): \(error)")
        }
        let stable = now.stable
        let serving = stable?.release
        var candidates: [ReleaseReference] = []
        let recorded =
            await (try? store.goodReleases(environment: environment.name, before: wanted == nil ? serving?.run : nil, limit: 50)) ?? []
        candidates = recorded.compactMap { run in
            run.image.map { ReleaseReference(run: run.id, version: run.version, sha: run.sha, image: $0) }
        }
        var source = "the run store"
        if candidates.isEmpty, let stable {
            candidates = stable.goodHistory
            source = "the record kept by \(stable.name)"
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
        candidates = candidates.filter { $0.run != serving?.run }
        guard !candidates.isEmpty else {
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

        // The restored release's history: the good ones before it.
        let history = candidates.drop { $0.run != chosen.run }.dropFirst()
        let restored: TargetInstance
        do {
            restored = try await startCandidate(chosen, history: Array(history))
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(error)")
        }
        let switched = Moment()
        let outcome = await uncancelled { () -> RunContext.StageOutcome in
            do {
                try await move(to: [TrafficShare(restored, weight: 100)], label: "switch to \(restored.label)")
            } catch {
                try? await retire(restored)
                return .init(outcome: .rollbackFailed, reason: "moving traffic to \(chosen.description) failed: \(error)")
            }
            switched.mark()
            for instance in now.instances where instance.name != restored.name {
                try? await retire(instance, step: "remove \(instance.label)")
            }
            return .init(outcome: .succeeded)
        }
        guard outcome.outcome == .succeeded else { return outcome }
        let ms = Int(((switched.value ?? .now) - started) / .milliseconds(1))
        try? await store.recordRollback(runID: context.runID, restoredRunID: chosen.run, milliseconds: ms)
        try? await store.pin(
            environment: environment.name, runID: context.runID, actor: context.trigger.description,
            reason: "rolled back by hand to \(chosen.description)", at: Date())
        context.reporter.report(
            .notice("\(environment.name) serves \(chosen.description) at \(target.serviceURL) (rolled back in \(ms) ms)"))
        return .init(outcome: .succeeded)
    }
}
