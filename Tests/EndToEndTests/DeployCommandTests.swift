import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// Drives the built `deploy` binary as a user would, in a temporary project directory.
@Suite("deploy command", .timeLimit(.minutes(2)))
struct DeployCommandTests {
    static let pipeline = """
        app: hello
        environments:
          staging: {}
        stages:
          - { name: first, run: [echo, first stage] }
          - { name: long, sh: "sleep 300 & echo grandchild $!; echo step-is-$((6*7)); wait" }
          - { name: staging, deploy: staging }
        hooks:
          on-failure: [sh, -c, "echo on-failure hook saw $DEPLOY_OUTCOME"]

        """

    static let quickPipeline = """
        app: hello
        environments:
          staging: {}
        stages:
          - { name: first, run: [echo, first stage] }
          - { name: staging, deploy: staging }

        """

    func project() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("e2e")
        try directory.write("Pipelines/slow.yml", Self.pipeline)
        try directory.write("Pipelines/quick.yml", Self.quickPipeline)
        return directory
    }

    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    @Test("a deploy killed with SIGKILL mid-step is later shown as interrupted, earlier records intact")
    func sigkillLeavesAnInterruptedRun() async throws {
        let directory = try project()
        defer { directory.remove() }
        // Given an earlier successful run
        let first = try await runDeploy(["staging", "--pipeline", "Pipelines/quick.yml"], in: directory.path)
        #expect(first.status == 0)
        let before = try await runDeploy(["show", "1", "--json"], in: directory.path)

        // When a second deploy is killed with SIGKILL while its step runs
        let deploy = try DeployProcess(arguments: ["staging", "--pipeline", "Pipelines/slow.yml"], directory: directory.path)
        #expect(await deploy.waitForLine(containing: "step-is-42"))
        let grandchild = try #require(deploy.number(after: "grandchild "))
        deploy.signal(SIGKILL)
        #expect(try await deploy.wait() == .signalled(SIGKILL))

        // Then history shows it interrupted, and the step's orphaned processes are stopped
        let history = try await runDeploy(["history", "--json"], in: directory.path)
        #expect(history.status == 0)
        // The notes go to stderr, whose lines may arrive between stdout's: read the JSON alone.
        let printed = history.output.split(separator: "\n").filter { !$0.hasPrefix("note: ") }.joined(separator: "\n")
        let jsonStart = try #require(printed.firstIndex(of: "["))
        let runs = try #require(try json(String(printed[jsonStart...])) as? [[String: Any]])
        #expect(runs.map { $0["id"] as? Int } == [2, 1])
        #expect(runs.map { $0["outcome"] as? String } == ["interrupted", "succeeded"])
        #expect((runs[0]["reason"] as? String)?.contains("interrupted: deploy (pid") == true)
        #expect(history.output.contains("note: stopped the process group"))
        #expect(ProcessWatch.waitForExit(grandchild))

        let after = try await runDeploy(["show", "1", "--json"], in: directory.path)
        #expect(after.output == before.output)
        let shown = try await runDeploy(["show", "2"], in: directory.path)
        #expect(shown.output.contains("long [sh] interrupted"))
        #expect(shown.output.contains("staging [deploy] skipped"))
    }

    @Test("SIGTERM cancels the run: exit 130, the step's processes stopped, on-failure hook run")
    func sigtermCancels() async throws {
        let directory = try project()
        defer { directory.remove() }
        let deploy = try DeployProcess(arguments: ["staging", "--pipeline", "Pipelines/slow.yml"], directory: directory.path)
        #expect(await deploy.waitForLine(containing: "step-is-42"))
        let grandchild = try #require(deploy.number(after: "grandchild "))
        deploy.signal(SIGTERM)
        #expect(try await deploy.wait() == .exited(130))
        #expect(ProcessWatch.waitForExit(grandchild))
        #expect(deploy.output.contains { $0.contains("on-failure hook saw cancelled") })
        #expect(deploy.output.contains { $0.contains("run 1 cancelled") && $0.contains("SIGTERM") })

        let logs = try await runDeploy(["logs", "1", "--step", "long"], in: directory.path)
        #expect(logs.output.contains("step-is-42"))
    }

    @Test("validate reports a broken file with its location and exits 2")
    func validateExitsTwo() async throws {
        let directory = try project()
        defer { directory.remove() }
        try directory.write("bad.yml", "app: hello\nstagse: []\n")
        let result = try await runDeploy(["validate", "bad.yml"], in: directory.path)
        #expect(result.status == 2)
        #expect(result.output.contains("bad.yml:2:1: error: unknown key 'stagse' in the pipeline"))
        #expect(result.output.contains("hint: did you mean 'stages'?"))
    }

    @Test("deploy --help lists the exit codes; history on a fresh store is an empty JSON list")
    func helpAndEmptyHistory() async throws {
        let directory = try project()
        defer { directory.remove() }
        let help = try await runDeploy(["--help"], in: directory.path)
        #expect(help.status == 0)
        #expect(help.output.contains("130  cancelled"))
        #expect(help.output.contains("3    deploy failed and was rolled back"))
        let history = try await runDeploy(["history", "--json"], in: directory.path)
        #expect(history.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || history.output.contains("[]"))
    }

    @Test("an unknown environment is a usage error with a suggestion")
    func unknownEnvironment() async throws {
        let directory = try project()
        defer { directory.remove() }
        let result = try await runDeploy(["stagign", "--pipeline", "Pipelines/quick.yml"], in: directory.path)
        #expect(result.status == 2)
        #expect(result.output.contains("has no environment 'stagign'; did you mean 'staging'?"))
    }

    @Test("on a terminal: a live view with colour that ends cleanly; NO_COLOR turns colour off", arguments: [false, true])
    func terminalView(noColor: Bool) async throws {
        let directory = try project()
        defer { directory.remove() }
        // Given a pseudo-terminal (util-linux `script`), outside CI
        let command = [try deployBinary(), "staging", "--pipeline", "Pipelines/quick.yml"].map { "'\($0)'" }.joined(separator: " ")
        // (an empty NO_COLOR does not count, per no-color.org: it also clears one the runner may set)
        let environment = ["CI": "false", "TERM": "xterm-256color", "NO_COLOR": noColor ? "1" : ""]
        let child = try DeployProcess(
            executable: "script", arguments: ["-q", "-e", "-c", command, "/dev/null"],
            directory: directory.path, environment: environment)
        // Then the run succeeds and says so, with colour unless NO_COLOR is set
        #expect(try await child.wait() == .exited(0))
        let output = child.output.joined(separator: "\n")
        #expect(output.contains("run 1 succeeded"))
        #expect(output.contains("(1/2)") && output.contains("stage 1/2"))
        #expect(!output.contains("error"))
        #expect(output.contains("\u{1B}[32m") == !noColor)
    }
}
