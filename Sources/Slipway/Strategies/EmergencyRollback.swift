import Foundation
import SlipwayProcess
import SlipwayStore

extension DockerRollout {
    /// `deploy rollback`: puts back the last release that passed its gates and bake here (or the
    /// one named by `--to`, a version or a run id), with no analysis, after checking that its image
    /// can still be run. The run store says which releases were good; when it has nothing (missing
    /// or replaced), the serving container's own labels do.
    func emergencyRollback(to wanted: String?) async -> RunContext.StageOutcome {
        let started = ContinuousClock.now
        let now: Current
        do {
            now = try await current()
        } catch {
            return .init(outcome: .rollbackFailed, reason: "cannot read what runs in \(environment.name): \(error)")
        }
        let serving = now.stableContainer?.release
        var candidates: [ReleaseReference] = []
        let recorded = (try? store.goodReleases(environment: environment.name, before: wanted == nil ? serving?.run : nil, limit: 50)) ?? []
        candidates = recorded.compactMap { run in
            run.image.map { ReleaseReference(run: run.id!, version: run.version, sha: run.sha, image: $0) }
        }
        var source = "the run store"
        if candidates.isEmpty, let container = now.stableContainer {
            candidates = container.goodHistory
            source = "the labels of container \(container.name)"
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

        var chosen: ReleaseReference?
        do {
            chosen = try await log.step("find image", command: "docker image inspect / docker pull") { say -> ReleaseReference? in
                for candidate in candidates {
                    if await host.imageAvailable(candidate.image) {
                        say("\(candidate.description): \(candidate.image) is available")
                        return candidate
                    }
                    say("\(candidate.description): image \(candidate.image) is gone; trying an older release")
                }
                throw StageLog.Failed(description: "none of the good releases' images can be found any more")
            }
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(error)")
        }
        guard let target = chosen else { return .init(outcome: .rollbackFailed, reason: "no release to roll back to") }
        try? store.setRelease(runID: context.runID, version: target.version, sha: target.sha, image: target.image)

        let name = host.containerName(run: context.runID)
        guard let port = LoopbackPort.free() else { return .init(outcome: .rollbackFailed, reason: "no free port on 127.0.0.1") }
        // The restored release's history: the good ones before it.
        let history = candidates.drop { $0.run != target.run }.dropFirst()
        do {
            try await startContainer(target, name: name, port: port, history: Array(history))
        } catch {
            try? await remove(name)
            return .init(outcome: .rollbackFailed, reason: "\(error)")
        }
        let switched = Moment()
        let outcome = await uncancelled { () -> RunContext.StageOutcome in
            do {
                _ = try await move(
                    to: [Self.backend(name, port: port, weight: 100, release: target)], label: "switch to \(target.version ?? name)")
            } catch {
                try? await remove(name)
                return .init(outcome: .rollbackFailed, reason: "moving traffic to \(target.description) failed: \(error)")
            }
            switched.mark()
            for container in now.containers where container.name != name {
                try? await remove(container.name, step: "remove \(container.release?.version ?? container.name)")
            }
            return .init(outcome: .succeeded)
        }
        guard outcome.outcome == .succeeded else { return outcome }
        let ms = Int(((switched.value ?? .now) - started) / .milliseconds(1))
        try? store.recordRollback(runID: context.runID, restoredRunID: target.run, milliseconds: ms)
        try? store.pin(
            environment: environment.name, runID: context.runID, actor: context.trigger.description,
            reason: "rolled back by hand to \(target.description)", at: Date())
        context.reporter.report(.notice("\(environment.name) serves \(target.description) at \(serviceURL) (rolled back in \(ms) ms)"))
        return .init(outcome: .succeeded)
    }
}
