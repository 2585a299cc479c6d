import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// A set of names shared by the tasks of one run.
final class NameSet: Sendable {
    private let names = Mutex(Set<String>())
    /// Adds `name`; false if it was there already.
    func insert(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
}

/// The state of one run while its stages execute.
struct RunContext: Sendable {
    let engine: Engine
    let plan: Plan
    let runID: Int64
    /// The run's stage records, by position in the pipeline.
    let stages: [StageRecord]
    let release: Release
    let masker: SecretMasker
    let trigger: Trigger
    let changelog: Changelog?
    /// Where this run's events go: the engine's reporter, and the webhooks when there are any.
    let reporter: any Reporting
    /// What other shells ask of the run (abort, pause, resume).
    var control = RunControl()
    /// The instances each Prometheus of the run's gates has been seen scraping.
    var scraped = NameSet()

    var store: any DeployStore { engine.store }

    /// The values `${NAME}` can take in this run, built-ins first.
    func variables(stage: String) -> [String: String] {
        var values: [String: String] = [:]
        for (name, value) in plan.pipeline.variables { values[name] = value }
        for (name, value) in plan.environment.variables { values[name] = value }
        let builtins: [String: String?] = [
            "VERSION": release.version ?? "", "SHA": release.sha ?? "", "SHORT_SHA": release.shortSHA ?? "",
            "ENV": plan.environment.name, "RUN_ID": String(runID), "APP": plan.pipeline.app,
            "IMAGE": plan.pipeline.image ?? "", "STAGE": stage,
        ]
        for (name, value) in builtins {
            values[name] = value ?? ""
            values["DEPLOY_" + name] = value ?? ""
        }
        for name in plan.pipeline.secrets { values[name] = engine.environment[name] }
        return values
    }

    /// The environment a step or hook sees: ours, then the pipeline's variables, then DEPLOY_*.
    func childEnvironment(stage: String, extra: [(name: String, value: String)] = [], values: [String: String]) throws -> [String: String] {
        var env = engine.environment
        for (name, value) in plan.pipeline.variables { env[name] = value }
        for (name, value) in plan.environment.variables { env[name] = value }
        for (name, value) in values where name.hasPrefix("DEPLOY_") { env[name] = value }
        for (name, value) in extra { env[name] = try Variables.expand(value, with: values) }
        return env
    }

    func heartbeat() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: engine.heartbeatInterval)
                try await store.heartbeat(runID: runID, at: Date())
                try await store.heartbeatLease(environment: plan.environment.name, pid: engine.pid, host: engine.host, now: Date())
            } catch {
                return
            }
        }
    }

    func runStages() async -> Engine.Finish {
        let preHook: HookEvent = plan.isRollback ? .preRollback : .preDeploy
        if let failure = await runHook(preHook), failure {
            await skipRemaining(from: 0, reason: "the \(preHook.rawValue) hook failed")
            return Engine.Finish(outcome: .failed, reason: "the \(preHook.rawValue) hook failed; nothing ran")
        }
        let running = plan.entries.filter(\.runs).count
        var index = 0
        var position = 0
        for entry in plan.entries {
            defer { position += 1 }
            let stage = entry.stage
            guard entry.runs else {
                reporter.report(.stageSkipped(name: stage.name, reason: entry.skipReason ?? ""))
                continue
            }
            index += 1
            if Task.isCancelled {
                await skipRemaining(from: position, reason: "the run was cancelled")
                return Engine.Finish(outcome: .cancelled, reason: "before stage '\(stage.name)'")
            }
            let outcome = await runStage(stage, slot: StageSlot(position: position, index: index, count: running))
            switch outcome.outcome {
            case .succeeded, .failedAllowed:
                continue
            default:
                await skipRemaining(from: position + 1, reason: "stage '\(stage.name)' \(outcome.outcome.rawValue)")
                if outcome.outcome == .rolledBack { await runHook(.postRollback, outcome: .rolledBack, reason: outcome.reason) }
                return Engine.Finish(
                    outcome: outcome.outcome == .timedOut ? .failed : outcome.outcome, reason: outcome.reason,
                    environmentChanged: outcome.environmentChanged)
            }
        }
        return Engine.Finish(outcome: .succeeded, reason: nil)
    }

    /// Records the stages after a failure as skipped, saying why.
    func skipRemaining(from position: Int, reason: String) async {
        for (offset, entry) in plan.entries.enumerated() where offset >= position && entry.runs {
            var record = stages[offset]
            record.outcome = .skipped
            record.reason = reason
            try? await store.update(record)
            reporter.report(.stageSkipped(name: entry.stage.name, reason: reason))
        }
    }

    struct StageOutcome {
        var outcome: Outcome
        var reason: String?
        /// The output the stage's last successful step kept (a push reads its digest there).
        var output: String? = nil
        /// The stage failed after it changed an environment (a failed rollback rehearsal leaves the
        /// new release serving): not "failed before changing an environment".
        var environmentChanged = false
    }

    /// A stage's record as it ends, and the event saying so.
    func stageClosing(_ stage: StageRecord, outcome: Outcome, started: ContinuousClock.Instant, reason: String? = nil) -> (
        StageRecord, EventRecord
    ) {
        var record = stage
        record.outcome = outcome
        record.endedAt = Date()
        record.reason = reason
        let duration = ContinuousClock.now - started
        return (
            record,
            EventRecord(
                runID: runID, at: Date(), kind: .ended(.stage, outcome), stage: stage.name,
                message: "stage \(stage.name) \(outcome.rawValue) in \(DurationParser.format(duration))")
        )
    }

}

extension StageRecord {
    static func skipped(runID: Int64, position: Int, stage: Stage, reason: String?) -> StageRecord {
        var record = StageRecord(runID: runID, position: position, name: stage.name, kind: stage.kindName)
        record.outcome = .skipped
        record.reason = reason
        return record
    }
}

extension RunContext {
    /// The image this run deploys to `environment`: pushed by this run, else the one that passed
    /// the environment it is promoted from, else any earlier push of this commit or version.
    func releaseImage(for environment: EnvironmentSpec) async throws -> String? {
        if let run = try await store.run(id: runID), let image = run.image { return image }
        if let from = environment.promoteFrom, let sha = release.sha,
            let image = try await store.lastSucceeded(environment: from, sha: sha)?.image
        {
            return image
        }
        return try await store.image(sha: release.sha, version: release.version)?.image
    }
}
