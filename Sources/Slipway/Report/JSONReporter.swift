import SlipwayPipeline
import SlipwayCore
import Foundation
import SlipwayProcess
import SlipwayStore

/// One JSON object per line for machines: `{"event":"stage.started","time":"…",…}`.
public struct JSONReporter: Reporting {
    let console: Console

    public init(console: Console = .standardOutput) { self.console = console }

    public func report(_ event: RunEvent) {
        var object = Self.fields(event)
        object["time"] = Date().formatted(.iso8601)
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return
        }
        console.write(String(decoding: data, as: UTF8.self) + "\n")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func fields(_ event: RunEvent) -> [String: Any] {
        switch event {
        case .runStarted(let runID, let app, let environment, let release, let trigger, let stages):
            return [
                "event": "run.started", "run": runID, "app": app, "environment": environment,
                "version": release.version as Any, "sha": release.sha as Any, "triggered_by": trigger.user,
                "ci": trigger.ci as Any, "job_url": trigger.jobURL as Any,
                "stages": stages.map { ["name": $0.name, "runs": $0.runs, "skip_reason": $0.note as Any] },
            ]
        case .stageStarted(let name, let index, let count):
            return ["event": "stage.started", "stage": name, "index": index, "count": count]
        case .stageSkipped(let name, let reason):
            return ["event": "stage.skipped", "stage": name, "reason": reason]
        case .stepStarted(let stage, let step, let command, let attempt, let attempts):
            return ["event": "step.started", "stage": stage, "step": step, "command": command, "attempt": attempt, "attempts": attempts]
        case .output(let stage, let step, let line):
            return ["event": "output", "stage": stage, "step": step, "stream": line.stream.rawValue, "line": line.text]
        case .stepRetrying(let stage, let step, let after, let delay, let next, let attempts):
            return [
                "event": "step.retrying", "stage": stage, "step": step, "reason": after, "delay_seconds": seconds(delay),
                "next_attempt": next, "attempts": attempts,
            ]
        case .stepFinished(let stage, let step, let outcome, let detail, let duration):
            return [
                "event": "step.finished", "stage": stage, "step": step, "outcome": outcome.rawValue, "detail": detail,
                "duration_seconds": seconds(duration),
            ]
        case .stageFinished(let name, let outcome, let duration):
            return ["event": "stage.finished", "stage": name, "outcome": outcome.rawValue, "duration_seconds": seconds(duration)]
        case .hookFinished(let event, let outcome, let detail):
            return ["event": "hook.finished", "hook": event, "outcome": outcome.rawValue, "detail": detail]
        case .approvalWaiting(let runID, let stage, let environment, let needed, let deadline, let details):
            return [
                "event": "approval.waiting", "run": runID, "stage": stage, "environment": environment, "needed": needed,
                "deadline": deadline.formatted(.iso8601), "details": details,
            ]
        case .notice(let text):
            return ["event": "notice", "message": text]
        case .runFinished(let runID, let outcome, let code, let reason, let duration):
            return [
                "event": "run.finished", "run": runID, "outcome": outcome.rawValue, "exit_code": code,
                "reason": reason as Any, "duration_seconds": seconds(duration),
            ]
        }
    }
}
