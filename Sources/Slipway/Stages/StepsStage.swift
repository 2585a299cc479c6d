import Foundation
import Logging
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// `run:`, `sh:` and `steps:` stages: commands in order, each a recorded step with its own
/// timeout, retries and output.
struct StepsStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        guard case .steps(let steps) = stage.kind else { return .init(outcome: .failed, reason: "internal: \(stage.name) has no steps") }
        return await context.runSteps(steps, of: stage, slot: slot)
    }
}

extension RunContext {
    /// Runs `steps` as the stage `stage`. The stage's start is written with its first step's, and
    /// its end with its last step's: two transactions per step in all.
    func runSteps(_ steps: [Step], of stage: Stage, slot: StageSlot) async -> StageOutcome {
        var (record, startEvent, started) = openStage(stage, slot: slot)

        var result = StageOutcome(outcome: .succeeded)
        var opening: (StageRecord, EventRecord)? = (record, startEvent)
        for (stepPosition, step) in steps.enumerated() {
            let stepResult = await runStep(
                step, stage: stage, stageRecord: record, opening: opening, position: stepPosition,
                closing: { outcome in
                    let isLast = stepPosition == steps.count - 1 || outcome == .failed || outcome == .timedOut || outcome == .cancelled
                    return isLast
                        ? stageClosing(
                            record, outcome: outcome == .failedAllowed || result.outcome == .failedAllowed ? .succeeded : outcome,
                            started: started) : nil
                })
            opening = nil
            if stepResult.outcome == .failedAllowed {
                result.outcome = .failedAllowed
                continue
            }
            if stepResult.outcome != .succeeded {
                result = stepResult
                break
            }
            result.output = stepResult.output
        }
        if steps.isEmpty {
            record = stageClosing(record, outcome: .succeeded, started: started).0
            try? await store.update(record, event: startEvent)
        }
        reporter.report(
            .stageFinished(
                name: stage.name, outcome: result.outcome == .failedAllowed ? .succeeded : result.outcome,
                duration: ContinuousClock.now - started))
        return result
    }

