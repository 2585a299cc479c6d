import Foundation
import SlipwayCore
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// `deploy` killed with SIGKILL at every stage of a multi-stage pipeline, the process alone and its
/// whole process group: each time, what a user relies on afterwards must hold.
@Suite("SIGKILL at every stage", .timeLimit(.minutes(4)))
struct SigkillSweepTests {
    /// Four stages; the one `KILL_AT` names starts a background child that runs until stopped
    /// (`tail -f /dev/null`), says so, and waits for it (the test kills deploy there); the others
    /// pass at once.
    static let pipeline = """
        app: hello
        environments: { staging: {} }
        stages:
          - { name: lint, sh: 'if [ "$KILL_AT" = 1 ]; then tail -f /dev/null & echo "stop""ped-at lint child $!"; wait; fi' }
          - name: test
            steps:
              - { name: unit, sh: 'if [ "$KILL_AT" = 2 ]; then tail -f /dev/null & echo "stop""ped-at unit child $!"; wait; fi' }
              - { name: e2e, sh: 'if [ "$KILL_AT" = 3 ]; then tail -f /dev/null & echo "stop""ped-at e2e child $!"; wait; fi' }
          - { name: package, sh: 'if [ "$KILL_AT" = 4 ]; then tail -f /dev/null & echo "stop""ped-at package child $!"; wait; fi' }
          - { name: staging, deploy: staging }

        """

    enum Kill: String, CaseIterable, Sendable {
        case process, group
    }

    @Test(
        "killed at each stage, by process or process group: interrupted, earlier records intact, store ok, nothing left, next deploy runs")
    func sweep() async throws {
        let directory = try TemporaryDirectory("sigkill-sweep")
        defer { directory.remove() }
        _ = try directory.write("slipway.yml", Self.pipeline)
        let first = try await runDeploy(["staging"], in: directory.path, environment: ["KILL_AT": "0"])
        try #require(first.status == 0, "\(first.output)")
        var earlier: [Int: String] = [1: try await runDeploy(["show", "1", "--json"], in: directory.path).output]
        var nextRun = 2
        for point in 1...4 {
            for kill in Kill.allCases {
                let deploy = try DeployProcess(arguments: ["staging"], directory: directory.path, environment: ["KILL_AT": String(point)])
                #expect(await deploy.waitForLine(containing: "stopped-at "), "point \(point): \(deploy.output)")
                let child = try #require(deploy.number(after: " child "), "point \(point): \(deploy.output)")
                let pid = try #require(deploy.pid)
                switch kill {
                case .process: deploy.signal(SIGKILL)
                case .group: Foundation.kill(-pid, SIGKILL)
                }
                #expect(try await deploy.wait() == .signalled(SIGKILL))
                let killedRun = nextRun

                // The next command marks the run interrupted and stops what its step left running.
                let history = try await runDeploy(["history", "--json"], in: directory.path)
                #expect(history.status == 0, "\(history.output)")
                #expect(history.output.contains("note: run \(killedRun) (staging) was interrupted"), "\(history.output)")
                #expect(ProcessWatch.waitForExit(child), "point \(point), \(kill): the step's child \(child) is still running")
                let shown = try await runDeploy(["show", String(killedRun), "--json"], in: directory.path)
                #expect(shown.output.contains("\"outcome\" : \"interrupted\""), "\(shown.output)")

                // Earlier records are byte for byte what they were; the store is sound.
                for (run, before) in earlier {
                    #expect(try await runDeploy(["show", String(run), "--json"], in: directory.path).output == before, "run \(run)")
                }
                let check = try await GitFixture.run(
                    ["sqlite3", ".slipway/state.sqlite", "PRAGMA integrity_check"], in: directory.path, environment: [:])
                #expect(check == "ok")
                earlier[killedRun] = shown.output

                // And the next deploy goes ahead.
                let next = try await runDeploy(["staging"], in: directory.path, environment: ["KILL_AT": "0"])
                #expect(next.status == 0, "point \(point), \(kill): \(next.output)")
                earlier[killedRun + 1] = try await runDeploy(["show", String(killedRun + 1), "--json"], in: directory.path).output
                nextRun += 2
            }
        }
    }
}
