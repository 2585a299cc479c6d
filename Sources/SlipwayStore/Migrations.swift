import GRDB

extension RunStore {
    /// Append-only, named migrations: never edit one that has shipped; add another.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Timestamps are stored as seconds since 1970 (UTC) in REAL columns:
        // `SELECT datetime(started_at, 'unixepoch')` reads them in the sqlite3 shell.
        migrator.registerMigration("v1: runs, stages, steps, events") { db in
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("pipeline", .text).notNull()
                t.column("app", .text).notNull()
                t.column("environment", .text).notNull().indexed()
                t.column("trigger_user", .text).notNull()
                t.column("trigger_ci", .text)
                t.column("trigger_url", .text)
                t.column("sha", .text)
                t.column("version", .text)
                t.column("started_at", .double).notNull()
                t.column("ended_at", .double)
                t.column("outcome", .text).notNull()
                t.column("exit_code", .integer)
                t.column("reason", .text)
                t.column("owner_pid", .integer).notNull()
                t.column("owner_host", .text).notNull()
                t.column("heartbeat_at", .double).notNull()
            }
            try db.create(table: "stage") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("started_at", .double)
                t.column("ended_at", .double)
                t.column("reason", .text)
            }
            try db.create(table: "step") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("stage_id", .integer).notNull().indexed().references("stage", onDelete: .cascade)
                t.column("position", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("command", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("exit_code", .integer)
                t.column("attempts", .integer).notNull()
                t.column("started_at", .double)
                t.column("ended_at", .double)
                t.column("duration_ms", .integer)
                t.column("output", .text).notNull()
                t.column("output_bytes", .integer).notNull()
                t.column("output_truncated", .boolean).notNull()
                t.column("child_pid", .integer)
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().indexed().references("run", onDelete: .cascade)
                t.column("at", .double).notNull()
                t.column("kind", .text).notNull()
                t.column("stage", .text)
                t.column("step", .text)
                t.column("message", .text).notNull()
            }
        }
        migrator.registerMigration("v2: changelogs, dirty trees and overrides") { db in
            try db.alter(table: "run") { t in
                t.add(column: "dirty", .boolean).notNull().defaults(to: false)
                // Overrides the trigger asked for, comma-separated (`allow-dirty`).
                t.add(column: "overrides", .text).notNull().defaults(to: "")
            }
            try db.create(table: "changelog") { t in
                t.primaryKey("run_id", .integer).references("run", onDelete: .cascade)
                t.column("base_kind", .text).notNull()
                t.column("base_sha", .text)
                t.column("commit_count", .integer).notNull()
                t.column("markdown", .text).notNull()
                // The whole changelog (commits, risk report) as JSON, for `deploy show --json`.
                t.column("json", .text).notNull()
            }
        }
        registerControlMigration(&migrator)
        migrator.registerMigration("v4: pushed images") { db in
            try db.alter(table: "run") { t in
                // `registry/app@sha256:…` as pushed: what later deploys of this release run.
                t.add(column: "image", .text)
            }
        }
        migrator.registerMigration("v5: rollbacks, rehearsals and pins") { db in
            try db.alter(table: "run") { t in
                t.add(column: "kind", .text).notNull().defaults(to: "deploy")
                t.add(column: "restored_run_id", .integer)
                t.add(column: "rehearsal", .text)
                t.add(column: "rehearsal_ms", .integer)
                t.add(column: "rollback_ms", .integer)
            }
            try db.create(table: "pin") { t in
                t.primaryKey("environment", .text)
                t.column("run_id", .integer)
                t.column("actor", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("at", .double).notNull()
            }
        }
        migrator.registerMigration("v6: overrides as a JSON array") { db in
            // They were comma-joined, and an override's own text can hold commas: each old value is
            // kept whole as one element, since it cannot be split back reliably.
            try db.execute(
                sql: "UPDATE run SET overrides = CASE WHEN overrides = '' THEN '[]' ELSE json_array(overrides) END")
        }
        registerChecklistMigration(&migrator)
        registerAnalysisMigration(&migrator)
        RunRecord.registerIndexMigration(&migrator)
        return migrator
    }
}
