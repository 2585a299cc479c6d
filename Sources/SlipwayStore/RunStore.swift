public import Foundation
import GRDB
public import SlipwayCore

#if canImport(Glibc)
    import Glibc
#endif

/// Everything a store can fail with, each naming what it was doing.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var underlying: String
    /// Another process held the store locked past the wait.
    public var isBusy = false

    public var description: String { "run store: \(operation): \(underlying)" }
}

/// The record of every run: SQLite through GRDB, in WAL mode, migrated on open.
///
/// Writes are small transactions made before and after every step, so a `deploy` killed at any
/// moment leaves a run whose last known state is on disk; ``reclaimAbandonedRuns(now:isAlive:)``
/// later marks such a run `interrupted`.
public final class RunStore: DeployStore {
    let writer: any DatabaseWriter
    /// The wait for another process's write lock, in milliseconds (nil: a busy callback, which
    /// `writeUnlessBusy` could not put back).
    let busyTimeoutMS: Int?

    /// How a command opens the store: a deploy writes (and may create it); a command that only
    /// reads never creates, migrates or changes anything, and works on a file it may only read.
    public enum Access: Sendable {
        case readWrite
        case readOnly
    }

    /// Opens the store at `path` (creating it, for `.readWrite`). A file that is not a Slipway
    /// store (another application's SQLite database, or no database at all) is refused untouched.
    /// `busyTimeout` is how long an access waits while another process holds the database's write
    /// lock (a deploy with `--wait` waits as long as it would wait for the environment).
    public convenience init(path: String, access: Access = .readWrite, busyTimeout: Duration = .seconds(30)) throws {
        let busySeconds = max(busyTimeout / .seconds(1), 1)
        if access == .readOnly {
            guard FileManager.default.fileExists(atPath: path) else {
                throw StoreError(operation: "opening \(path)", underlying: "there is no run store there")
            }
            try Self.recognise(path)
            var config = Configuration()
            config.readonly = true
            config.busyMode = .timeout(busySeconds)
            let queue: DatabaseQueue
            do {
                queue = try Self.openToRead(path, configuration: config)
            } catch {
                throw StoreError(operation: "opening \(path) to read", underlying: "\(error)")
            }
            try self.init(writer: queue, migrate: false)
            return
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var config = Configuration()
        config.busyMode = .timeout(busySeconds)
        config.prepareDatabase { db in
            // NORMAL is durable in WAL mode across a process crash (only power loss can lose the last commits).
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        // Several deploys may open a new store at the same moment: migrate one at a time, under
        // an advisory lock on a file beside the database (GRDB's migrator assumes one process).
        let lock = open(path + ".migrate-lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer {
            if lock >= 0 {
                flock(lock, LOCK_UN)
                Glibc.close(lock)
            }
        }
        // Under the lock, so that a store another deploy is creating right now is not mistaken
        // for someone else's file.
        if FileManager.default.fileExists(atPath: path) { try Self.recognise(path) }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw Self.storeError("opening \(path)", error, path: path)
        }
        try self.init(writer: pool)
    }

    /// A store in memory, for tests and dry runs.
    public static func inMemory() throws -> RunStore {
        try RunStore(writer: DatabaseQueue())
    }

    /// Refuses, before anything is written, a file that is not a Slipway run store: one with
    /// tables but not Slipway's migrations, or not an SQLite database at all.
    static func recognise(_ path: String) throws {
        var config = Configuration()
        config.readonly = true
        let tables: [String]
        let migrations: [String]
        do {
            let queue = try openToRead(path, configuration: config)
            (tables, migrations) = try queue.read { db in
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                let migrations =
                    tables.contains("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
                return (tables, migrations)
            }
            try queue.close()
        } catch {
            throw StoreError(
                operation: "opening \(path)", underlying: "it is not a Slipway run store (SQLite says: \(error)); nothing was changed")
        }
        if !tables.isEmpty, !migrations.contains(Self.firstMigration) {
            let listed = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
            throw StoreError(
                operation: "opening \(path)",
                underlying: "it is not a Slipway run store (it holds tables \(listed)); nothing was changed: name another with --state")
        }
    }

    static let firstMigration = "v1: runs, stages, steps, events"

    /// A read-only connection. A store in WAL mode needs its `-shm` file, which someone who may
    /// only read the store (an auditor) cannot create: then the file is read as immutable, a
    /// snapshot of what is on disk.
    static func openToRead(_ path: String, configuration: Configuration) throws -> DatabaseQueue {
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return queue
        } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY || error.resultCode == .SQLITE_CANTOPEN {
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            let uri = "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? absolute) + "?immutable=1"
            return try DatabaseQueue(path: uri, configuration: configuration)
        }
    }

    /// Wraps any GRDB writer (an in-memory `DatabaseQueue()` in tests) and migrates it; with
    /// `migrate: false` (a read-only store) it checks that no migration is needed instead.
    init(writer: any DatabaseWriter, migrate: Bool = true) throws {
        self.writer = writer
        // What `writeUnlessBusy` puts back after its attempt that does not wait.
        switch writer.configuration.busyMode {
        case .timeout(let seconds): busyTimeoutMS = Int(seconds * 1000)
        case .immediateError: busyTimeoutMS = 0
        case .callback: busyTimeoutMS = nil
        }
        let superseded: Bool
        do {
            superseded = try writer.read { db in try Self.migrator.hasBeenSuperseded(db) }
        } catch {
            throw StoreError(operation: "reading the schema version", underlying: "\(error)")
        }
        if superseded {
            throw StoreError(
                operation: "opening the run store",
                underlying:
                    "it was written by a newer version of deploy, whose records this version cannot read safely; upgrade deploy (this is \(Self.migrator.migrations.last ?? "empty"))"
            )
        }
        guard migrate else {
            let complete = (try? writer.read { db in try Self.migrator.hasCompletedMigrations(db) }) ?? false
            if !complete {
                throw StoreError(
                    operation: "opening the run store to read",
                    underlying: "it was written by an older version of deploy; a command that writes (a deploy) upgrades it first")
            }
            return
        }
        do {
            try Self.migrator.migrate(writer)
        } catch {
            throw Self.storeError("migrating the schema", error, path: writer.path)
        }
    }

    /// The names of the migrations this store has applied, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await read("listing migrations") { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: - Writing a run

    public func insert(_ run: RunRecord) async throws -> RunRecord {
        try await write("recording the start of the run") { db in
            var run = run
            try run.insert(db)
            var event = EventRecord(
                runID: run.id, at: run.startedAt, kind: .runStarted,
                message: "\(run.trigger.description) started \(run.environment) of \(run.app)")
            try event.insert(db)
            return run
        }
    }

    public func update(_ run: RunRecord) async throws {
        try await write("updating the run") { db in try run.update(db) }
    }

    /// Records every stage of a run at its start, so that the record shows the whole pipeline even
    /// if `deploy` dies before reaching the later stages.
    public func insert(_ stages: [StageRecord]) async throws -> [StageRecord] {
        try await write("recording the run's stages") { db in
            try stages.map { stage in
                var stage = stage
                try stage.insert(db)
                return stage
            }
        }
    }

    public func insert(_ stage: StageRecord) async throws -> StageRecord {
        try await write("recording stage \(stage.name)") { db in
            var stage = stage
            try stage.insert(db)
            return stage
        }
    }

    /// Saves a stage, and with it an event, in one transaction.
    public func update(_ stage: StageRecord, event: EventRecord?) async throws {
        try await write("recording stage \(stage.name)") { db in
            try stage.update(db)
            if var event { try event.insert(db) }
        }
    }

    public func insert(_ step: StepRecord, event: EventRecord?) async throws -> StepRecord {
        try await write("recording step \(step.name)") { db in
            var step = step
            try step.insert(db)
            if var event { try event.insert(db) }
            return step
        }
    }

    /// Saves a step, and with it an event, in one transaction.
    public func update(_ step: StepRecord, event: EventRecord?) async throws {
        try await write("recording step \(step.name)") { db in
            try step.update(db)
            if var event { try event.insert(db) }
        }
    }

    public func append(_ event: EventRecord) async throws {
        try await write("recording an event") { db in
            var event = event
            try event.insert(db)
        }
    }

    /// Records a step's start in one transaction: its stage's start too (for a stage's first step),
    /// the step itself, and the events saying so.
    public func start(_ step: StepRecord, stage: StageRecord?, events: [EventRecord]) async throws -> StepRecord {
        try await write("recording step \(step.name)") { db in
            if let stage { try Self.save(stage, db) }
            var step = step
            try db.cachedStatement(
                sql: """
                    INSERT INTO step (run_id, stage_id, position, name, command, outcome, attempts, started_at, output,
                                      output_bytes, output_truncated)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0)
                    """
            ).execute(arguments: [
                step.runID, step.stageID, step.position, step.name, step.command, step.outcome, step.attempts,
                step.startedAt?.timeIntervalSince1970,
            ])
            step.storedID = db.lastInsertedRowID
            for event in events { try Self.save(event, db) }
            return step
        }
    }

    /// Records a step's end in one transaction: the step, its stage's end too (for a stage's last
    /// step), and the events saying so.
    public func finish(_ step: StepRecord, stage: StageRecord?, events: [EventRecord]) async throws {
        try await write("recording step \(step.name)") { db in
            try db.cachedStatement(
                sql: """
                    UPDATE step SET outcome = ?, exit_code = ?, attempts = ?, ended_at = ?, duration_ms = ?, output = ?,
                                    output_bytes = ?, output_truncated = ?, child_pid = ?
                    WHERE id = ?
                    """
            ).execute(arguments: [
                step.outcome, step.exitCode, step.attempts, step.endedAt?.timeIntervalSince1970, step.durationMS,
                step.output, step.outputBytes, step.outputTruncated, step.childPID, step.id,
            ])
            if let stage { try Self.save(stage, db) }
            for event in events { try Self.save(event, db) }
        }
    }

    // The hot path writes with cached statements: a step costs two short transactions.

    private static func save(_ stage: StageRecord, _ db: Database) throws {
        try db.cachedStatement(sql: "UPDATE stage SET outcome = ?, started_at = ?, ended_at = ?, reason = ? WHERE id = ?")
            .execute(arguments: [
                stage.outcome, stage.startedAt?.timeIntervalSince1970, stage.endedAt?.timeIntervalSince1970,
                stage.reason, stage.id,
            ])
    }

    private static func save(_ event: EventRecord, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO event (run_id, at, kind, stage, step, message) VALUES (?, ?, ?, ?, ?, ?)")
            .execute(arguments: [event.runID, event.at.timeIntervalSince1970, event.kind, event.stage, event.step, event.message])
    }

    /// Records the pid of a step's child, so that a later `deploy` can stop what a killed run left
    /// behind.
    public func recordChild(pid: Int32, stepID: Int64) async throws {
        try await write("recording a child pid") { db in
            try db.execute(sql: "UPDATE step SET child_pid = ? WHERE id = ?", arguments: [pid, stepID])
        }
    }

    /// Records that the run's owner is still alive.
    public func heartbeat(runID: Int64, at now: Date) async throws {
        try await write("recording a heartbeat") { db in
            try db.execute(
                sql: "UPDATE run SET heartbeat_at = ? WHERE id = ? AND outcome = 'running'", arguments: [now.timeIntervalSince1970, runID])
        }
    }

    /// Ends a run: the run itself, any stage or step still open, and a closing event, atomically.
    public func finish(runID: Int64, outcome: Outcome, exitCode: Int, reason: String?, at now: Date) async throws {
        try await write("recording the end of the run") { db in
            try Self.close(runID: runID, outcome: outcome, exitCode: exitCode, reason: reason, at: now, db: db)
        }
    }

    private static func close(runID: Int64, outcome: Outcome, exitCode: Int?, reason: String?, at now: Date, db: Database) throws {
        try db.execute(
            sql: "UPDATE run SET outcome = ?, exit_code = ?, reason = ?, ended_at = ? WHERE id = ?",
            arguments: [outcome, exitCode, reason, now.timeIntervalSince1970, runID])
        let open = outcome == .succeeded ? Outcome.skipped : outcome
        try db.execute(
            sql: "UPDATE step SET outcome = ?, ended_at = ? WHERE run_id = ? AND outcome = 'running'",
            arguments: [open, now.timeIntervalSince1970, runID])
        try db.execute(
            sql: "UPDATE stage SET outcome = ?, ended_at = ? WHERE run_id = ? AND outcome = 'running'",
            arguments: [open, now.timeIntervalSince1970, runID])
        try db.execute(
            sql: "UPDATE stage SET outcome = 'skipped' WHERE run_id = ? AND outcome = 'pending'", arguments: [runID])
        var event = EventRecord(runID: runID, at: now, kind: .ended(.run, outcome), message: reason ?? outcome.rawValue)
        try event.insert(db)
    }

    // MARK: - Abandoned runs

    /// Marks `interrupted` every run still `running` whose owner is gone: on this host a pid that is
    /// no longer alive, anywhere a heartbeat older than `staleAfter`. Returns the runs it marked.
    @discardableResult
    public func reclaimAbandonedRuns(
        host: String, now: Date, staleAfter: TimeInterval, isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> [Reclaimed] {
        let running = try await read("listing running runs") { db in
            try RunRecord.running.fetchAll(db)
        }
        let dead = running.filter { run in
            if run.ownerHost == host && !isAlive(run.ownerPID) { return true }
            return now.timeIntervalSince(run.heartbeatAt) > staleAfter
        }
        guard !dead.isEmpty else { return [] }
        return try await write("marking abandoned runs interrupted") { db in
            var marked: [Reclaimed] = []
            for run in dead {
                // Re-check inside the transaction: another process may have finished or reclaimed it.
                guard var current = try RunRecord.fetchOne(db, key: run.id), current.outcome == .running else { continue }
                let children = try Int32.fetchAll(
                    db,
                    sql: """
                        SELECT child_pid FROM step WHERE run_id = ? AND outcome = 'running' AND child_pid IS NOT NULL
                        """, arguments: [run.id])
                let reason =
                    "interrupted: deploy (pid \(run.ownerPID) on \(run.ownerHost)) stopped without recording an end; last heartbeat \(ISO8601DateFormatter().string(from: run.heartbeatAt))"
                try Self.close(runID: run.id, outcome: .interrupted, exitCode: nil, reason: reason, at: now, db: db)
                current.outcome = .interrupted
                current.reason = reason
                current.endedAt = now
                marked.append(Reclaimed(run: current, orphanedChildren: run.ownerHost == host ? children : []))
            }
            return marked
        }
    }

    // MARK: - Reading

    /// The newest runs first, optionally of one environment.
    public func history(environment: String?, limit: Int) async throws -> [RunRecord] {
        try await read("reading history") { db in
            try RunRecord.newest(environment: environment, limit: limit).fetchAll(db)
        }
    }

    public func run(id: Int64) async throws -> RunRecord? {
        try await read("reading run \(id)") { db in try RunRecord.fetchOne(db, key: id) }
    }

    public func detail(runID: Int64) async throws -> RunDetail? {
        try await read("reading run \(runID)") { db in
            guard let run = try RunRecord.fetchOne(db, key: runID) else { return nil }
            let stages = try StageRecord.filter(Column("run_id") == runID).order(Column("position")).fetchAll(db)
            let steps = try StepRecord.filter(Column("run_id") == runID).order(Column("stage_id"), Column("position")).fetchAll(db)
            let events = try EventRecord.filter(Column("run_id") == runID).order(Column("id")).fetchAll(db)
            return RunDetail(run: run, stages: stages, steps: steps, events: events)
        }
    }

    /// Records the image a run pushed, by digest.
    public func recordImage(runID: Int64, reference: String, at date: Date) async throws {
        try await write("recording the pushed image") { db in
            try db.execute(sql: "UPDATE run SET image = ? WHERE id = ?", arguments: [reference, runID])
            var event = EventRecord(runID: runID, at: date, kind: .imagePushed, message: reference)
            try event.insert(db)
        }
    }

    /// Saves a run's changelog (Markdown and JSON) beside it.
    public func saveChangelog(runID: Int64, baseKind: String, baseSHA: String?, commitCount: Int, markdown: String, json: String)
        async throws
    {
        try await write("recording the changelog") { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO changelog (run_id, base_kind, base_sha, commit_count, markdown, json) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [runID, baseKind, baseSHA, commitCount, markdown, json])
        }
    }

    /// A run's changelog as Markdown and JSON, if one was recorded.
    public func changelog(runID: Int64) async throws -> (markdown: String, json: String)? {
        try await read("reading the changelog of run \(runID)") { db in
            try Row.fetchOne(db, sql: "SELECT markdown, json FROM changelog WHERE run_id = ?", arguments: [runID])
                .map { ($0["markdown"], $0["json"]) }
        }
    }

    /// The newest succeeded run of `environment` that shipped `sha`, if any.
    public func lastSucceeded(environment: String, sha: String?) async throws -> RunRecord? {
        try await read("reading history") { db in
            try RunRecord.lastSucceeded(environment: environment, sha: sha).fetchOne(db)
        }
    }
}
