public import Foundation
public import SlipwayCore
import SlipwayPipeline
public import SlipwayProcess
import SlipwayStore

/// Everything a run tells the person (or program) watching it: the terminal and JSON reporters
/// show these, and the webhooks are told the run-level ones (``WebhookReporter``). The engine
/// records each in its own form in the run store, under the same ``EventName``.
public enum RunEvent: Sendable {
    /// `changes` sums up the changelog (`12 commits since 1.3.0: 3 features, …`), when there is one.
    case runStarted(
        runID: Int64, app: String, environment: String, release: Release, trigger: Trigger,
        stages: [(name: String, runs: Bool, note: String?)], changes: String?)
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

extension RunEvent: Encodable {
    /// The event's name, spelled as everywhere else (``EventName``).
    public var name: EventName {
        switch self {
        case .runStarted: .runStarted
        case .stageStarted: .stageStarted
        case .stageSkipped: .stageSkipped
        case .stepStarted: .stepStarted
        case .output: .output
        case .stepRetrying: .stepRetrying
        case .stepFinished: .stepFinished
        case .stageFinished: .stageFinished
        case .hookFinished: .hookFinished
        case .notice: .notice
        case .approvalWaiting: .approvalWaiting
        case .runFinished: .runFinished
        }
    }

    enum Key: String, CodingKey {
        case event, run, app, environment, version, sha, ci, stages, stage, step, index, count, reason, command, attempt, attempts
        case stream, line, outcome, detail, hook, needed, deadline, details, message, changes
        case triggeredBy = "triggered_by", jobURL = "job_url", delaySeconds = "delay_seconds", nextAttempt = "next_attempt"
        case durationSeconds = "duration_seconds", exitCode = "exit_code"
    }

    struct StageLine: Encodable {
        var name: String
        var runs: Bool
        var skipReason: String?
        enum CodingKeys: String, CodingKey {
            case name, runs
            case skipReason = "skip_reason"
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(runs, forKey: .runs)
            try container.encode(skipReason, forKey: .skipReason)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The JSON line `--json` prints (without its time): `{"event":"stage.started","stage":…}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(name, forKey: .event)
        switch self {
        case .runStarted(let runID, let app, let environment, let release, let trigger, let stages, let changes):
            try c.encode(runID, forKey: .run)
            try c.encode(changes, forKey: .changes)
            try c.encode(app, forKey: .app)
            try c.encode(environment, forKey: .environment)
            try c.encode(release.version, forKey: .version)
            try c.encode(release.sha, forKey: .sha)
            try c.encode(trigger.user, forKey: .triggeredBy)
            try c.encode(trigger.ci, forKey: .ci)
            try c.encode(trigger.jobURL, forKey: .jobURL)
            try c.encode(stages.map { StageLine(name: $0.name, runs: $0.runs, skipReason: $0.note) }, forKey: .stages)
        case .stageStarted(let name, let index, let count):
            try c.encode(name, forKey: .stage)
            try c.encode(index, forKey: .index)
            try c.encode(count, forKey: .count)
        case .stageSkipped(let name, let reason):
            try c.encode(name, forKey: .stage)
            try c.encode(reason, forKey: .reason)
        case .stepStarted(let stage, let step, let command, let attempt, let attempts):
            try c.encode(stage, forKey: .stage)
            try c.encode(step, forKey: .step)
            try c.encode(command, forKey: .command)
            try c.encode(attempt, forKey: .attempt)
            try c.encode(attempts, forKey: .attempts)
        case .output(let stage, let step, let line):
            try c.encode(stage, forKey: .stage)
            try c.encode(step, forKey: .step)
            try c.encode(line.stream.rawValue, forKey: .stream)
            try c.encode(line.text, forKey: .line)
        case .stepRetrying(let stage, let step, let after, let delay, let next, let attempts):
            try c.encode(stage, forKey: .stage)
            try c.encode(step, forKey: .step)
            try c.encode(after, forKey: .reason)
            try c.encode(Self.seconds(delay), forKey: .delaySeconds)
            try c.encode(next, forKey: .nextAttempt)
            try c.encode(attempts, forKey: .attempts)
        case .stepFinished(let stage, let step, let outcome, let detail, let duration):
            try c.encode(stage, forKey: .stage)
            try c.encode(step, forKey: .step)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(detail, forKey: .detail)
            try c.encode(Self.seconds(duration), forKey: .durationSeconds)
        case .stageFinished(let name, let outcome, let duration):
            try c.encode(name, forKey: .stage)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(Self.seconds(duration), forKey: .durationSeconds)
        case .hookFinished(let event, let outcome, let detail):
            try c.encode(event, forKey: .hook)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(detail, forKey: .detail)
        case .approvalWaiting(let runID, let stage, let environment, let needed, let deadline, let details):
            try c.encode(runID, forKey: .run)
            try c.encode(stage, forKey: .stage)
            try c.encode(environment, forKey: .environment)
            try c.encode(needed, forKey: .needed)
            try c.encode(deadline.formatted(.iso8601), forKey: .deadline)
            try c.encode(details, forKey: .details)
        case .notice(let text):
            try c.encode(text, forKey: .message)
        case .runFinished(let runID, let outcome, let code, let reason, let duration):
            try c.encode(runID, forKey: .run)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(code, forKey: .exitCode)
            try c.encode(reason, forKey: .reason)
            try c.encode(Self.seconds(duration), forKey: .durationSeconds)
        }
    }
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
