public import Foundation
public import GRDB
public import SlipwayCore

extension Outcome: DatabaseValueConvertible {}
extension RehearsalOutcome: DatabaseValueConvertible {}

/// One invocation of `deploy <env>`.
public struct RunRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "run"
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// The store's id for the record: 0 until the store has inserted it, never 0 after.
    public var id: Int64 { storedID ?? 0 }
    var storedID: Int64?
    public var pipeline: String
    public var app: String
    public var environment: String
    public var triggerUser: String
    public var triggerCI: String?
    public var triggerURL: String?
    public var sha: String?
    public var version: String?
    public var startedAt: Date
    public var endedAt: Date?
    public var outcome: Outcome
    public var exitCode: Int?
    /// Why it ended as it did, in a sentence (the failing step, the signal, …).
    public var reason: String?
    public var ownerPID: Int32
    public var ownerHost: String
    public var heartbeatAt: Date
    /// The working tree had uncommitted changes when the run started.
    public var dirty: Bool = false
    /// What the trigger asked to let through (`allow-dirty (2 changed files)`, a freeze passed with
    /// its reason), one entry each; stored as a JSON array.
    public var overrides: [String] = []
    /// The image the run pushed, by digest (`127.0.0.1:5000/hello@sha256:…`).
    public var image: String?
    /// `deploy` for a release shipped through the pipeline, `rollback` for `deploy rollback`.
    public var kind: String = "deploy"
    /// The run whose release this one put back (a rollback, automatic or by hand).
    public var restoredRunID: Int64?
    /// How the rollback rehearsal went, or nil when the environment has none.
    public var rehearsal: RehearsalOutcome?
    /// The rehearsal's measured time to roll back, in milliseconds.
    public var rehearsalMS: Int?
    /// For a rolled-back run or a rollback: milliseconds from the decision to the previous release
    /// serving all traffic.
    public var rollbackMS: Int?

    public init(
        pipeline: String, app: String, environment: String, trigger: Trigger, sha: String?, version: String?,
        startedAt: Date, ownerPID: Int32, ownerHost: String
    ) {
        self.pipeline = pipeline
        self.app = app
        self.environment = environment
        self.triggerUser = trigger.user
        self.triggerCI = trigger.ci
        self.triggerURL = trigger.jobURL
        self.sha = sha
        self.version = version
        self.startedAt = startedAt
        self.outcome = .running
        self.ownerPID = ownerPID
        self.ownerHost = ownerHost
        self.heartbeatAt = startedAt
    }

    public var trigger: Trigger { Trigger(user: triggerUser, ci: triggerCI, jobURL: triggerURL) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { storedID = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case storedID = "id"
        case pipeline, app, environment, sha, version, outcome, reason
        case triggerUser = "trigger_user", triggerCI = "trigger_ci", triggerURL = "trigger_url"
        case startedAt = "started_at", endedAt = "ended_at", exitCode = "exit_code"
        case ownerPID = "owner_pid", ownerHost = "owner_host", heartbeatAt = "heartbeat_at"
        case dirty, overrides, image, kind, rehearsal
        case restoredRunID = "restored_run_id", rehearsalMS = "rehearsal_ms", rollbackMS = "rollback_ms"
    }
}

/// A stage of a run, in pipeline order.
public struct StageRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "stage"
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// The store's id for the record: 0 until the store has inserted it, never 0 after.
    public var id: Int64 { storedID ?? 0 }
    var storedID: Int64?
    public var runID: Int64
    public var position: Int
    public var name: String
    /// `run`, `sh`, `steps`, `deploy`, `approval`, `build` or `push`.
    public var kind: String
    public var outcome: Outcome
    public var startedAt: Date?
    public var endedAt: Date?
    public var reason: String?

    public init(runID: Int64, position: Int, name: String, kind: String) {
        self.runID = runID
        self.position = position
        self.name = name
        self.kind = kind
        self.outcome = .pending
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { storedID = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case position, name, kind, outcome, reason
        case storedID = "id", runID = "run_id", startedAt = "started_at", endedAt = "ended_at"
    }
}

/// A step of a stage: one child process, possibly attempted several times.
public struct StepRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "step"
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// The store's id for the record: 0 until the store has inserted it, never 0 after.
    public var id: Int64 { storedID ?? 0 }
    var storedID: Int64?
    public var runID: Int64
    public var stageID: Int64
    public var position: Int
    public var name: String
    /// The argv as a person reads it (secrets masked), or `sh: <first line>` for a script.
    public var command: String
    public var outcome: Outcome
    public var exitCode: Int?
    public var attempts: Int
    public var startedAt: Date?
    public var endedAt: Date?
    public var durationMS: Int?
    /// The masked output, whole up to the configured size, otherwise head and tail around a marker.
    public var output: String
    /// How many bytes the step printed in all, kept or not.
    public var outputBytes: Int
    public var outputTruncated: Bool
    public var childPID: Int32?

    public init(runID: Int64, stageID: Int64, position: Int, name: String, command: String) {
        self.runID = runID
        self.stageID = stageID
        self.position = position
        self.name = name
        self.command = command
        self.outcome = .pending
        self.attempts = 0
        self.output = ""
        self.outputBytes = 0
        self.outputTruncated = false
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { storedID = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case position, name, command, outcome, attempts, output
        case storedID = "id", runID = "run_id", stageID = "stage_id", exitCode = "exit_code"
        case startedAt = "started_at", endedAt = "ended_at", durationMS = "duration_ms"
        case outputBytes = "output_bytes", outputTruncated = "output_truncated", childPID = "child_pid"
    }
}

/// Something that happened during a run, in order.
public struct EventRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "event"
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .timeIntervalSince1970 }
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// The store's id for the record: 0 until the store has inserted it, never 0 after.
    public var id: Int64 { storedID ?? 0 }
    var storedID: Int64?
    public var runID: Int64
    public var at: Date
    /// An ``EventName``: `run.started`, `stage.started`, `step.retrying`, `run.interrupted`, …
    public var kind: String
    public var stage: String?
    public var step: String?
    public var message: String

    public init(runID: Int64, at: Date, kind: EventName, stage: String? = nil, step: String? = nil, message: String) {
        self.runID = runID
        self.at = at
        self.kind = kind.rawValue
        self.stage = stage
        self.step = step
        self.message = message
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { storedID = inserted.rowID }

    enum CodingKeys: String, CodingKey {
        case at, kind, stage, step, message
        case storedID = "id", runID = "run_id"
    }
}

/// A run with its stages and steps, as `deploy show` prints it.
public struct RunDetail: Sendable, Hashable {
    public var run: RunRecord
    public var stages: [StageRecord]
    public var steps: [StepRecord]
    public var events: [EventRecord]
}
