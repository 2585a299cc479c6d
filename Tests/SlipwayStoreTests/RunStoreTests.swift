import Foundation
import GRDB
import SlipwayCore
import SlipwayTestSupport
import Testing

@testable import SlipwayStore

@Suite("Run store")
struct RunStoreTests {
    func startRun(_ store: RunStore, pid: Int32 = getpid(), host: String = "this-host", at date: Date = Date()) async throws -> RunRecord {
        try await store.insert(
            RunRecord(
                pipeline: "p.yml", app: "hello", environment: "staging", trigger: Trigger(user: "ann"),
                sha: "abc", version: "1.0.0", startedAt: date, ownerPID: pid, ownerHost: host))
    }

    @Test("a new store is migrated to the current schema, in WAL mode")
    func migratesNewStore() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try RunStore(path: directory.file("nested/state.sqlite"))
        await #expect(
            try store.appliedMigrations() == [
                "v1: runs, stages, steps, events", "v2: changelogs, dirty trees and overrides", "v3: leases, queue, approvals, audit",
                "v4: pushed images", "v5: rollbacks, rehearsals and pins", "v6: overrides as a JSON array", "v7: checklists and sign-offs",
                "v8: gate measurements and run controls", "v9: indexes for status, history and opening",
            ])
        let mode = try await store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test("good releases are the succeeded deploys with an image, newest first; pins are audited")
    func goodReleasesAndPins() async throws {
        let store = try RunStore.inMemory()
        func run(_ version: String, _ outcome: Outcome, image: String?, kind: String = "deploy") async throws -> Int64 {
            var record = RunRecord(
                pipeline: "p.yml", app: "hello", environment: "production", trigger: Trigger(user: "ann"), sha: "s-\(version)",
                version: version, startedAt: Date(), ownerPID: 1, ownerHost: "h")
            record.kind = kind
            record.image = image
            let id = try await store.insert(record).id
            try await store.finish(runID: id, outcome: outcome, exitCode: 0, reason: nil, at: Date())
            return id
        }
        let first = try await run("1.0.0", .succeeded, image: "r/hello@sha256:1")
        _ = try await run("1.1.0", .rolledBack, image: "r/hello@sha256:2")
        _ = try await run("1.1.1", .succeeded, image: nil)
        let third = try await run("1.2.0", .succeeded, image: "r/hello@sha256:3")
        _ = try await run("1.0.0", .succeeded, image: "r/hello@sha256:1", kind: "rollback")
        await #expect(try store.goodReleases(environment: "production").map(\.id) == [third, first])
        await #expect(try store.goodReleases(environment: "production", before: third, limit: 20).map(\.id) == [first])

        await #expect(try store.pin(environment: "production") == nil)
        try await store.pin(environment: "production", runID: third, actor: "ann", reason: "rolled back", at: Date())
        await #expect(try store.pin(environment: "production")?.reason == "rolled back")
        let removed = try await store.unpin(environment: "production", actor: "bob", reason: "fixed", at: Date())
        #expect(removed?.actor == "ann")
        await #expect(try store.pin(environment: "production") == nil)
        await #expect(try store.auditLog(environment: "production").map(\.action) == ["pin", "unpin"])
        await #expect(try store.verifyAudit().isIntact)
    }

    @Test("overrides are kept one by one, commas and all; a v5 store's comma-joined text is kept whole")
    func overridesKeepTheirCommas() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        // A store as v5 left it, with a run whose overrides were comma-joined.
        let queue = try DatabaseQueue(path: directory.file("state.sqlite"))
        try RunStore.migrator.migrate(queue, upTo: "v5: rollbacks, rehearsals and pins")
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO run (pipeline, app, environment, trigger_user, started_at, outcome, owner_pid, owner_host, heartbeat_at, overrides)
                    VALUES ('p.yml', 'hello', 'staging', 'ann', 0, 'succeeded', 1, 'h', 0, 'allow-dirty (2 changed files),freeze x: ok')
                    """)
        }
        try queue.close()
        let store = try RunStore(path: directory.file("state.sqlite"))
        await #expect(try store.run(id: 1)?.overrides == ["allow-dirty (2 changed files),freeze x: ok"])
        var record = try await startRun(store)
        record.overrides = ["freeze 2026-12-24..2026-12-27: fix, urgent", "allow-dirty (1 changed file)"]
        try await store.update(record)
        await #expect(
            try store.run(id: record.id)?.overrides == ["freeze 2026-12-24..2026-12-27: fix, urgent", "allow-dirty (1 changed file)"])
    }

    @Test("reopening a store keeps every record and applies nothing twice")
    func reopenKeepsRecords() async throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let path = directory.file("state.sqlite")
        let store = try RunStore(path: path)
        let run = try await startRun(store)
        try await store.finish(runID: run.id, outcome: .succeeded, exitCode: 0, reason: nil, at: Date())
        let id = run.id
        let reopened = try RunStore(path: path)
        await #expect(try reopened.appliedMigrations().count == RunStore.migrator.migrations.count)
        await #expect(try reopened.run(id: id)?.outcome == .succeeded)
        await #expect(try reopened.detail(runID: id)?.events.map(\.kind) == ["run.started", "run.succeeded"])
    }

    @Test("a store written by a newer deploy is refused rather than misread")
    func refusesNewerSchema() throws {
        let queue = try DatabaseQueue()
        _ = try RunStore(writer: queue)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')")
        }
        #expect(throws: StoreError.self) { try RunStore(writer: queue) }
    }

    @Test("a run whose owner died on this host is marked interrupted, with its open stage and step")
    func reclaimsDeadOwner() async throws {
        let store = try RunStore.inMemory()
        let run = try await startRun(store, pid: 999_999)
        var stage = try await store.insert(StageRecord(runID: run.id, position: 0, name: "build", kind: "run"))
        stage.outcome = .running
        try await store.update(stage)
        var step = try await store.insert(StepRecord(runID: run.id, stageID: stage.id, position: 0, name: "build", command: "make"))
        step.outcome = .running
        step.childPID = 4242
        try await store.update(step)

        let reclaimed = try await store.reclaimAbandonedRuns(host: "this-host", now: Date(), isAlive: { _ in false })

        #expect(reclaimed.map(\.run.id) == [run.id])
        #expect(reclaimed.first?.orphanedChildren == [4242])
        let detail = try await #require(try store.detail(runID: run.id))
        #expect(detail.run.outcome == .interrupted)
        #expect(detail.run.reason?.contains("pid 999999 on this-host") == true)
        #expect(detail.stages.map(\.outcome) == [.interrupted])
        #expect(detail.steps.map(\.outcome) == [.interrupted])
    }

    @Test("a live owner's run is left alone; another host's is reclaimed only once its heartbeat is stale")
    func leavesLiveRuns() async throws {
        let store = try RunStore.inMemory()
        let now = Date()
        let live = try await startRun(store)
        let remoteFresh = try await startRun(store, pid: 1, host: "other", at: now.addingTimeInterval(-10))
        let remoteStale = try await startRun(store, pid: 1, host: "other", at: now.addingTimeInterval(-600))

        let reclaimed = try await store.reclaimAbandonedRuns(host: "this-host", now: now, staleAfter: 60, isAlive: { _ in true })

        #expect(reclaimed.map(\.run.id) == [remoteStale.id])
        #expect(reclaimed.first?.orphanedChildren == [])
        await #expect(try store.run(id: live.id)?.outcome == .running)
        await #expect(try store.run(id: remoteFresh.id)?.outcome == .running)
    }

    @Test("history lists newest first, filtered by environment and limited")
    func history() async throws {
        let store = try RunStore.inMemory()
        for environment in ["staging", "production", "staging"] {
            _ = try await store.insert(
                RunRecord(
                    pipeline: "p", app: "a", environment: environment, trigger: Trigger(user: "u"), sha: nil,
                    version: nil, startedAt: Date(), ownerPID: 1, ownerHost: "h"))
        }
        #expect(try await store.history(limit: 20).map(\.id) == [3, 2, 1])
        await #expect(try store.history(environment: "staging", limit: 1).map(\.id) == [3])
    }

    @Test("waiters keep their place however long the holder runs: a later one never takes an earlier one for dead")
    func queueKeepsItsOrder() async throws {
        let store = try RunStore.inMemory()
        let start = Date(timeIntervalSince1970: 1_000_000)
        func at(_ seconds: Double) -> Date { start.addingTimeInterval(seconds) }
        let alive: @Sendable (Int32) -> Bool = { _ in true }
        #expect(try await store.acquireLease(environment: "e", holder: "h", host: "h", pid: 1, now: at(0), isAlive: alive) == .acquired)
        let first = try await store.enqueue(environment: "e", holder: "a", host: "a", pid: 2, now: at(0))
        let second = try await store.enqueue(environment: "e", holder: "b", host: "b", pid: 3, now: at(1))
        // The holder runs long; both waiters keep asking (the holder's own heartbeat too).
        for tick in stride(from: 30.0, through: 120, by: 30) {
            try await store.heartbeatLease(environment: "e", pid: 1, host: "h", now: at(tick))
            for (ticket, name, pid) in [(first, "a", Int32(2)), (second, "b", Int32(3))] {
                let attempt = try await store.acquireLease(
                    environment: "e", holder: name, host: name, pid: pid, now: at(tick), queueTicket: ticket, isAlive: alive)
                #expect(attempt != .acquired)
            }
        }
        try await store.releaseLease(environment: "e", pid: 1, host: "h")
        // The second waiter asks first once the lease is free: the first is still ahead of it.
        let second1 = try await store.acquireLease(
            environment: "e", holder: "b", host: "b", pid: 3, now: at(125), queueTicket: second, isAlive: alive)
        #expect(second1 == .queued(ahead: 1))
        let first1 = try await store.acquireLease(
            environment: "e", holder: "a", host: "a", pid: 2, now: at(126), queueTicket: first, isAlive: alive)
        #expect(first1 == .acquired)
    }

    @Test("a store another process holds locked past the wait is named, with that process, and nothing half-written")
    func busyStoreNamesItsHolder() async throws {
        let directory = try TemporaryDirectory("store-busy")
        defer { directory.remove() }
        let path = directory.file("state.sqlite")
        let store = try RunStore(path: path, busyTimeout: .seconds(1))
        let run = try await startRun(store)
        // Another process takes the store's write lock and keeps it until released.
        let holder = try StoreLockHolder(path)
        await #expect {
            try await store.append(EventRecord(runID: run.id, at: Date(), kind: .notice, message: "while locked"))
        } throws: { error in
            "\(error)".contains("stayed locked by another process past the wait (open in pid \(holder.pid))")
        }
        try holder.release()
        try await store.append(EventRecord(runID: run.id, at: Date(), kind: .notice, message: "after"))
        #expect(try await store.detail(runID: run.id)?.events.map(\.message).contains("while locked") == false)
    }

    @Test(
        "a write that finds the store locked by another process waits for the lock and is written once, after the attempt that does not wait"
    )
    func lockedStoreWaits() async throws {
        let directory = try TemporaryDirectory("store-wait")
        defer { directory.remove() }
        let path = directory.file("state.sqlite")
        let store = try RunStore(path: path, busyTimeout: .seconds(60))
        let run = try await startRun(store)
        try await store.append(EventRecord(runID: run.id, at: Date(), kind: .notice, message: "unlocked"))
        let holder = try StoreLockHolder(path)
        // Tried on the calling thread without waiting (busy), then on the access queue with the
        // store's own wait, which outlasts the lock.
        let waiting = Task { try await store.append(EventRecord(runID: run.id, at: Date(), kind: .notice, message: "while locked")) }
        try holder.release()
        try await waiting.value
        let messages = try await store.detail(runID: run.id)?.events.map(\.message) ?? []
        #expect(messages.filter { $0 == "while locked" }.count == 1, "\(messages)")
        #expect(messages.contains("unlocked"))
    }
}
