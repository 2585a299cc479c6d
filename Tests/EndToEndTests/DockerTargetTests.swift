import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Real deploys of the example app: podman behind the docker CLI, a registry, nginx in front,
/// HTTP gates, on this machine. The suite shares one podman service and registry; each test has
/// its own app, ports, nginx and containers, and takes them all down at the end.
/// The tests run one after another: side by side on a two-core machine, with the rest of the
/// suite running too, image builds took over 30 s and nginx's first start over 10 s.
@Suite("deploy to a docker target behind nginx", .timeLimit(.minutes(8)), .sharedContainerServices, .serialized)
struct DockerTargetTests {
    /// A git repository holding the example app and a pipeline with two docker environments.
    struct Project {
        let repo: GitFixture
        let services: ContainerServices
        let app: String
        let staging: UInt16
        let production: UInt16
        let environment: [String: String]

        static func make(
            _ services: ContainerServices, strategy production: String, stagingGates: String = "[health]", rehearse: Bool = false,
            moreGates: String = ""
        ) async throws -> Project {
            let repo = try await GitFixture("docker-target")
            let app = "hello\(UUID().uuidString.prefix(6).lowercased())"
            let staging = try ContainerServices.freePort()
            let productionPort = try ContainerServices.freePort()
            try ExampleApp.copy(into: repo)
            try repo.directory.write(".gitignore", ".slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n")
            try repo.directory.write(
                "slipway.yml",
                """
                app: \(app)
                image: \(services.registry)/\(app)
                environments:
                  staging:
                    target: { docker: { listen: "127.0.0.1:\(staging)" } }
                    strategy: { blue_green: { bake: 1s } }
                    gates: \(stagingGates)
                    rehearse_rollback: \(rehearse)
                  production:
                    target: { docker: { listen: "127.0.0.1:\(productionPort)" } }
                    promote_from: staging
                    require_clean_tree: false
                    strategy: \(production)
                    gates: [health]
                stages:
                  - { name: prepare, run: [Examples/hello/prepare] }
                  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "${VERSION}" }, no_cache: true } }
                  - { name: push, push: {} }
                  - { name: staging, deploy: staging }
                  - { name: production, deploy: production }
                gates:
                  health: { http: { url: "${TARGET_URL}/health", status: 200, within: 2s }, every: 100ms, times: 3 }
                  # Fails for a release the test marks bad after the fact (a file in .slipway/).
                  marker: { command: [test, "!", -e, ".slipway/${VERSION}.bad"] }
                \(moreGates)
                """)
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello")
            try await repo.git("tag", "v1.0.0")
            let docker =
                FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker")
                    || FileManager.default.isExecutableFile(atPath: "/usr/bin/docker") ? "docker" : "podman"
            var environment = services.environment
            environment["DOCKER"] = docker
            environment["CI"] = "true"
            return Project(repo: repo, services: services, app: app, staging: staging, production: productionPort, environment: environment)
        }

        func deploy(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runDeploy(arguments, in: repo.path, environment: environment)
        }

        func release(_ version: String, broken: Bool = false, files: [String: String] = [:]) async throws {
            try await ExampleApp.release(repo, version, broken: broken, files: files)
        }

        /// Everything this project started: containers (by label), nginx (by pid), images.
        func tearDown() async {
            await ExampleApp.tearDown(repo, app: app, environment: environment)
        }

        /// Runs `body` on a new project over the suite's services, taking the project down after.
        static func with(
            strategy: String, stagingGates: String = "[health]", rehearse: Bool = false, _ body: @Sendable (Project) async throws -> Void
        ) async throws {
            try await ContainerServices.shared { services in
                let project = try await Project.make(services, strategy: strategy, stagingGates: stagingGates, rehearse: rehearse)
                do {
                    try await body(project)
                } catch {
                    await project.tearDown()
                    throw error
                }
                await project.tearDown()
            }
        }

        /// `deploy staging` then `deploy production` of the release at HEAD, both succeeding.
        func ship() async throws {
            var result = try await deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            result = try await deploy("production")
            try #require(result.status == 0, "\(result.output)")
        }

