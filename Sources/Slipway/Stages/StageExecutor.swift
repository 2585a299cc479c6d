import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayStore

/// Where a stage sits in its run: its position in the pipeline (its record), and its number among
/// the stages that run (`stage 2/5`).
struct StageSlot: Sendable {
    var position: Int
    var index: Int
    var count: Int
}

/// Runs one kind of stage. The engine knows stages only through this: a new stage kind is a type
/// in this folder and one case in ``Stage/Kind/executor``.
///
/// An executor records what it does through the run context: its steps (``RunContext/runSteps``),
/// or its own recorded steps and the stage's start and end (``RunContext/recordedStage``).
protocol StageExecutor: Sendable {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome
}

extension Stage.Kind {
    /// The registration: which executor runs each kind of stage.
    var executor: any StageExecutor {
        switch self {
        case .steps: StepsStage()
        case .build: BuildStage()
        case .push: PushStage()
        case .approval: ApprovalStage()
        case .checklist: ChecklistStage()
        case .deploy, .rollback: DeployStage()
        }
    }
}

extension RunContext {
    /// A stage's record as it starts, the event saying so (reported now, written by the caller
    /// with its first write), and when it started.
    func openStage(_ stage: Stage, slot: StageSlot) -> (StageRecord, EventRecord, ContinuousClock.Instant) {
        let started = ContinuousClock.now
        var record = stages[slot.position]
        record.outcome = .running
        record.startedAt = Date()
        let startEvent = EventRecord(
            runID: runID, at: Date(), kind: .stageStarted, stage: stage.name,
            message: "stage \(stage.name) started (\(slot.index)/\(slot.count))")
        reporter.report(.stageStarted(name: stage.name, index: slot.index, count: slot.count))
        return (record, startEvent, started)
    }

    func runStage(_ stage: Stage, slot: StageSlot) async -> StageOutcome {
        await stage.kind.executor.run(stage, in: self, slot: slot)
    }

    /// Records the stage's start, runs `body` (whose own steps are recorded as it goes) and records
    /// how the stage ended.
    func recordedStage(_ stage: Stage, slot: StageSlot, _ body: (StageRecord) async -> StageOutcome) async -> StageOutcome {
        let (record, startEvent, started) = openStage(stage, slot: slot)
        do { try await store.update(record, event: startEvent) } catch { return StageOutcome(outcome: .failed, reason: "\(error)") }
        let result = await body(record)
        let (closed, event) = stageClosing(record, outcome: result.outcome, started: started, reason: result.reason)
        try? await store.update(closed, event: event)
        reporter.report(.stageFinished(name: stage.name, outcome: closed.outcome, duration: ContinuousClock.now - started))
        return result
    }
}

extension RunContext {
    /// A stage that waits for people (approvals, sign-offs): `watch` polls the store until it
    /// decides, while `answer`, when there is a terminal, asks the person running the deploy. The
    /// first outcome wins; the other task is cancelled.
    static func firstDecision(
        answer: (@Sendable () async -> Void)?, watch: @escaping @Sendable () async -> StageOutcome, cancelled: String
    ) async -> StageOutcome {
        await withTaskGroup(of: StageOutcome?.self) { group in
            if let answer {
                group.addTask {
                    await answer()
                    return nil
                }
            }
            group.addTask { await watch() }
            var outcome: StageOutcome?
            while let next = await group.next() {
                if let next {
                    outcome = next
                    group.cancelAll()
                }
            }
            return outcome ?? StageOutcome(outcome: .cancelled, reason: cancelled)
        }
    }
}
