import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// Approvals, locks and the audit log, driven through the `deploy` binary by several processes.
@Suite("deploy control", .timeLimit(.minutes(3)))
struct ControlCommandTests {
    func project(_ pipeline: String) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("control")
        try directory.write("slipway.yml", pipeline)
        return directory
    }

    @Test("another process approves while the deploy waits; the triggering user may not when the pipeline says so")
    func approvalByAnotherProcess() async throws {
        let directory = try project(
            """
            app: hello
            environments:
              production: { approval: { approvers: 1, distinct_from_trigger: true, timeout: 2m } }
            stages:
              - { name: sign-off, approval: production }
              - { name: production, deploy: production }

            """)
        defer { directory.remove() }
        let deploy = try DeployProcess(arguments: ["production"], directory: directory.path, environment: ["SLIPWAY_USER": "alice"])
        #expect(await deploy.waitForLine(containing: "approve: deploy approve 1"))

        let own = try await runDeploy(["approve", "1"], in: directory.path, environment: ["SLIPWAY_USER": "alice"])
        #expect(own.status == 1)
        #expect(own.output.contains("alice started run 1, and production needs someone else to approve it"))

        let other = try await runDeploy(["approve", "1", "--as", "bob", "--comment", "ship it"], in: directory.path)
        #expect(other.status == 0)
        #expect(try await deploy.wait() == .exited(0))

        let show = try await runDeploy(["show", "1"], in: directory.path)
        #expect(show.output.contains("sign-off [approval] succeeded"))
        #expect(show.output.contains("approved by bob"))
        let audit = try await runDeploy(["audit", "--json"], in: directory.path)
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(audit.output.utf8)) as? [[String: Any]])
        #expect(entries.map { $0["action"] as? String } == ["run.started", "approval", "run.finished"])
        #expect(entries[1]["actor"] as? String == "bob")
    }

    @Test("a rejection fails the run before the environment changes")
    func rejection() async throws {
        let directory = try project(
            """
            app: hello
            environments:
              production: {}
            stages:
              - { name: sign-off, approval: production }
              - { name: production, deploy: production }

            """)
        defer { directory.remove() }
        let deploy = try DeployProcess(arguments: ["production"], directory: directory.path)
        #expect(await deploy.waitForLine(containing: "approve: deploy approve 1"))
        #expect(try await runDeploy(["reject", "1", "--as", "carol", "--comment", "not during the sale"], in: directory.path).status == 0)
        #expect(try await deploy.wait() == .exited(1))
        #expect(deploy.output.contains { $0.contains("rejected by carol: not during the sale") })
    }

    @Test("20 concurrent deploys of one environment run one at a time, in turn, and all are recorded")
    func twentyConcurrentDeploys() async throws {
        let directory = try project(
            """
            app: hello
            environments:
              staging: {}
            stages:
              - name: exclusive
                sh: |
                  mkdir "$INSIDE" || { echo "another deploy is inside"; exit 1; }
                  i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done
                  rmdir "$INSIDE"
              - { name: staging, deploy: staging }

            """)
        defer { directory.remove() }
        let inside = directory.file("inside")
        let deploys = try (0..<20).map { _ in
            try DeployProcess(arguments: ["staging", "--wait", "2m"], directory: directory.path, environment: ["INSIDE": inside])
        }
        var statuses: [ProcessTermination] = []
        for deploy in deploys { statuses.append(try await deploy.wait()) }
        #expect(statuses.allSatisfy { $0 == .exited(0) })

        let history = try await runDeploy(["history", "--limit", "50", "--json"], in: directory.path)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]])
        #expect(runs.count == 20)
        #expect(runs.allSatisfy { $0["outcome"] as? String == "succeeded" })
        // No two runs' recorded lifetimes overlap (run ids are given after the lease is taken, so
        // they follow the order the runs held it; the store keeps timestamps to the microsecond).
        let rows = try await GitFixture.run(
            ["sqlite3", directory.file(".slipway/state.sqlite"), "SELECT started_at || ' ' || ended_at FROM run ORDER BY id"],
            in: directory.path)
        let spans = rows.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
        #expect(spans.count == 20 && spans.allSatisfy { $0.count == 2 })
        for (earlier, later) in zip(spans, spans.dropFirst()) { #expect(earlier[1] <= later[0]) }
    }

    @Test("a lease whose holder was killed with SIGKILL is reclaimed by the next deploy, and the audit log says so")
    func deadHolderIsReclaimed() async throws {
        let directory = try project(
            """
            app: hello
            environments:
              staging: {}
            stages:
              - { name: long, sh: "echo holding-$((20+22)); sleep 300" }
              - { name: staging, deploy: staging }

            """)
        defer { directory.remove() }
        let holder = try DeployProcess(arguments: ["staging"], directory: directory.path)
        #expect(await holder.waitForLine(containing: "holding-42"))

        let blocked = try await runDeploy(["staging"], in: directory.path)
        #expect(blocked.status == 4)
        #expect(blocked.output.contains("staging is being deployed by"))

        // A queued deploy stops waiting at Ctrl-C, having run and recorded nothing
        let waiter = try DeployProcess(arguments: ["staging", "--wait", "10m"], directory: directory.path)
        #expect(await waiter.waitForLine(containing: "waiting for staging: held by"))
        waiter.signal(SIGINT)
        #expect(try await waiter.wait() == .exited(130))
        #expect(waiter.output.contains { $0.contains("stopped waiting for staging (SIGINT (Ctrl-C)): nothing ran") })

        holder.signal(SIGKILL)
        #expect(try await holder.wait() == .signalled(SIGKILL))
        let lock = try await runDeploy(["lock", "staging", "--reason", "incident 7"], in: directory.path)
        #expect(lock.status == 0)
        let frozen = try await runDeploy(["staging"], in: directory.path)
        #expect(frozen.status == 4)
        #expect(frozen.output.contains("staging is locked by") && frozen.output.contains("incident 7"))
        #expect(try await runDeploy(["unlock", "staging"], in: directory.path).status == 0)

        let audit = try await runDeploy(["audit", "--env", "staging", "--json"], in: directory.path)
        let actions = try #require(try JSONSerialization.jsonObject(with: Data(audit.output.utf8)) as? [[String: Any]]).map {
            $0["action"] as? String
        }
        #expect(actions == ["run.started", "lease.reclaimed", "lock", "unlock"])
        #expect(try await runDeploy(["audit", "verify"], in: directory.path).status == 0)
    }

    @Test("audit verify names an entry edited, or removed, with the sqlite3 CLI")
    func auditTampering() async throws {
        let directory = try project(
            """
            app: hello
            environments:
              staging: {}
            stages:
              - { name: staging, deploy: staging }

            """)
        defer { directory.remove() }
        for _ in 0..<3 { #expect(try await runDeploy(["staging"], in: directory.path).status == 0) }
        let intact = try await runDeploy(["audit", "verify"], in: directory.path)
        #expect(intact.output.contains("audit log intact: 6 entries"))

        let store = directory.file(".slipway/state.sqlite")
        _ = try await GitFixture.run(["sqlite3", store, "UPDATE audit SET actor = 'mallory' WHERE id = 3"], in: directory.path)
        let edited = try await runDeploy(["audit", "verify"], in: directory.path)
        #expect(edited.status == 1)
        #expect(edited.output.contains("audit entry 3 was altered"))

        _ = try await GitFixture.run(["sqlite3", store, "DELETE FROM audit WHERE id = 3"], in: directory.path)
        let removed = try await runDeploy(["audit", "verify"], in: directory.path)
        #expect(removed.status == 1)
        #expect(removed.output.contains("audit entry 4 does not follow entry 2"))
    }
}