        func containers() async throws -> [String] {
            let docker = environment["DOCKER"] ?? "docker"
            let names = try await GitFixture.run(
                [docker, "ps", "-a", "--format", "{{.Names}}", "--filter", "label=io.slipway.app=\(app)"], in: repo.path,
                environment: environment)
            return names.split(separator: "\n").map(String.init)
        }
    }

    /// GET through nginx on 127.0.0.1.
    static func get(_ port: UInt16, _ path: String) async -> (status: Int, body: String)? {
        await ExampleApp.get("http://127.0.0.1:\(port)\(path)")
    }

    @Test("blue-green: no request fails while production switches to the new release")
    func blueGreenUnderLoad() async throws {
        try await Project.with(strategy: "{ blue_green: { preview_gates: [health], bake: 1s } }") { project in
            try await project.ship()
            #expect(await Self.get(project.production, "/version")?.body == "1.0.0")
            // A second release goes to production while a client keeps asking.
            try await project.release("1.1.0")
            let result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            // The loop is running before the deploy starts, and asks once more after it ends.
            let (deployed, loop) = try await RequestLoop.around("http://127.0.0.1:\(project.production)") {
                try await project.deploy("production")
            }
            try #require(deployed.status == 0, "\(deployed.output)")
            let seen = loop.results.with { $0 }
            #expect(seen.failed == 0, "\(seen.failed) of \(seen.ok + seen.failed) requests failed during the switch")
            #expect(seen.versions.first == "1.0.0" && seen.versions.last == "1.1.0", "versions seen: \(seen.versions)")
            #expect(await Self.get(project.production, "/version")?.body == "1.1.0")
        }
    }

