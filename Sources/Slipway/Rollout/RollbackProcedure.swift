import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayStore

/// The automatic rollback: a gate failed after the new release took traffic. All traffic goes
/// back to what served before in one move, the same gates verify it, the failed release is
/// removed and the environment pinned.
struct RollbackProcedure: Sendable {
    let rollout: Rollout

    func rollBack(from candidate: TargetInstance, to stable: TargetInstance?, reason: String, firstFailure: Moment) async
        -> RunContext.StageOutcome
    {
        // However the run is being stopped, the rollback itself must finish.
        await uncancelled { await rollBackUncancelled(from: candidate, to: stable, reason: reason, firstFailure: firstFailure) }
    }

    private func rollBackUncancelled(from candidate: TargetInstance, to stable: TargetInstance?, reason: String, firstFailure: Moment)
        async -> RunContext.StageOutcome
    {
        let context = rollout.context
        let environment = rollout.environment
        let decided = firstFailure.value ?? .now
        context.reporter.report(.notice("rolling back: \(reason)"))
        // What going back undoes: this run's own changelog, seen from the other side.
        if let changelog = context.changelog, !changelog.commits.isEmpty { context.reporter.report(.notice(changelog.rollbackSummary)) }
        guard let stable else {
            _ = try? await rollout.move(to: [], label: "stop serving \(candidate.name)")
            await rollout.retireOrWarn(candidate)
            // As before the run: nothing serves.
            return .init(outcome: .failed, reason: "\(reason); nothing served \(environment.name) before, so nothing was rolled back to")
        }
        let version = stable.label
        do {
            try await rollout.move(to: [TrafficShare(stable, weight: 100)], label: "roll back to \(version)")
        } catch {
            return .init(outcome: .rollbackFailed, reason: "\(reason); then moving traffic back to \(version) failed: \(error)")
        }
        let ms = Int((ContinuousClock.now - decided) / .milliseconds(1))
        let store = rollout.store
        try? await store.recordRollback(runID: context.runID, restoredRunID: stable.release?.run, milliseconds: ms)
        let said = "\(version) serves all traffic again, \(ms) ms after the first failed measurement"
        try? await store.append(
            EventRecord(runID: context.runID, at: Date(), kind: .rollback, stage: rollout.log.stage.name, message: said))
        context.reporter.report(.notice(said))
        let verification = await rollout.gatesVerdict(
            environment.gates, targets: rollout.targets(stable, release: stable.release), label: " (verify \(version))",
            firstFailure: Moment())
        await rollout.retireOrWarn(candidate)
        let pinReason = "rolled back from \(context.release.description) to \(version): \(reason)"
        try? await store.pin(
            environment: environment.name, runID: context.runID, actor: context.trigger.description, reason: pinReason, at: Date())
        if let verification {
            return .init(
                outcome: .rollbackFailed, reason: "\(reason); rolled back to \(version), which then failed its gates too: \(verification)")
        }
        return .init(outcome: .rolledBack, reason: "\(reason); rolled back to \(version) in \(ms) ms")
    }
}
