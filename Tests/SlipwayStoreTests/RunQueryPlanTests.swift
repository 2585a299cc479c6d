import Foundation
import GRDB
import SlipwayCore
import SlipwayTestSupport
import Testing

@testable import SlipwayStore

/// The queries `status`, `history` and every store opening run are answered from an index on a
/// store of years of deploys: SQLite's own plan for each (`EXPLAIN QUERY PLAN`, on a migrated
/// store with 2,000 runs and fresh statistics) searches an index and never sorts.
@Suite("Run store query plans")
struct RunQueryPlanTests {
    /// The plan's lines for `request`, as SQLite would run it.
    func plan(_ request: QueryInterfaceRequest<RunRecord>, in db: Database) throws -> [String] {
        let statement = try request.makePreparedRequest(db, forSingleResult: false).statement
        return try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + statement.sql, arguments: statement.arguments)
            .map { $0["detail"] as String }
    }

    @Test("status, history, rollback's candidates and the search for dead runs each use an index and never sort")
    func indexed() async throws {
        let directory = try TemporaryDirectory("query-plan")
        defer { directory.remove() }
        let store = try RunStore(path: directory.file("state.sqlite"))
        try await store.writer.write { db in
            // Four environments, most runs succeeded, a few running: what the planner would see.
            for id in 1...2000 {
                try db.execute(
                    sql: """
                        INSERT INTO run (id, pipeline, app, environment, trigger_user, started_at, outcome, owner_pid, owner_host,
                                         heartbeat_at, image, kind, sha)
                        VALUES (?, 'p.yml', 'app', ?, 'ci', ?, ?, 1, 'host', ?, 'image@sha256:x', 'deploy', ?)
                        """,
                    arguments: [
                        id, ["staging", "production", "qa", "preview"][id % 4], Double(id),
                        id % 500 == 0 ? "running" : id % 10 == 0 ? "failed" : "succeeded",
                        Double(id), String(id, radix: 16),
                    ])
            }
            try db.execute(sql: "ANALYZE")
        }
        let plans = try await store.writer.read { db in
            [
                "history of one environment": try plan(RunRecord.newest(environment: "production", limit: 20), in: db),
                "status: latest run": try plan(RunRecord.newest(environment: "production", limit: 1), in: db),
                "status: last good": try plan(RunRecord.lastSucceeded(environment: "production", sha: nil), in: db),
                "rollback: last good of a sha": try plan(RunRecord.lastSucceeded(environment: "production", sha: "7d0"), in: db),
                "rollback: candidates": try plan(RunRecord.goodReleases(environment: "production", before: 1500, limit: 10), in: db),
                "opening: runs in flight": try plan(RunRecord.running, in: db),
            ]
        }
        for (query, lines) in plans {
            // SEARCH: a range of an index; the only SCAN allowed is of `run_running`, an index of
            // just the runs in flight.
            #expect(
                lines.contains { ($0.hasPrefix("SEARCH run USING") && $0.contains("INDEX")) || $0 == "SCAN run USING INDEX run_running" },
                "\(query): \(lines)")
            #expect(
                !lines.contains { $0.hasPrefix("SCAN run") && !$0.hasSuffix("run_running") }, "\(query) reads the whole table: \(lines)")
            #expect(!lines.contains { $0.contains("TEMP B-TREE") }, "\(query) sorts: \(lines)")
        }
        #expect(plans["status: last good"]?.contains { $0.contains("run_by_outcome") } == true)
        #expect(plans["opening: runs in flight"]?.contains { $0.contains("run_running") } == true)

        // All runs, newest first: the table's own order (its rowid), read from the end and
        // stopped at the limit, with no sort.
        let all = try await store.writer.read { db in try plan(RunRecord.newest(environment: nil, limit: 20), in: db) }
        #expect(all == ["SCAN run"], "\(all)")
    }
}
