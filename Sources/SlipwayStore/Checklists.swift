public import Foundation
public import GRDB
public import SlipwayCore

/// Where a checklist item stands in a run.
public enum ChecklistState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Not evaluated yet (the stage has not reached it), or waiting for a sign-off.
    case pending
    /// A machine checked it and it held.
    case passed
    /// A machine checked it and it did not hold.
    case failed
    /// Someone who may sign it did, for this run or within the sign-off's validity.
    case signed
    /// A sign-off was given once, but its validity has run out: it must be signed again.
    case expired
    /// The stage ended before the item was looked at (an earlier required item failed).
    case skipped
}

/// One item of a run's checklist, as the pipeline had it when the run started, and its state.
public struct ChecklistItemRecord: Codable, Sendable, Hashable, FetchableRecord {
    public var runID: Int64
    public var stage: String
    public var position: Int
    public var itemID: String
    public var section: String
    public var title: String
    /// `check` or `sign_off`.
    public var kind: String
    /// The check's name (`probes`, `run`, …); nil for a sign-off.
    public var check: String?
    public var advisory: Bool
    /// Who may sign (a JSON array in the store; `*` for anyone).
    public var signers: [String]
    public var role: String?
    public var validForSeconds: Int?
    public var distinctFromTrigger: Bool
    public var state: ChecklistState
    /// The one-line explanation: what was seen, and on failure where to look.
    public var detail: String
    public var signedBy: String?
    public var signedAt: Date?
    public var comment: String?
    public var expiresAt: Date?
    public var checkedAt: Date?

    public init(
        runID: Int64, stage: String, position: Int, itemID: String, section: String, title: String, kind: String, check: String?,
        advisory: Bool, signers: [String] = [], role: String? = nil, validForSeconds: Int? = nil, distinctFromTrigger: Bool = false,
        state: ChecklistState = .pending, detail: String = ""
    ) {
        self.runID = runID
        self.stage = stage
        self.position = position
        self.itemID = itemID
        self.section = section
        self.title = title
        self.kind = kind
        self.check = check
        self.advisory = advisory
        self.signers = signers
        self.role = role
        self.validForSeconds = validForSeconds
        self.distinctFromTrigger = distinctFromTrigger
        self.state = state
        self.detail = detail
    }

    public var isSignOff: Bool { kind == "sign_off" }
    /// Whether the pipeline lets `person` sign it (`*`: anyone).
    public func maySign(_ person: String) -> Bool { signers.contains("*") || signers.contains(person) }
    /// It holds: passed, or signed.
    public var holds: Bool { state == .passed || state == .signed }

    enum CodingKeys: String, CodingKey {
        case stage, position, section, title, kind, check, advisory, signers, role, state, detail, comment
        case runID = "run_id"
        case itemID = "item_id"
        case validForSeconds = "valid_for_seconds"
        case distinctFromTrigger = "distinct_from_trigger"
        case signedBy = "signed_by"
        case signedAt = "signed_at"
        case expiresAt = "expires_at"
        case checkedAt = "checked_at"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
    public static func databaseJSONDecoder(for column: String) -> JSONDecoder { JSONDecoder() }

    var arguments: StatementArguments {
        let signersJSON = String(decoding: (try? JSONEncoder().encode(signers)) ?? Data("[]".utf8), as: UTF8.self)
        return [
            runID, stage, position, itemID, section, title, kind, check, advisory, signersJSON, role, validForSeconds,
            distinctFromTrigger, state.rawValue, detail, signedBy, signedAt?.timeIntervalSince1970, comment,
            expiresAt?.timeIntervalSince1970, checkedAt?.timeIntervalSince1970,
        ]
    }
}

/// A sign-off as given: kept apart from the run's items so that one with `valid_for` stands for later runs.
public struct SignOffRecord: Codable, Sendable, Hashable, FetchableRecord {
    public var runID: Int64
    public var environment: String
    public var itemID: String
    public var signer: String
    public var comment: String?
    public var at: Date
    public var expiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case environment, signer, comment, at
        case runID = "run_id"
        case itemID = "item_id"
        case expiresAt = "expires_at"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

/// What a sign-off is checked against, read in the transaction that records it.
public struct PendingSignOff: Sendable {
    public var runID: Int64
    public var runOutcome: Outcome?
    public var environment: String?
    public var trigger: String?
    /// The item, matched by id or by its number in the checklist; nil when the run has none such.
    public var item: ChecklistItemRecord?
    /// Whether the checklist stage is still running (waiting for sign-offs).
    public var stageRunning: Bool
}

/// Checklists of runs and the sign-offs given on them.
public protocol ChecklistBook: Sendable {
    /// Records the checklist as the run starts it: every item, pending.
    func saveChecklist(_ items: [ChecklistItemRecord]) async throws
    func updateChecklistItem(_ item: ChecklistItemRecord) async throws
    func checklist(runID: Int64) async throws -> [ChecklistItemRecord]
    /// The newest run of `environment` that recorded a checklist, if any.
    func latestChecklistRun(environment: String) async throws -> Int64?
    /// The newest sign-off of `itemID` in `environment`, whatever its validity.
    func latestSignOff(environment: String, itemID: String) async throws -> SignOffRecord?
    /// Records a sign-off of run `runID`'s item (an id or its number), after `check` accepts it.
    func sign(
        runID: Int64, item: String, signer: String, comment: String?, now: Date,
        check: @escaping @Sendable (PendingSignOff) throws -> Void
    ) async throws -> ChecklistItemRecord
}

extension RunStore {
    static func registerChecklistMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7: checklists and sign-offs") { db in
            try db.create(table: "checklist_item") { t in
                t.column("run_id", .integer).notNull().references("run", onDelete: .cascade)
                t.column("stage", .text).notNull()
                t.column("position", .integer).notNull()
                t.column("item_id", .text).notNull()
                t.column("section", .text).notNull()
                t.column("title", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("check", .text)
                t.column("advisory", .boolean).notNull()
                t.column("signers", .text).notNull()
                t.column("role", .text)
                t.column("valid_for_seconds", .integer)
                t.column("distinct_from_trigger", .boolean).notNull()
                t.column("state", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("signed_by", .text)
                t.column("signed_at", .double)
                t.column("comment", .text)
                t.column("expires_at", .double)
                t.column("checked_at", .double)
                t.primaryKey(["run_id", "item_id"])
            }
            try db.create(table: "sign_off") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().references("run", onDelete: .cascade)
                t.column("environment", .text).notNull()
                t.column("item_id", .text).notNull()
                t.column("signer", .text).notNull()
                t.column("comment", .text)
                t.column("at", .double).notNull()
                t.column("expires_at", .double)
            }
            try db.create(index: "sign_off_by_item", on: "sign_off", columns: ["environment", "item_id", "at"])
        }
    }

