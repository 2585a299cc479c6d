import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayStore

/// `deploy:` stages, and the rollback stage of `deploy rollback`: the environment's target, built
/// through the registry (``TargetSpec/makeTarget(_:)``), driven by a ``Rollout``.
struct DeployStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        await context.recordedStage(stage, slot: slot) { record in
            let environment: String
            var rollbackTo: String?
            var isRollback = false
            switch stage.kind {
            case .deploy(let name):
                environment = name
            case .rollback(let name, let to):
                environment = name
                rollbackTo = to
                isRollback = true
            default:
                return .init(outcome: .failed, reason: "internal: \(stage.name) deploys nothing")
            }
            guard let spec = context.plan.pipeline.environment(named: environment)?.target else {
                if isRollback { return .init(outcome: .failed, reason: "\(environment) has no target") }
                // An environment without a target has nothing to change.
                context.reporter.report(.notice("environment \(environment) has no target: nothing to deploy"))
                try? await context.store.append(
                    EventRecord(
                        runID: context.runID, at: Date(), kind: .deploySkipped, stage: stage.name,
                        message: "environment \(environment) has no target: nothing deployed"))
                return .init(outcome: .succeeded)
            }
            let target: any DeployTarget
            do {
                target = try context.engine.makeTarget(spec, context.targetSetting(environment: environment))
            } catch {
                return .init(outcome: .failed, reason: "\(error)")
            }
            let rollout = Rollout(context: context, target: target, log: StepRecorder(context: context, stage: stage, stageID: record.id))
            return isRollback ? await rollout.emergencyRollback(to: rollbackTo) : await rollout.deploy()
        }
    }
}

extension RunContext {
    func targetSetting(environment: String) -> TargetSetting {
        TargetSetting(
            pipeline: plan.pipeline, environment: environment, stateDirectory: engine.stateDirectory,
            processEnvironment: engine.environment, launcher: engine.launcher)
    }
}
