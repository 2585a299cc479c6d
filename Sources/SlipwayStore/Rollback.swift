public import Foundation
import GRDB
public import SlipwayCore

/// An environment that automatic deploys leave alone: after a rollback, until someone unpins it
/// or deploys a release by name.
public struct Pin: Sendable, Hashable, Codable {
    public var environment: String
    /// The run that pinned it (the rolled-back deploy or the rollback).
    public var runID: Int64?
    public var actor: String
    public var reason: String
    public var at: Date
}

extension RunStore {
    /// Pins `environment` (replacing an earlier pin) and records it in the audit log.
    public func pin(environment: String, runID: Int64?, actor: String, reason: String, at date: Date) async throws {
        try await writeImmediate("pinning \(environment)") { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO pin (environment, run_id, actor, reason, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [environment, runID, actor, reason, date.timeIntervalSince1970])
            try Self.appendAudit(db, at: date, actor: actor, action: "pin", environment: environment, runID: runID, detail: reason)
        }
    }

    /// Removes the pin, if any, and records who did; returns the pin that was there.
    public func unpin(environment: String, actor: String, reason: String?, at date: Date) async throws -> Pin? {
        try await writeImmediate("unpinning \(environment)") { db in
            guard let pin = try Self.fetchPin(db, environment: environment) else { return nil }
            try db.execute(sql: "DELETE FROM pin WHERE environment = ?", arguments: [environment])
            try Self.appendAudit(
                db, at: date, actor: actor, action: "unpin", environment: environment, runID: pin.runID,
                detail: reason ?? "pinned since \(pin.at.formatted(.iso8601)): \(pin.reason)")
            return pin
        }
    }

    public func pin(environment: String) async throws -> Pin? {
        try await writer.read { db in try Self.fetchPin(db, environment: environment) }
    }

    static func fetchPin(_ db: Database, environment: String) throws -> Pin? {
        try Row.fetchOne(db, sql: "SELECT * FROM pin WHERE environment = ?", arguments: [environment]).map {
            Pin(
                environment: $0["environment"], runID: $0["run_id"], actor: $0["actor"], reason: $0["reason"],
                at: Date(timeIntervalSince1970: $0["at"]))
        }
    }

    /// Releases that passed every gate and their bake in `environment`, newest first: the deploy
    /// runs that succeeded with an image, older than `before` (a run id) when given.
    public func goodReleases(environment: String, before: Int64?, limit: Int) async throws -> [RunRecord] {
        try await writer.read { db in
            try RunRecord.goodReleases(environment: environment, before: before, limit: limit).fetchAll(db)
        }
    }

    /// Records how a run's rollback rehearsal went.
    public func recordRehearsal(runID: Int64, outcome: RehearsalOutcome, milliseconds: Int?, at date: Date) async throws {
        try await write("recording the rollback rehearsal") { db in
            try db.execute(
                sql: "UPDATE run SET rehearsal = ?, rehearsal_ms = ? WHERE id = ?", arguments: [outcome, milliseconds, runID])
            var event = EventRecord(
                runID: runID, at: date, kind: .rehearsal,
                message: "rollback rehearsal \(outcome.rawValue)" + (milliseconds.map { ": rolled back in \($0) ms" } ?? ""))
            try event.insert(db)
        }
    }

    /// Records that a run put back the release of `restoredRunID`, and how long it took.
    public func recordRollback(runID: Int64, restoredRunID: Int64?, milliseconds: Int?) async throws {
        try await write("recording the rollback") { db in
            try db.execute(
                sql: "UPDATE run SET restored_run_id = ?, rollback_ms = ? WHERE id = ?", arguments: [restoredRunID, milliseconds, runID])
        }
    }
}

extension RunStore {
    /// Sets the release a run turned out to ship (a rollback learns it once it has chosen).
    public func setRelease(runID: Int64, version: String?, sha: String?, image: String?) async throws {
        try await write("recording the release of run \(runID)") { db in
            try db.execute(sql: "UPDATE run SET version = ?, sha = ?, image = ? WHERE id = ?", arguments: [version, sha, image, runID])
        }
    }

    /// The newest run that shipped an image for this commit or version (in any environment).
    public func image(sha: String?, version: String?) async throws -> RunRecord? {
        try await read("looking up images") { db in
            if let sha, let run = try RunRecord.filter(Column("sha") == sha && Column("image") != nil).order(Column("id").desc).fetchOne(db)
            {
                return run
            }
            if let version {
                return try RunRecord.filter(Column("version") == version && Column("image") != nil).order(Column("id").desc).fetchOne(db)
            }
            return nil
        }
    }

    /// The newest run that pushed an image of the release `name`: its version, else a commit whose
    /// sha starts with `name` (7 characters at least).
    public func pushedRelease(named name: String) async throws -> RunRecord? {
        try await read("looking up releases") { db in
            if let run = try RunRecord.filter(Column("version") == name && Column("image") != nil).order(Column("id").desc).fetchOne(db) {
                return run
            }
            guard name.count >= 7, name.allSatisfy(\.isHexDigit) else { return nil }
            return try RunRecord.filter(Column("sha").like(name.lowercased() + "%") && Column("image") != nil).order(Column("id").desc)
                .fetchOne(db)
        }
    }

    /// The newest run of `environment` for this commit, whatever its outcome.
    public func latestRun(environment: String, sha: String) async throws -> RunRecord? {
        try await read("reading history") { db in
            try RunRecord.filter(Column("environment") == environment && Column("sha") == sha && Column("kind") == "deploy")
                .order(Column("id").desc).fetchOne(db)
        }
    }
}
