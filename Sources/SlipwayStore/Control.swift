public import Foundation
public import GRDB
import SlipwayCore

/// Who holds an environment: a running deploy (a lease with a heartbeat), or a person's manual
/// lock (a freeze, until `deploy unlock`).
public struct Lease: Codable, Sendable, Hashable, FetchableRecord {
    public enum Kind: String, Codable, Sendable { case run, manual }

    public var environment: String
    public var kind: Kind
    public var holder: String
    public var host: String
    public var pid: Int32
    public var runID: Int64?
    public var reason: String?
    public var acquiredAt: Date
    public var heartbeatAt: Date

    enum CodingKeys: String, CodingKey {
        case environment, kind, holder, host, pid, reason
        case runID = "run_id", acquiredAt = "acquired_at", heartbeatAt = "heartbeat_at"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// `ann (pid 4242 on build-7) since 2026-11-22 10:02 UTC, run 12` or `ann's lock since …: reason`.
    public var description: String {
        let since = acquiredAt.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeSeparator(.colon))
        switch kind {
        case .manual: return "locked by \(holder) since \(since)" + (reason.map { ": \($0)" } ?? "")
        case .run: return "\(holder) (pid \(pid) on \(host)) since \(since)" + (runID.map { ", run \($0)" } ?? "")
        }
    }
}

/// What trying to take an environment's lease came to.
public enum LeaseAttempt: Sendable, Hashable {
    case acquired
    /// Someone else holds it.
    case held(by: Lease)
    /// Others queued first (`--wait`): this many are ahead.
    case queued(ahead: Int)
}

/// An approval or rejection of a run's approval stage.
public struct ApprovalRecord: Codable, Sendable, Hashable, FetchableRecord {
    public var id: Int64
    public var runID: Int64
    public var stage: String
    public var approver: String
    public var decision: String
    public var comment: String?
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case id, stage, approver, decision, comment, at
        case runID = "run_id"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }
}