    @Test("blue-green: a broken release is rolled back (exit 3), recorded, and pins the environment until unpinned")
    func brokenReleaseRolledBack() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            // A broken release: its gate fails after the switch, traffic goes back, the run says so.
            try await project.release("1.2.0", broken: true)
            result = try await project.deploy("staging")
            #expect(result.status == 3, "\(result.output)")
            #expect(result.output.contains("rolled back to 1.0.0"), "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            let history = try await project.deploy("history", "staging", "--json")
            let runs = try #require(try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]])
            #expect(runs.first?["outcome"] as? String == "rolled_back")
            #expect(runs.first?["rollback_ms"] as? Int != nil)
            // Pinned: an automatic deploy refuses (exit 4) until unpinned.
            result = try await project.deploy("staging")
            #expect(result.status == 4, "\(result.output)")
            #expect(result.output.contains("pinned"))
            result = try await project.deploy("unpin", "staging", "--reason", "fix coming")
            #expect(result.status == 0, "\(result.output)")
        }
    }

    @Test("deploy rollback puts back the release before the serving one; status and audit say so; teardown removes everything")
    func emergencyRollbackAndTeardown() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            try await project.ship()
            try await project.release("1.1.0", files: ["db/migrations/0001_add.sql": "ALTER TABLE t ADD c int;\n"])
            try await project.ship()
            #expect(await Self.get(project.production, "/version")?.body == "1.1.0")
            var result = try await project.deploy("rollback", "production", "--reason", "customers report errors")
            #expect(result.status == 0, "\(result.output)")
            // Before it acts, it says what going back undoes.
            #expect(
                result.output.contains("rolling back undoes 1 commit, 1 of them a migration: db/migrations/0001_add.sql"),
                "\(result.output)")
            #expect(await Self.get(project.production, "/version")?.body == "1.0.0")
            let status = try await project.deploy("status", "production")
            #expect(status.output.contains("serving     1.0.0"), "\(status.output)")
            #expect(status.output.contains("pinned"), "\(status.output)")
            let audit = try await project.deploy("audit", "--env", "production")
            #expect(audit.output.contains("pin"), "\(audit.output)")
            // One container per environment is left, and teardown removes those and nginx.
            #expect(try await project.containers().count == 2)
            for environment in ["staging", "production"] {
                result = try await project.deploy("teardown", environment)
                #expect(result.status == 0, "\(result.output)")
            }
            #expect(try await project.containers().isEmpty)
            #expect(await Self.get(project.production, "/version") == nil)
        }
    }

    @Test("canary: traffic moves in the pipeline's steps; a failing canary goes back at its first step")
    func canary() async throws {
        // Staging has no gates here, so a broken release reaches production's canary.
        try await Project.with(strategy: "{ canary: { steps: [25, 50, 100] } }", stagingGates: "[]") { project in
            try await project.ship()
            try await project.release("1.1.0")
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            result = try await project.deploy("production", "--json")
            try #require(result.status == 0, "\(result.output)")
            // Traffic moved in the steps the pipeline names, the old release beside the new one.
            for share in ["1.1.0 25%, 1.0.0 75%", "1.1.0 50%, 1.0.0 50%", "1.1.0 100%"] {
                #expect(result.output.contains(share), "no step '\(share)' in \(result.output)")
            }
            try await project.release("1.2.0", broken: true)
            result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            result = try await project.deploy("production")
            #expect(result.status == 3, "\(result.output)")
            #expect(result.output.contains("canary 25%"), "\(result.output)")
            #expect(!result.output.contains("canary 50%"), "the canary went on after its gate failed: \(result.output)")
            #expect(await Self.get(project.production, "/version")?.body == "1.1.0")
        }
    }

    @Test("a deploy killed with SIGKILL mid-rollout is recorded interrupted, and deploy rollback restores the last good release")
    func killedMidRollout() async throws {
        try await Project.with(strategy: "{ canary: { steps: [25, 50, 100] } }", stagingGates: "[]") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            try await project.release("1.3.0")
            let child = try DeployProcess(arguments: ["staging"], directory: project.repo.path, environment: project.environment)
            // Killed once nginx sends traffic to 1.3.0, which has not passed its bake.
            #expect(await child.waitForLine(containing: ": 1.3.0 100% (took"))
            child.signal(SIGKILL)
            _ = try await child.wait()
            let status = try await project.deploy("status", "staging")
            #expect(status.output.contains("interrupted"), "\(status.output)")
            result = try await project.deploy("rollback", "staging", "--reason", "deploy died")
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            let left = try await project.containers()
            #expect(left.count == 1, "leftover containers: \(left)")
        }
    }

    @Test("rollback rehearsal: measured when it passes; a failed one fails the run and production refuses the release")
    func rehearsal() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }", stagingGates: "[health, marker]", rehearse: true) { project in
            try await Self.rehearsal(project)
        }
    }

    static func rehearsal(_ project: Project) async throws {
        var result = try await project.deploy("staging")
        try #require(result.status == 0, "\(result.output)")
        #expect(result.output.contains("rollback rehearsal skipped"), "\(result.output)")
        try await project.release("1.1.0")
        result = try await project.deploy("staging")
        try #require(result.status == 0, "\(result.output)")
        #expect(result.output.contains("rollback rehearsal passed"), "\(result.output)")
        let history = try await project.deploy("history", "staging", "--json")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]])
        #expect(runs.first?["rehearsal"] as? String == "passed")
        #expect(runs.first?["rehearsal_ms"] as? Int != nil)

        // 1.1.0 turns out bad after the fact: rolling back to it from 1.2.0 would not work.
        try await project.release("1.2.0")
        try project.repo.directory.write(".slipway/1.1.0.bad", "found wanting\n")
        result = try await project.deploy("staging")
        // Exit 6, not 1: the environment changed (1.2.0 serves), though the run failed.
        #expect(result.status == 6, "\(result.output)")
        #expect(result.output.contains("rollback rehearsal failed"), "\(result.output)")
        let serving = await get(project.staging, "/version")
        let state = (try? String(contentsOfFile: project.repo.directory.file(".slipway/proxy/staging/nginx.conf"), encoding: .utf8)) ?? ""
        #expect(serving?.body == "1.2.0", "serving \(String(describing: serving)); nginx: \(state)")
        result = try await project.deploy("production")
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("failed its rollback rehearsal"), "\(result.output)")
    }
}
