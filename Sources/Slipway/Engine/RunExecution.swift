import Foundation
import Logging
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

extension Engine {
    /// Runs the plan with the pipeline's webhooks told as it goes. Deliveries run beside the run;
    /// once it ends they get up to 15 seconds more, so that a dead webhook never holds a deploy.
    func execute(
        _ plan: Plan, release: Release, trigger: Trigger, masker: SecretMasker, interrupts: AsyncStream<Int32>,
        changelog: Changelog?, dirty: Bool, overrides: [String], image: String? = nil
    ) async throws -> RunResult {
        let notifier = Notifier(pipeline: plan.pipeline, environment: environment, store: store, clock: clock, masker: masker)
        let (notifications, continuation) = AsyncStream.makeStream(of: Notification.self)
        let notify: @Sendable (Notification) -> Void = { continuation.yield($0) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await notifier.deliver(notifications) }
            let result: RunResult
            do {
                result = try await executeRun(
                    plan, release: release, trigger: trigger, masker: masker, interrupts: interrupts,
                    changelog: changelog, dirty: dirty, overrides: overrides, image: image,
                    notify: notifier.isEmpty ? nil : notify)
            } catch {
                continuation.finish()
                group.cancelAll()
                throw error
            }
            continuation.finish()
            group.addTask { try? await Task.sleep(for: .seconds(15)) }
            _ = try await group.next()
            group.cancelAll()
            return result
        }
    }

    func executeRun(
        _ plan: Plan, release: Release, trigger: Trigger, masker: SecretMasker, interrupts: AsyncStream<Int32>,
        changelog: Changelog?, dirty: Bool, overrides: [String], image: String?, notify: (@Sendable (Notification) -> Void)?
    ) async throws -> RunResult {
        let started = ContinuousClock.now
        var record = RunRecord(
            pipeline: plan.pipeline.file, app: plan.pipeline.app, environment: plan.environment.name,
            trigger: trigger, sha: release.sha, version: release.version, startedAt: Date(), ownerPID: pid,
            ownerHost: host)
        record.dirty = dirty
        record.overrides = overrides
        record.image = image
        record.kind = plan.isRollback ? "rollback" : "deploy"
        let run = try await store.insert(record)
        let runID = run.id
        try await store.attachLease(environment: plan.environment.name, pid: pid, host: host, runID: runID)
        try await store.audit(
            actor: trigger.description, action: "run.started", environment: plan.environment.name, runID: runID,
            detail: "release \(release.description)" + (overrides.isEmpty ? "" : "; overrides: " + overrides.joined(separator: "; ")))
        for override in overrides {
            try await store.append(
                EventRecord(runID: runID, at: Date(), kind: .runOverride, message: "\(trigger.user) overrode: \(override)"))
        }
        if let changelog {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try await store.saveChangelog(
                runID: runID, baseKind: changelog.base.kind.rawValue, baseSHA: changelog.base.sha, commitCount: changelog.commits.count,
                markdown: changelog.markdown, json: String(decoding: try encoder.encode(changelog), as: UTF8.self))
            try await store.append(EventRecord(runID: runID, at: Date(), kind: .runChangelog, message: changelog.summary))
        }
        log.debug("run \(runID) started", metadata: ["environment": "\(plan.environment.name)", "pid": "\(pid)", "host": "\(host)"])
        let stages = try await store.insert(
            plan.entries.enumerated().map { position, entry in
                entry.runs
                    ? StageRecord(runID: runID, position: position, name: entry.stage.name, kind: entry.stage.kindName)
                    : StageRecord.skipped(runID: runID, position: position, stage: entry.stage, reason: entry.skipReason)
            })
        // Everything the run reports goes to the reporter and, for the run-level events, to the webhooks.
        let reporter: any Reporting =
            notify.map { FanOutReporter([self.reporter, WebhookReporter(isRollback: plan.isRollback, send: $0)]) }
            ?? self.reporter
        reporter.report(
            .runStarted(
                runID: runID, app: plan.pipeline.app, environment: plan.environment.name, release: release,
                trigger: trigger, stages: plan.entries.map { ($0.stage.name, $0.runs, $0.skipReason) }, changes: changelog?.summary))
        if let changelog { reporter.report(.notice(changelog.summary)) }

        let context = RunContext(
            engine: self, plan: plan, runID: runID, stages: stages, release: release, masker: masker,
            trigger: trigger, changelog: changelog, reporter: reporter)
        enum Child: Sendable {
            case stages(Finish)
            case interrupted(Int32)
            case aborted(RunControlRecord)
            case idle
        }
        let (finish, signal, abort) = await withTaskGroup(of: Child.self) { group -> (Finish, Int32?, RunControlRecord?) in
            group.addTask { .stages(await context.runStages()) }
            group.addTask {
                for await number in interrupts { return .interrupted(number) }
                return .idle
            }
            group.addTask {
                await context.heartbeat()
                return .idle
            }
            group.addTask {
                let said = context.reporter
                return await context.control.watch(store: context.store, runID: runID) { said.report(.notice($0)) }
                    .map(Child.aborted) ?? .idle
            }
            var finish: Finish?
            var signal: Int32?
            var abort: RunControlRecord?
            while finish == nil, let next = await group.next() {
                switch next {
                case .stages(let result):
                    finish = result
                case .interrupted(let number):
                    // Cancel the stages (tearing down the running step's process group) and keep
                    // waiting for them to record how far they got.
                    signal = number
                    group.cancelAll()
                case .aborted(let record):
                    // No rollout is there to roll back: the run stops as it would on Ctrl-C.
                    abort = record
                    group.cancelAll()
                case .idle:
                    break
                }
            }
            group.cancelAll()
            return (finish ?? Finish(outcome: .cancelled, reason: nil), signal, abort)
        }

        var outcome = finish.outcome
        var reason = finish.reason
        if let signal, outcome != .succeeded {
            outcome = .cancelled
            reason = "cancelled by \(Self.signalName(signal))" + (finish.reason.map { " (\($0))" } ?? "")
        } else if let abort, outcome != .succeeded {
            outcome = .cancelled
            reason = abort.said + (finish.reason.map { " (\($0))" } ?? "")
        }
        // Hooks after the stages; they run whatever happened to the stages' task.
        if outcome == .succeeded {
            await context.runHook(plan.isRollback ? .postRollback : .postDeploy)
        } else {
            await context.runHook(.onFailure, outcome: outcome, reason: reason)
        }
        let status: ExitStatus =
            switch outcome {
            case .succeeded: .success
            case .cancelled: .cancelled
            case .rolledBack: .rolledBack
            case .rollbackFailed: .rollbackFailed
            default: finish.environmentChanged ? .failedAfterChange : .failed
            }

        try await store.finish(runID: runID, outcome: outcome, exitCode: Int(status.rawValue), reason: reason, at: Date())
        try await store.audit(
            actor: trigger.description, action: "run.finished", environment: plan.environment.name, runID: runID,
            detail: outcome.rawValue + (reason.map { ": \($0)" } ?? ""))
        reporter.report(
            .runFinished(
                runID: runID, outcome: outcome, exitCode: status.rawValue, reason: reason,
                duration: ContinuousClock.now - started))
        return RunResult(runID: runID, outcome: outcome, exitStatus: status, reason: reason)
    }

    static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT (Ctrl-C)"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }

    struct Finish: Sendable {
        var outcome: Outcome
        var reason: String?
        var environmentChanged = false
    }
}