    static let checklistColumns = """
        run_id, stage, position, item_id, section, title, kind, "check", advisory, signers, role, valid_for_seconds, \
        distinct_from_trigger, state, detail, signed_by, signed_at, comment, expires_at, checked_at
        """

    static let saveItemSQL =
        "INSERT OR REPLACE INTO checklist_item (\(checklistColumns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

    public func saveChecklist(_ items: [ChecklistItemRecord]) async throws {
        try await write("recording the checklist") { db in
            for item in items {
                try db.execute(
                    sql: Self.saveItemSQL,
                    arguments: item.arguments)
            }
        }
    }

    public func updateChecklistItem(_ item: ChecklistItemRecord) async throws {
        try await saveChecklist([item])
    }

    public func checklist(runID: Int64) async throws -> [ChecklistItemRecord] {
        try await read("reading the checklist of run \(runID)") { db in
            try ChecklistItemRecord.fetchAll(
                db, sql: "SELECT * FROM checklist_item WHERE run_id = ? ORDER BY position", arguments: [runID])
        }
    }

    public func latestChecklistRun(environment: String) async throws -> Int64? {
        try await read("finding the latest checklist of \(environment)") { db in
            try Int64.fetchOne(
                db,
                sql:
                    "SELECT MAX(run.id) FROM run WHERE run.environment = ? AND EXISTS (SELECT 1 FROM checklist_item WHERE run_id = run.id)",
                arguments: [environment])
        }
    }

    public func latestSignOff(environment: String, itemID: String) async throws -> SignOffRecord? {
        try await read("reading sign-offs") { db in
            try SignOffRecord.fetchOne(
                db, sql: "SELECT * FROM sign_off WHERE environment = ? AND item_id = ? ORDER BY at DESC, id DESC LIMIT 1",
                arguments: [environment, itemID])
        }
    }

    public func sign(
        runID: Int64, item: String, signer: String, comment: String?, now: Date,
        check: @escaping @Sendable (PendingSignOff) throws -> Void
    ) async throws -> ChecklistItemRecord {
        try await writeImmediate("recording the sign-off on run \(runID)") { db in
            let run = try RunRecord.fetchOne(db, key: runID)
            var found = try ChecklistItemRecord.fetchOne(
                db, sql: "SELECT * FROM checklist_item WHERE run_id = ? AND item_id = ?", arguments: [runID, item])
            if found == nil, let number = Int(item) {
                found = try ChecklistItemRecord.fetchOne(
                    db, sql: "SELECT * FROM checklist_item WHERE run_id = ? AND position = ?", arguments: [runID, number - 1])
            }
            var stageRunning = false
            if let found {
                stageRunning =
                    try Bool.fetchOne(
                        db, sql: "SELECT outcome = 'running' FROM stage WHERE run_id = ? AND name = ?", arguments: [runID, found.stage])
                    ?? false
            }
            try check(
                PendingSignOff(
                    runID: runID, runOutcome: run?.outcome, environment: run?.environment, trigger: run?.triggerUser, item: found,
                    stageRunning: stageRunning))
            guard var signed = found, let run else { throw StoreError(operation: "recording the sign-off", underlying: "no such item") }
            signed.state = .signed
            signed.signedBy = signer
            signed.signedAt = now
            signed.comment = comment
            signed.expiresAt = signed.validForSeconds.map { now.addingTimeInterval(Double($0)) }
            signed.detail = "signed by \(signer)" + (signed.expiresAt.map { ", valid until \(Self.day($0))" } ?? "")
            try db.execute(
                sql: Self.saveItemSQL,
                arguments: signed.arguments)
            try db.execute(
                sql: "INSERT INTO sign_off (run_id, environment, item_id, signer, comment, at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    runID, run.environment, signed.itemID, signer, comment, now.timeIntervalSince1970,
                    signed.expiresAt?.timeIntervalSince1970,
                ])
            try Self.appendAudit(
                db, at: now, actor: signer, action: "sign-off", environment: run.environment, runID: runID,
                detail: "\(signed.itemID): \(signed.title)" + (comment.map { ": \($0)" } ?? ""))
            return signed
        }
    }

    static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
    }
}