extension RunStore {
    static func registerControlMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3: leases, queue, approvals, audit") { db in
            try db.create(table: "lease") { t in
                t.primaryKey("environment", .text)
                t.column("kind", .text).notNull()
                t.column("holder", .text).notNull()
                t.column("host", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("run_id", .integer)
                t.column("reason", .text)
                t.column("acquired_at", .double).notNull()
                t.column("heartbeat_at", .double).notNull()
            }
            try db.create(table: "lease_queue") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("environment", .text).notNull().indexed()
                t.column("holder", .text).notNull()
                t.column("host", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("enqueued_at", .double).notNull()
                t.column("heartbeat_at", .double).notNull()
            }
            try db.create(table: "approval") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("stage", .text).notNull()
                t.column("approver", .text).notNull()
                t.column("decision", .text).notNull()
                t.column("comment", .text)
                t.column("at", .double).notNull()
            }
            try db.create(table: "audit") { t in
                t.primaryKey("id", .integer)
                t.column("at", .double).notNull()
                t.column("actor", .text).notNull()
                t.column("action", .text).notNull()
                t.column("environment", .text).indexed()
                t.column("run_id", .integer)
                t.column("detail", .text).notNull()
                t.column("previous_hash", .text).notNull()
                t.column("hash", .text).notNull()
            }
        }
    }

    /// Runs `body` in an IMMEDIATE transaction: the write lock is taken at BEGIN, so a read made
    /// inside can be acted on without another process changing it in between.
    func writeImmediate<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await uncancellable {
                try self.writer.writeWithoutTransaction { db in
                    var result: T?
                    try db.inTransaction(.immediate) {
                        result = try body(db)
                        return .commit
                    }
                    return result!
                }
            }
        } catch let error as DatabaseError {
            throw storeError(operation, error)
        }
    }

    // MARK: - Leases

    public func lease(environment: String) async throws -> Lease? {
        try await writer.read { db in try Lease.fetchOne(db, sql: "SELECT * FROM lease WHERE environment = ?", arguments: [environment]) }
    }

    /// Takes the environment's lease for a run, atomically. A lease whose holder is dead (on this
    /// host its pid is gone; anywhere, no heartbeat for `staleAfter`) is reclaimed, with an audit
    /// entry. With `queueTicket`, only the first live waiter in line may take it.
    public func acquireLease(
        environment: String, holder: String, host: String, pid: Int32, now: Date, staleAfter: TimeInterval,
        queueTicket: Int64?, isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> LeaseAttempt {
        try await writeImmediate("taking the lease of \(environment)") { db in
            // A waiter is alive while it asks: its heartbeat is renewed however long the holder
            // runs, so that no later waiter takes it for dead and jumps the line.
            if let queueTicket {
                try db.execute(
                    sql: "UPDATE lease_queue SET heartbeat_at = ? WHERE id = ?", arguments: [now.timeIntervalSince1970, queueTicket])
            }
            if let current = try Self.liveLease(
                db, environment: environment, host: host, now: now, staleAfter: staleAfter, isAlive: isAlive)
            {
                return .held(by: current)
            }
            if let queueTicket {
                // Drop waiters that died in line, then take our turn only at the head.
                let waiters = try Row.fetchAll(
                    db, sql: "SELECT id, host, pid, heartbeat_at FROM lease_queue WHERE environment = ? ORDER BY id",
                    arguments: [environment])
                var ahead = 0
                for waiter in waiters {
                    let id: Int64 = waiter["id"]
                    if id == queueTicket { break }
                    let waiterHost: String = waiter["host"]
                    let waiterPID: Int32 = waiter["pid"]
                    let beat: Double = waiter["heartbeat_at"]
                    if (waiterHost == host && !isAlive(waiterPID)) || now.timeIntervalSince1970 - beat > staleAfter {
                        try db.execute(sql: "DELETE FROM lease_queue WHERE id = ?", arguments: [id])
                    } else {
                        ahead += 1
                    }
                }
                if ahead > 0 { return .queued(ahead: ahead) }
                try db.execute(sql: "DELETE FROM lease_queue WHERE id = ?", arguments: [queueTicket])
            }
            try db.execute(
                sql: """
                    INSERT INTO lease (environment, kind, holder, host, pid, acquired_at, heartbeat_at) VALUES (?, 'run', ?, ?, ?, ?, ?)
                    """, arguments: [environment, holder, host, pid, now.timeIntervalSince1970, now.timeIntervalSince1970])
            return .acquired
        }
    }

    /// The environment's lease if its holder is alive; a dead holder's lease (on this host its pid
    /// is gone; anywhere, no heartbeat for `staleAfter`) is removed, with an audit entry.
    static func liveLease(
        _ db: Database, environment: String, host: String, now: Date, staleAfter: TimeInterval,
        isAlive: @escaping @Sendable (Int32) -> Bool
    ) throws -> Lease? {
        guard let current = try Lease.fetchOne(db, sql: "SELECT * FROM lease WHERE environment = ?", arguments: [environment]) else {
            return nil
        }
        let dead =
            current.kind == .run
            && ((current.host == host && !isAlive(current.pid)) || now.timeIntervalSince(current.heartbeatAt) > staleAfter)
        guard dead else { return current }
        try db.execute(sql: "DELETE FROM lease WHERE environment = ?", arguments: [environment])
        try appendAudit(
            db, at: now, actor: "deploy", action: "lease.reclaimed", environment: environment, runID: current.runID,
            detail: "the holder \(current.holder) (pid \(current.pid) on \(current.host)) is gone; its last heartbeat was "
                + current.heartbeatAt.formatted(.iso8601))
        return nil
    }

    /// Joins the line for an environment's lease; returns the ticket.
    public func enqueue(environment: String, holder: String, host: String, pid: Int32, now: Date) async throws -> Int64 {
        try await writeImmediate("queueing for \(environment)") { db in
            try db.execute(
                sql: """
                    INSERT INTO lease_queue (environment, holder, host, pid, enqueued_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [environment, holder, host, pid, now.timeIntervalSince1970, now.timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func leaveQueue(ticket: Int64) async throws {
        try await writeImmediate("leaving the queue") { db in
            try db.execute(sql: "DELETE FROM lease_queue WHERE id = ?", arguments: [ticket])
        }
    }

    /// Ties the lease to the run it now serves.
    public func attachLease(environment: String, pid: Int32, host: String, runID: Int64) async throws {
        try await writeImmediate("recording the lease's run") { db in
            try db.execute(
                sql: "UPDATE lease SET run_id = ? WHERE environment = ? AND pid = ? AND host = ? AND kind = 'run'",
                arguments: [runID, environment, pid, host])
        }
    }

    public func heartbeatLease(environment: String, pid: Int32, host: String, now: Date) async throws {
        try await writeImmediate("renewing the lease") { db in
            try db.execute(
                sql: "UPDATE lease SET heartbeat_at = ? WHERE environment = ? AND pid = ? AND host = ? AND kind = 'run'",
                arguments: [now.timeIntervalSince1970, environment, pid, host])
        }
    }

    /// Gives the lease back (only if this process holds it).
    public func releaseLease(environment: String, pid: Int32, host: String) async throws {
        try await writeImmediate("releasing the lease") { db in
            try db.execute(
                sql: "DELETE FROM lease WHERE environment = ? AND pid = ? AND host = ? AND kind = 'run'",
                arguments: [environment, pid, host])
        }
    }

    /// Puts a manual lock (a freeze) on an environment. Fails, returning the holder, if anything holds it.
    public func lock(
        environment: String, by holder: String, reason: String, host: String, now: Date, staleAfter: TimeInterval,
        isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> Lease? {
        try await writeImmediate("locking \(environment)") { db in
            if let current = try Self.liveLease(
                db, environment: environment, host: host, now: now, staleAfter: staleAfter, isAlive: isAlive)
            {
                return current
            }
            try db.execute(
                sql: """
                    INSERT INTO lease (environment, kind, holder, host, pid, reason, acquired_at, heartbeat_at) VALUES (?, 'manual', ?, ?, 0, ?, ?, ?)
                    """, arguments: [environment, holder, host, reason, now.timeIntervalSince1970, now.timeIntervalSince1970])
            try Self.appendAudit(db, at: now, actor: holder, action: "lock", environment: environment, runID: nil, detail: reason)
            return nil
        }
    }

    /// Removes a manual lock; returns it, or nil when there was none.
    public func unlock(environment: String, by actor: String, now: Date) async throws -> Lease? {
        try await writeImmediate("unlocking \(environment)") { db in
            guard
                let current = try Lease.fetchOne(
                    db, sql: "SELECT * FROM lease WHERE environment = ? AND kind = 'manual'",
                    arguments: [environment])
            else { return nil }
            try db.execute(sql: "DELETE FROM lease WHERE environment = ? AND kind = 'manual'", arguments: [environment])
            try Self.appendAudit(
                db, at: now, actor: actor, action: "unlock", environment: environment, runID: nil,
                detail: "lock by \(current.holder)" + (current.reason.map { ": \($0)" } ?? ""))
            return current
        }
    }

    // MARK: - Approvals

    public func approvals(runID: Int64) async throws -> [ApprovalRecord] {
        try await writer.read { db in
            try ApprovalRecord.fetchAll(db, sql: "SELECT * FROM approval WHERE run_id = ? ORDER BY id", arguments: [runID])
        }
    }

}

// MARK: - Approval requests

/// What an approval stage asks for, recorded when it starts waiting so that `deploy approve`,
/// from any terminal or machine sharing the store, checks the same rules.
public struct ApprovalPolicy: Codable, Sendable, Hashable {
    public var environment: String
    public var stage: String
    public var approvers: Int
    public var allowed: [String]
    public var distinctFromTrigger: Bool
    public var trigger: String
    public var deadline: Date

    public init(
        environment: String, stage: String, approvers: Int, allowed: [String], distinctFromTrigger: Bool, trigger: String,
        deadline: Date
    ) {
        self.environment = environment
        self.stage = stage
        self.approvers = approvers
        self.allowed = allowed
        self.distinctFromTrigger = distinctFromTrigger
        self.trigger = trigger
        self.deadline = deadline
    }
}

extension RunStore {
    private static let policyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    /// Records that a run waits for approval under `policy`.
    public func openApproval(runID: Int64, policy: ApprovalPolicy, at date: Date) async throws {
        let json = String(decoding: try Self.policyEncoder.encode(policy), as: UTF8.self)
        try await append(EventRecord(runID: runID, at: date, kind: .approvalWaiting, stage: policy.stage, message: json))
    }

    /// Records that an approval stage stopped waiting (timed out, cancelled): no later decision counts.
    public func closeApproval(runID: Int64, stage: String, why: String, at date: Date) async throws {
        try await append(EventRecord(runID: runID, at: date, kind: .approvalClosed, stage: stage, message: why))
    }

    /// The policy of the approval a run waits for now, if it waits for one.
    static func openPolicy(_ db: Database, runID: Int64) throws -> (ApprovalPolicy, closed: String?)? {
        guard
            let waiting = try Row.fetchOne(
                db, sql: "SELECT id, message FROM event WHERE run_id = ? AND kind = 'approval.waiting' ORDER BY id DESC LIMIT 1",
                arguments: [runID])
        else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let message: String = waiting["message"]
        let policy = try decoder.decode(ApprovalPolicy.self, from: Data(message.utf8))
        let waitingID: Int64 = waiting["id"]
        let closed = try String.fetchOne(
            db, sql: "SELECT message FROM event WHERE run_id = ? AND kind = 'approval.closed' AND stage = ? AND id > ? LIMIT 1",
            arguments: [runID, policy.stage, waitingID])
        return (policy, closed)
    }

    /// Records `approver`'s decision on the approval run `runID` waits for. What the rules need is
    /// read in the same IMMEDIATE transaction and handed to `check` (Slipway's rules), which throws
    /// to refuse; nothing is written then.
    @discardableResult
    public func decide(
        runID: Int64, approver: String, approve: Bool, comment: String?, now: Date,
        check: @escaping @Sendable (PendingApproval) throws -> Void
    ) async throws -> ApprovalPolicy {
        try await writeImmediate("recording the decision on run \(runID)") { db in
            let run = try RunRecord.fetchOne(db, key: runID)
            let open = run?.outcome == .running ? try Self.openPolicy(db, runID: runID) : nil
            var pending = PendingApproval(
                runID: runID, runOutcome: run?.outcome, policy: open?.0, closed: open?.closed, stageRunning: false,
                alreadyDecided: false)
            if let policy = open?.0 {
                pending.stageRunning =
                    try Bool.fetchOne(
                        db, sql: "SELECT outcome = 'running' FROM stage WHERE run_id = ? AND name = ?", arguments: [runID, policy.stage])
                    ?? false
                pending.alreadyDecided =
                    try Bool.fetchOne(
                        db, sql: "SELECT COUNT(*) > 0 FROM approval WHERE run_id = ? AND stage = ? AND approver = ?",
                        arguments: [runID, policy.stage, approver]) ?? false
            }
            try check(pending)
            guard let policy = pending.policy else {
                throw StoreError(operation: "recording the decision", underlying: "no approval is open")
            }
            try db.execute(
                sql: "INSERT INTO approval (run_id, stage, approver, decision, comment, at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [runID, policy.stage, approver, approve ? "approved" : "rejected", comment, now.timeIntervalSince1970])
            try Self.appendAudit(
                db, at: now, actor: approver, action: approve ? "approval" : "rejection", environment: policy.environment,
                runID: runID, detail: "stage \(policy.stage)" + (comment.map { ": \($0)" } ?? ""))
            return policy
        }
    }
}
