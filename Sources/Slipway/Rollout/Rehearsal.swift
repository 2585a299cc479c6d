import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayStore

/// `rehearse_rollback: true`: once the new release has passed its gates, traffic goes back to the
/// release before it, that release's gates run (with its own `${VERSION}`), and traffic comes
/// forward again. The time back is recorded, and a failure says which way it failed.
struct Rehearsal: Sendable {
    let rollout: Rollout

    enum Failure: Sendable {
        /// The previous release failed its gates once traffic was back on it.
        case previous(String)
        /// Going forward again failed.
        case forward(String)
    }

    /// Rolls back to the stable release and forward again, timing the rollback.
    func run(candidate: TargetInstance, stable: TargetInstance?) async -> Failure? {
        let store = rollout.store
        let runID = rollout.context.runID
        guard let stable else {
            try? await store.recordRehearsal(runID: runID, outcome: .skipped, milliseconds: nil, at: Date())
            rollout.context.reporter.report(.notice("rollback rehearsal skipped: nothing ran here before this release"))
            return nil
        }
        let gates = rollout.environment.gates
        let firstFailure = Moment()
        var took: Duration?
        func failed(_ failure: Failure) async -> Failure {
            try? await store.recordRehearsal(
                runID: runID, outcome: .failed, milliseconds: took.map { Int($0 / .milliseconds(1)) }, at: Date())
            return failure
        }
        let forward = [TrafficShare(candidate, weight: 100)]
        do {
            took = try await rollout.move(to: [TrafficShare(stable, weight: 100)], label: "rehearsal: back to \(stable.label)")
            if let failure = await rollout.gatesVerdict(
                gates, targets: rollout.targets(stable, release: stable.release), label: " (rehearsal, previous)",
                firstFailure: firstFailure)
            {
                _ = try? await rollout.move(to: forward, label: "rehearsal: forward again")
                return await failed(.previous("rollback rehearsal failed: the previous release failed its gates: \(failure)"))
            }
        } catch {
            _ = try? await rollout.move(to: forward, label: "rehearsal: forward again")
            return await failed(.previous("rollback rehearsal failed: \(error)"))
        }
        do {
            try await rollout.move(to: forward, label: "rehearsal: forward to \(candidate.label)")
        } catch {
            return await failed(.forward("rollback rehearsal failed going forward again: \(error)"))
        }
        if let failure = await rollout.gatesVerdict(
            gates, targets: rollout.targets(candidate), label: " (rehearsal, forward)", firstFailure: firstFailure)
        {
            return await failed(.forward("rollback rehearsal failed going forward again: \(failure)"))
        }
        let ms = Int((took ?? .zero) / .milliseconds(1))
        try? await store.recordRehearsal(runID: runID, outcome: .passed, milliseconds: ms, at: Date())
        rollout.context.reporter.report(.notice("rollback rehearsal passed: traffic was back on the previous release in \(ms) ms"))
        return nil
    }
}
