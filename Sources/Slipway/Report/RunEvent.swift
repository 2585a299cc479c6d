import SlipwayPipeline
public import SlipwayCore
public import Foundation
public import SlipwayProcess
import SlipwayStore

/// Everything a run tells the person (or program) watching it. The engine sends each event both to
/// a ``Reporting`` and, in its own form, to the run store.
public enum RunEvent: Sendable {
    case runStarted(
        runID: Int64, app: String, environment: String, release: Release, trigger: Trigger,
        stages: [(name: String, runs: Bool, note: String?)])
    case stageStarted(name: String, index: Int, count: Int)
    case stageSkipped(name: String, reason: String)
    case stepStarted(stage: String, step: String, command: String, attempt: Int, attempts: Int)
    case output(stage: String, step: String, line: OutputLine)
    case stepRetrying(stage: String, step: String, after: String, delay: Duration, nextAttempt: Int, attempts: Int)
    case stepFinished(stage: String, step: String, outcome: Outcome, detail: String, duration: Duration)
    case stageFinished(name: String, outcome: Outcome, duration: Duration)
    case hookFinished(event: String, outcome: Outcome, detail: String)
    case notice(String)
    /// An approval stage is waiting: what a person deciding needs to see, and how to answer.
    case approvalWaiting(runID: Int64, stage: String, environment: String, needed: Int, deadline: Date, details: [String])
    case runFinished(runID: Int64, outcome: Outcome, exitCode: Int32, reason: String?, duration: Duration)
}

/// Where events are shown: a live TTY view, plain lines, or JSON lines.
public protocol Reporting: Sendable {
    func report(_ event: RunEvent)
}

/// Shows nothing (for tests and embedding).
public struct SilentReporter: Reporting {
    public init() {}
    public func report(_ event: RunEvent) {}
}
