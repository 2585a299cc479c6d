internal import GRDB
import SlipwayCore

/// The run queries the commands an on-call engineer types first (`status`, `history`, and every
/// store opening) run on stores of years of deploys: each is answered from an index (migration v9),
/// never by reading the whole `run` table or sorting it; `RunQueryPlanTests` holds them to that
/// with `EXPLAIN QUERY PLAN`.
extension RunRecord {
    /// The newest runs first, optionally of one environment: the `run_on_environment` index holds
    /// each environment's runs in id order, the table itself all of them.
    static func newest(environment: String?, limit: Int) -> QueryInterfaceRequest<RunRecord> {
        var request = RunRecord.order(Column("id").desc).limit(limit)
        if let environment { request = request.filter(Column("environment") == environment) }
        return request
    }

    /// The newest run of `environment` that succeeded (of `sha`, when given): `run_by_outcome`.
    static func lastSucceeded(environment: String, sha: String?) -> QueryInterfaceRequest<RunRecord> {
        var request = RunRecord.filter(Column("environment") == environment && Column("outcome") == Outcome.succeeded)
        if let sha { request = request.filter(Column("sha") == sha) }
        return request.order(Column("id").desc)
    }

    /// Runs still marked running (every read-write opening looks for dead ones): `run_running`,
    /// an index of just those. (A literal, not a bound value: SQLite uses a partial index only for
    /// a term it can see implies the index's own condition.)
    static var running: QueryInterfaceRequest<RunRecord> {
        RunRecord.filter(sql: "outcome = 'running'")
    }

    /// Releases that passed in `environment`, newest first, older than `before` when given
    /// (rollback's candidates): `run_by_outcome`.
    static func goodReleases(environment: String, before: Int64?, limit: Int) -> QueryInterfaceRequest<RunRecord> {
        var request = RunRecord.filter(
            Column("environment") == environment && Column("outcome") == Outcome.succeeded && Column("kind") == "deploy"
                && Column("image") != nil)
        if let before { request = request.filter(Column("id") < before) }
        return request.order(Column("id").desc).limit(limit)
    }

    static func registerIndexMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9: indexes for status, history and opening") { db in
            // (environment, outcome) then the rowid: the newest succeeded run of an environment is
            // the last entry of its range.
            try db.create(index: "run_by_outcome", on: "run", columns: ["environment", "outcome"])
            // Only the runs in flight: a handful, whatever the history's length.
            try db.create(index: "run_running", on: "run", columns: ["id"], condition: Column("outcome") == "running")
        }
    }
}
