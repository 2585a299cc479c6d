public import Foundation
public import GRDB
import SlipwayCore

/// What one measurement of a gate came to.
public enum MeasurementVerdict: String, Codable, Sendable, Hashable, CaseIterable {
    case pass
    case fail
    /// Nobody could take the measurement (no data, NaN, a query error, a stale scrape, several
    /// series): the gate's policy says whether it counts as a failure or against its own limit.
    case inconclusive
}

/// One measurement of a gate, as a run recorded it: when, what was asked (the query after
/// substitution), the number seen (and the stable release's, for a comparison) and the verdict.
public struct GateMeasurementRecord: Codable, Sendable, Hashable, FetchableRecord {
    public var runID: Int64
    public var stage: String
    public var gate: String
    /// Where in the rollout it was taken: `at 25%`, `preview`, `bake 2`, `rollback`.
    public var checkpoint: String
    public var at: Date
    public var verdict: MeasurementVerdict
    public var value: Double?
    /// The stable release's value in the same tick, for a gate `relative_to: stable`.
    public var stableValue: Double?
    /// What was seen, in a few words; for an inconclusive one, which kind (`no data`, `NaN`…).
    public var detail: String
    /// The query or request after substitution.
    public var query: String

    public init(
        runID: Int64, stage: String, gate: String, checkpoint: String, at: Date, verdict: MeasurementVerdict, value: Double?,
        stableValue: Double? = nil, detail: String, query: String
    ) {
        self.runID = runID
        self.stage = stage
        self.gate = gate
        self.checkpoint = checkpoint
        self.at = at
        self.verdict = verdict
        self.value = value
        self.stableValue = stableValue
        self.detail = detail
        self.query = query
    }

    enum CodingKeys: String, CodingKey {
        case stage, gate, checkpoint, at, verdict, value, detail, query
        case runID = "run_id"
        case stableValue = "stable_value"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

/// What someone asked of a running deploy from another shell.
public enum RunControlAction: String, Codable, Sendable, Hashable {
    /// Stop now and roll back.
    case abort
    /// Hold a canary at its current step.
    case pause
    /// Let a held canary go on.
    case resume
}

/// A request to a running deploy (`deploy abort`, `deploy pause`, `deploy resume`).
public struct RunControlRecord: Codable, Sendable, Hashable, FetchableRecord {
    public var id: Int64
    public var runID: Int64
    public var action: RunControlAction
    public var actor: String
    public var reason: String?
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case id, action, actor, reason, at
        case runID = "run_id"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

/// Gate measurements, and the requests other processes make of a running deploy.
public protocol AnalysisBook: Sendable {
    func recordMeasurements(_ measurements: [GateMeasurementRecord]) async throws
    func measurements(runID: Int64) async throws -> [GateMeasurementRecord]
    /// Records `action` on run `runID` (and an audit entry) after `check` has seen the run, in the
    /// same transaction; `check` throws to refuse (the run is over, say).
    func control(
        runID: Int64, action: RunControlAction, actor: String, reason: String?, now: Date,
        check: @escaping @Sendable (RunRecord?) throws -> Void
    ) async throws -> RunControlRecord
    /// The requests made of run `runID` after the one numbered `after`, oldest first.
    func controls(runID: Int64, after: Int64) async throws -> [RunControlRecord]
}

extension RunStore {
    static func registerAnalysisMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8: gate measurements and run controls") { db in
            try db.create(table: "gate_measurement") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().references("run", onDelete: .cascade)
                t.column("stage", .text).notNull()
                t.column("gate", .text).notNull()
                t.column("checkpoint", .text).notNull()
                t.column("at", .double).notNull()
                t.column("verdict", .text).notNull()
                t.column("value", .double)
                t.column("stable_value", .double)
                t.column("detail", .text).notNull()
                t.column("query", .text).notNull()
            }
            try db.create(index: "gate_measurement_by_run", on: "gate_measurement", columns: ["run_id", "id"])
            try db.create(table: "run_control") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().references("run", onDelete: .cascade)
                t.column("action", .text).notNull()
                t.column("actor", .text).notNull()
                t.column("reason", .text)
                t.column("at", .double).notNull()
            }
            try db.create(index: "run_control_by_run", on: "run_control", columns: ["run_id", "id"])
        }
    }

    public func recordMeasurements(_ measurements: [GateMeasurementRecord]) async throws {
        guard !measurements.isEmpty else { return }
        try await write("recording gate measurements") { db in
            for m in measurements {
                try db.execute(
                    sql: """
                        INSERT INTO gate_measurement (run_id, stage, gate, checkpoint, at, verdict, value, stable_value, detail, query)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        m.runID, m.stage, m.gate, m.checkpoint, m.at.timeIntervalSince1970, m.verdict.rawValue,
                        m.value.flatMap { $0.isFinite ? $0 : nil }, m.stableValue.flatMap { $0.isFinite ? $0 : nil }, m.detail, m.query,
                    ])
            }
        }
    }

    public func measurements(runID: Int64) async throws -> [GateMeasurementRecord] {
        try await read("reading the gate measurements of run \(runID)") { db in
            try GateMeasurementRecord.fetchAll(db, sql: "SELECT * FROM gate_measurement WHERE run_id = ? ORDER BY id", arguments: [runID])
        }
    }

    public func control(
        runID: Int64, action: RunControlAction, actor: String, reason: String?, now: Date,
        check: @escaping @Sendable (RunRecord?) throws -> Void
    ) async throws -> RunControlRecord {
        try await writeImmediate("recording '\(action.rawValue)' on run \(runID)") { db in
            let run = try RunRecord.fetchOne(db, key: runID)
            try check(run)
            try db.execute(
                sql: "INSERT INTO run_control (run_id, action, actor, reason, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [runID, action.rawValue, actor, reason, now.timeIntervalSince1970])
            let id = db.lastInsertedRowID
            try Self.appendAudit(
                db, at: now, actor: actor, action: action.rawValue, environment: run?.environment, runID: runID,
                detail: reason ?? "")
            return RunControlRecord(id: id, runID: runID, action: action, actor: actor, reason: reason, at: now)
        }
    }

    public func controls(runID: Int64, after: Int64) async throws -> [RunControlRecord] {
        try await read("reading requests made of run \(runID)") { db in
            try RunControlRecord.fetchAll(
                db, sql: "SELECT * FROM run_control WHERE run_id = ? AND id > ? ORDER BY id", arguments: [runID, after])
        }
    }
}
