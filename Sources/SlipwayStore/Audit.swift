import Crypto
public import Foundation
public import GRDB
import SlipwayCore

/// One entry of the audit log. Each entry carries the hash of the one before it, so that an
/// edited or removed entry breaks the chain from that point on.
public struct AuditEntry: Codable, Sendable, Hashable, FetchableRecord {
    public var id: Int64
    public var at: Date
    /// Who did it: a user, `ci as …`, or `deploy` itself (for a reclaimed lease).
    public var actor: String
    /// `run.started`, `run.finished`, `approval`, `rejection`, `lock`, `unlock`, `freeze.override`,
    /// `lease.reclaimed`, `override`, `rollback`, `pin`, `unpin`.
    public var action: String
    public var environment: String?
    public var runID: Int64?
    public var detail: String
    public var previousHash: String
    public var hash: String

    enum CodingKeys: String, CodingKey {
        case id, at, actor, action, environment, detail, hash
        case runID = "run_id", previousHash = "previous_hash"
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .timeIntervalSince1970 }

    /// The hash of an entry: SHA-256 over the previous hash and every field, each length-prefixed
    /// so that no two different entries can spell the same input.
    static func hash(
        previous: String, id: Int64, at: Double, actor: String, action: String, environment: String?,
        runID: Int64?, detail: String
    ) -> String {
        var input = ""
        for field in [
            previous, String(id), String(format: "%.6f", at), actor, action, environment ?? "", runID.map(String.init) ?? "", detail,
        ] {
            input += "\(field.utf8.count):\(field);"
        }
        return SHA256.hash(data: Data(input.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// What `deploy audit verify` found.
public enum AuditVerification: Sendable, Hashable, CustomStringConvertible {
    case intact(entries: Int)
    /// The entry's fields no longer match its hash: it was edited.
    case altered(id: Int64)
    /// The entry does not follow the one before it: something between was removed (or inserted).
    case broken(id: Int64, expectedPrevious: Int64)

    public var isIntact: Bool { if case .intact = self { true } else { false } }

    public var description: String {
        switch self {
        case .intact(let count): "audit log intact: \(count) entr\(count == 1 ? "y" : "ies"), every hash chained to the one before"
        case .altered(let id): "audit entry \(id) was altered: its contents no longer match its hash"
        case .broken(let id, let previous):
            "audit entry \(id) does not follow entry \(previous): the entries between were removed, or the chain was rewritten from here"
        }
    }
}

extension RunStore {
    static let genesisHash = String(repeating: "0", count: 64)

    /// Appends an entry to the audit log, chained to the last one, inside the caller's transaction.
    static func appendAudit(
        _ db: Database, at date: Date, actor: String, action: String, environment: String?, runID: Int64?,
        detail: String
    ) throws {
        let last = try Row.fetchOne(db, sql: "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
        let previous: String = last?["hash"] ?? genesisHash
        let id: Int64 = (last?["id"] ?? 0) + 1
        let at = date.timeIntervalSince1970
        let hash = AuditEntry.hash(
            previous: previous, id: id, at: at, actor: actor, action: action, environment: environment,
            runID: runID, detail: detail)
        try db.execute(
            sql: """
                INSERT INTO audit (id, at, actor, action, environment, run_id, detail, previous_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id, at, actor, action, environment, runID, detail, previous, hash])
    }

    /// Appends an entry to the audit log.
    public func audit(actor: String, action: String, environment: String?, runID: Int64?, detail: String, at date: Date)
        async throws
    {
        try await writeImmediate("recording an audit entry") { db in
            try Self.appendAudit(db, at: date, actor: actor, action: action, environment: environment, runID: runID, detail: detail)
        }
    }

    /// The audit log, oldest first, optionally of one environment.
    public func auditLog(environment: String?, limit: Int?) async throws -> [AuditEntry] {
        try await writer.read { db in
            var sql = "SELECT * FROM audit"
            var arguments: StatementArguments = []
            if let environment {
                sql += " WHERE environment = ?"
                arguments = [environment]
            }
            sql += " ORDER BY id"
            let all = try AuditEntry.fetchAll(db, sql: sql, arguments: arguments)
            return limit.map { Array(all.suffix($0)) } ?? all
        }
    }

    /// Recomputes the chain from the first entry and names the first entry that does not hold.
    public func verifyAudit() async throws -> AuditVerification {
        try await writer.read { db in
            var previous = Self.genesisHash
            var previousID: Int64 = 0
            var count = 0
            let rows = try Row.fetchCursor(
                db, sql: "SELECT id, at, actor, action, environment, run_id, detail, previous_hash, hash FROM audit ORDER BY id")
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                let stored: String = row["hash"]
                let recorded: String = row["previous_hash"]
                // A removed entry leaves a gap; an entry rewritten with a fresh hash no longer links on.
                if id != previousID + 1 || recorded != previous { return .broken(id: id, expectedPrevious: previousID) }
                let expected = AuditEntry.hash(
                    previous: recorded, id: id, at: row["at"], actor: row["actor"], action: row["action"], environment: row["environment"],
                    runID: row["run_id"], detail: row["detail"])
                if expected != stored { return .altered(id: id) }
                previous = stored
                previousID = id
                count += 1
            }
            return .intact(entries: count)
        }
    }
}
