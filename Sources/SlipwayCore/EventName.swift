/// The one spelling of every event name Slipway uses: in the run record's event log, in the JSON
/// lines of `--json`, and (for the run-level ones) in webhooks. Names are `subject.what`.
public struct EventName: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let runStarted = Self(rawValue: "run.started")
    public static let runFinished = Self(rawValue: "run.finished")
    public static let runChangelog = Self(rawValue: "run.changelog")
    public static let runOverride = Self(rawValue: "run.override")
    public static let stageStarted = Self(rawValue: "stage.started")
    public static let stageSkipped = Self(rawValue: "stage.skipped")
    public static let stageFinished = Self(rawValue: "stage.finished")
    public static let stepStarted = Self(rawValue: "step.started")
    public static let stepRetrying = Self(rawValue: "step.retrying")
    public static let stepFinished = Self(rawValue: "step.finished")
    public static let stepOrphanStopped = Self(rawValue: "step.orphan-stopped")
    public static let output = Self(rawValue: "output")
    public static let notice = Self(rawValue: "notice")
    public static let hookFinished = Self(rawValue: "hook.finished")
    public static let approvalWaiting = Self(rawValue: "approval.waiting")
    public static let approvalGranted = Self(rawValue: "approval.granted")
    public static let approvalClosed = Self(rawValue: "approval.closed")
    public static let imagePushed = Self(rawValue: "image.pushed")
    public static let traffic = Self(rawValue: "traffic")
    public static let rollback = Self(rawValue: "rollback")
    public static let rehearsal = Self(rawValue: "rehearsal")
    public static let deploySkipped = Self(rawValue: "deploy.skipped")
    /// Removing something a run no longer needs failed; it was left, and the next command removes it.
    public static let cleanupFailed = Self(rawValue: "cleanup.failed")
    /// `deploy abort`, `deploy pause` or `deploy resume` reached the run: `run.abort`, `run.pause`, `run.resume`.
    public static func control(_ action: String) -> Self { Self(rawValue: "run.\(action)") }
    public static let notifySent = Self(rawValue: "notify.sent")
    public static let notifyFailed = Self(rawValue: "notify.failed")

    /// How a run, stage, step or hook ended, in the run record: `stage.succeeded`, `step.timed_out`.
    public static func ended(_ subject: Subject, _ outcome: Outcome) -> Self { Self(rawValue: "\(subject.rawValue).\(outcome.rawValue)") }

    public enum Subject: String, Sendable {
        case run, stage, step, hook
    }
}