    /// Runs one step. `opening` is its stage's start, written with this step's (first step only);
    /// `closing` gives its stage's end for the step's outcome when this step ends the stage.
    func runStep(
        _ step: Step, stage: Stage, stageRecord: StageRecord, opening: (StageRecord, EventRecord)?, position: Int,
        closing: (Outcome) -> (StageRecord, EventRecord)?
    ) async -> StageOutcome {
        let stageID = stageRecord.id
        let values = variables(stage: stage.name)
        let stepName = step.name
        let label = stepName == stage.name ? stage.name : "\(stage.name)/\(stepName)"
        let spec: ProcessSpec
        let display: String
        do {
            let env = try childEnvironment(stage: stage.name, extra: step.environment, values: values)
            let workdir = try step.workingDirectory.map { try Variables.expand($0, with: values) }
            switch step.action {
            case .run(let argv):
                let expanded = try argv.map { try Variables.expand($0, with: values) }
                spec = ProcessSpec(
                    executable: expanded[0], arguments: Array(expanded.dropFirst()), environment: env,
                    workingDirectory: workdir, timeout: step.timeout, keepBackground: step.keepBackground)
                display = masker.mask(spec.displayCommand)
            case .sh(let script):
                spec = ProcessSpec(
                    executable: "/bin/sh", arguments: ["-e", "-c", script, stepName], environment: env,
                    workingDirectory: workdir, timeout: step.timeout, keepBackground: step.keepBackground)
                let firstLine = script.split(separator: "\n").first.map(String.init) ?? ""
                display = masker.mask("sh: " + firstLine + (script.contains("\n") ? " …" : ""))
            }
        } catch {
            if let opening { try? await store.update(opening.0, event: opening.1) }
            let reason = "\(label): \(error)"
            if let end = closing(.failed) {
                var closed = end.0
                closed.reason = reason
                try? await store.update(closed, event: end.1)
            }
            return await failBeforeStart(step: step, stage: stage, stageID: stageID, position: position, label: label, reason: reason)
        }

        var record = StepRecord(runID: runID, stageID: stageID, position: position, name: stepName, command: display)
        record.outcome = .running
        record.startedAt = Date()
        do {
            // A step's start and success are in its own row; the event log keeps what needs telling
            // (stage boundaries, retries, failures, hooks) so it stays readable for long pipelines.
            record = try await store.start(record, stage: opening?.0, events: opening.map { [$0.1] } ?? [])
        } catch {
            return StageOutcome(outcome: .failed, reason: "\(error)")
        }

        let capture = Mutex(OutputCapture(limit: plan.pipeline.outputLimit))
        let childPID = Mutex<Int32?>(nil)
        let attempts = step.retries + 1
        let started = ContinuousClock.now
        var termination: ProcessTermination = .cancelled
        var launchError: String?
        var attempt = 0
        while attempt < attempts {
            attempt += 1
            if attempt > 1 { capture.withLock { $0.append("[attempt \(attempt) of \(attempts)]") } }
            reporter.report(.stepStarted(stage: stage.name, step: stepName, command: display, attempt: attempt, attempts: attempts))
            let stageName = stage.name
            let reporter = self.reporter
            let store = self.store
            let stepID = record.id
            do {
                termination = try await engine.launcher.run(
                    spec, masker: masker,
                    onStart: { pid in
                        log.debug("step started", metadata: ["step": "\(label)", "pid": "\(pid)", "command": "\(display)"])
                        childPID.withLock { $0 = pid }
                        // Recorded before any output is read: a deploy killed from now on still knows whom to stop.
                        try? await store.recordChild(pid: pid, stepID: stepID)
                    },
                    onOutput: { line in
                        capture.withLock { $0.append(line.text) }
                        reporter.report(.output(stage: stageName, step: stepName, line: line))
                    })
                launchError = nil
            } catch {
                launchError = masker.mask("\(error)")
                termination = .exited(127)
                capture.withLock { $0.append(launchError!) }
                reporter.report(.output(stage: stageName, step: stepName, line: OutputLine(stream: .stderr, text: launchError!)))
            }
            if termination.succeeded || termination == .cancelled || Task.isCancelled { break }
            guard attempt < attempts else { break }
            let delay = Backoff.delay(base: step.backoff, retry: attempt, jitter: engine.jitter())
            let why = launchError ?? termination.description
            record.attempts = attempt
            record.childPID = childPID.withLock { $0 }
            try? await store.update(
                record,
                event: EventRecord(
                    runID: runID, at: Date(), kind: .stepRetrying, stage: stage.name, step: stepName,
                    message: "attempt \(attempt) of \(attempts) ended with \(why); retrying in \(DurationParser.format(delay))"))
            reporter.report(
                .stepRetrying(
                    stage: stage.name, step: stepName, after: why, delay: delay,
                    nextAttempt: attempt + 1, attempts: attempts))
            do {
                try await engine.clock.sleep(for: delay)
            } catch {
                termination = .cancelled
                break
            }
        }

        let outcome: Outcome
        let detail: String
        switch termination {
        case .exited(0):
            outcome = .succeeded
            detail = attempt > 1 ? "succeeded on attempt \(attempt) of \(attempts)" : "succeeded"
        case .cancelled:
            outcome = .cancelled
            detail = "stopped: the run was cancelled"
        case .timedOut:
            outcome = step.continueOnError ? .failedAllowed : .timedOut
            detail =
                "timed out after \(DurationParser.format(step.timeout ?? .zero))"
                + (attempts > 1 ? " (attempt \(attempt) of \(attempts))" : "")
        default:
            outcome = step.continueOnError ? .failedAllowed : .failed
            detail =
                (launchError ?? "failed with \(termination)") + (attempts > 1 ? " after \(attempt) attempts" : "")
                + (step.continueOnError ? "; continuing (continue_on_error)" : "")
        }
        let duration = ContinuousClock.now - started
        log.debug("step ended", metadata: ["step": "\(label)", "termination": "\(termination)", "attempts": "\(attempt)"])
        let kept = capture.withLock { $0 }
        record.outcome = outcome
        record.childPID = childPID.withLock { $0 }
        record.exitCode = termination.exitCode.map(Int.init)
        record.attempts = attempt
        record.endedAt = Date()
        record.durationMS = Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        record.output = kept.text
        record.outputBytes = kept.totalBytes
        record.outputTruncated = kept.truncated
        let reason = outcome == .succeeded ? nil : "\(label) \(detail)"
        let stepEvent = EventRecord(
            runID: runID, at: Date(), kind: .ended(.step, outcome), stage: stage.name, step: stepName,
            message: "\(label): \(detail)")
        var stageEnd = closing(outcome)
        stageEnd?.0.reason = outcome == .failedAllowed ? nil : reason
        let events = (outcome == .succeeded ? [] : [stepEvent]) + (stageEnd.map { [$0.1] } ?? [])
        try? await store.finish(record, stage: stageEnd?.0, events: events)
        reporter.report(.stepFinished(stage: stage.name, step: stepName, outcome: outcome, detail: detail, duration: duration))
        return StageOutcome(outcome: outcome, reason: reason, output: kept.text)
    }

    private func failBeforeStart(step: Step, stage: Stage, stageID: Int64, position: Int, label: String, reason: String) async
        -> StageOutcome
    {
        var record = StepRecord(runID: runID, stageID: stageID, position: position, name: step.name, command: "")
        record.outcome = .failed
        record.startedAt = Date()
        record.endedAt = Date()
        record.output = reason + "\n"
        _ = try? await store.insert(
            record,
            event: EventRecord(
                runID: runID, at: Date(), kind: .ended(.step, .failed), stage: stage.name,
                step: step.name, message: reason))
        reporter.report(.stepFinished(stage: stage.name, step: step.name, outcome: .failed, detail: reason, duration: .zero))
        return StageOutcome(outcome: .failed, reason: reason)
    }
}
