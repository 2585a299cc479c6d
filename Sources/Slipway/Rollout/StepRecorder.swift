import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// Records what a deploy stage does (start a container, check a gate, move traffic) as steps of
/// the stage: each is streamed to the reporter and kept in the run record like a command's output.
final class StepRecorder: Sendable {
    let context: RunContext
    let stage: Stage
    let stageID: Int64
    private let position = Mutex(0)

    init(context: RunContext, stage: Stage, stageID: Int64) {
        self.context = context
        self.stage = stage
        self.stageID = stageID
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` as a recorded step called `name`; what it says goes to the step's output.
    /// Errors end the step failed and are rethrown.
    @discardableResult
    func step<T: Sendable>(_ name: String, command: String, _ body: (_ say: @escaping @Sendable (String) -> Void) async throws -> T)
        async throws -> T
    {
        let context = self.context
        let index = position.withLock { value in
            defer { value += 1 }
            return value
        }
        var record = StepRecord(runID: context.runID, stageID: stageID, position: index, name: name, command: context.masker.mask(command))
        record.outcome = .running
        record.startedAt = Date()
        record = try await context.store.start(record, stage: nil, events: [])
        context.reporter.report(.stepStarted(stage: stage.name, step: name, command: record.command, attempt: 1, attempts: 1))
        let capture = Mutex(OutputCapture(limit: context.plan.pipeline.outputLimit))
        let stageName = stage.name
        let masker = context.masker
        let reporter = context.reporter
        let say: @Sendable (String) -> Void = { text in
            let masked = masker.mask(text)
            capture.withLock { $0.append(masked) }
            reporter.report(.output(stage: stageName, step: name, line: OutputLine(stream: .stdout, text: masked)))
        }
        let started = ContinuousClock.now
        func close(_ outcome: Outcome, _ detail: String) async {
            let elapsed = ContinuousClock.now - started
            record.outcome = outcome
            record.endedAt = Date()
            record.durationMS = Int(elapsed / .milliseconds(1))
            record.exitCode = outcome == .succeeded ? 0 : 1
            let kept = capture.withLock { $0 }
            record.output = kept.text
            record.outputBytes = kept.totalBytes
            record.outputTruncated = kept.truncated
            let event =
                outcome == .succeeded
                ? []
                : [
                    EventRecord(
                        runID: context.runID, at: Date(), kind: .ended(.step, outcome), stage: stageName, step: name, message: detail)
                ]
            try? await context.store.finish(record, stage: nil, events: event)
            reporter.report(.stepFinished(stage: stageName, step: name, outcome: outcome, detail: detail, duration: elapsed))
        }
        do {
            let value = try await body(say)
            await close(.succeeded, "done")
            return value
        } catch {
            let detail = masker.mask("\(error)")
            say(detail)
            await close(Task.isCancelled ? .cancelled : .failed, detail)
            throw error
        }
    }
}
