import Foundation
import SlipwayCore
import SlipwayProcess
import SlipwayStore
import SlipwayTestSupport
import Testing

/// Metric analysis end to end: real deploys of the example app (podman, a registry, nginx) whose
/// every release a real Prometheus scrapes through the file discovery `deploy` writes, with a
/// production canary gated by the error-rate template. Users are a request loop on `/`.
@Suite("metric analysis with a real Prometheus", .timeLimit(.minutes(10)), .sharedContainerServices, .serialized)
struct AnalysisTests {
    struct Project {
        let repo: GitFixture
        let app: String
        let production: UInt16
        let environment: [String: String]

        static func make(_ services: ContainerServices, prometheus: String) async throws -> Project {
            let repo = try await GitFixture("analysis")
            let app = "hello\(UUID().uuidString.prefix(6).lowercased())"
            let staging = try ContainerServices.freePort()
            let production = try ContainerServices.freePort()
            try ExampleApp.copy(into: repo)
            try repo.directory.write(".gitignore", ".slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n")
            try repo.directory.write(
                "slipway.yml",
                """
                app: \(app)
                image: \(services.registry)/\(app)
                prometheus: { url: "\(prometheus)" }
                environments:
                  staging:
                    target: { docker: { listen: "127.0.0.1:\(staging)" } }
                    strategy: rolling
                    gates: [health]
                  production:
                    target: { docker: { listen: "127.0.0.1:\(production)" } }
                    promote_from: staging
                    require_clean_tree: false
                    strategy: { canary: { steps: [25, 50, 100], pause: 1s, analysis: [errors] } }
                    gates: [health]
                stages:
                  - { name: prepare, run: [Examples/hello/prepare] }
                  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "${VERSION}" }, no_cache: true } }
                  - { name: push, push: {} }
                  - { name: staging, deploy: staging }
                  - { name: production, deploy: production }
                gates:
                  health: { http: { url: "${TARGET_URL}/health", status: 200, within: 2s } }
                  # Over the last 5 s of the canary's own requests; one measurement a second, from
                  # 3 s into each step (its first scrapes in), and one failure allowed.
                  errors:
                    { template: error-rate, metric: hello_requests_total, window: 5s, initial_delay: 3s, times: 3, every: 1s,
                      failure_limit: 1, inconclusive_limit: 1 }
                """)
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello")
            try await repo.git("tag", "v1.0.0")
            var environment = services.environment
            environment["DOCKER"] =
                FileManager.default.isExecutableFile(atPath: "/usr/bin/docker")
                    || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker")
                ? "docker" : "podman"
            environment["CI"] = "true"
            return Project(repo: repo, app: app, production: production, environment: environment)
        }

        var stateFile: String { repo.directory.file(".slipway/state.sqlite") }
        var url: String { "http://127.0.0.1:\(production)" }

        func deploy(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runDeploy(arguments, in: repo.path, environment: environment)
        }

        func start(_ arguments: String...) throws -> DeployProcess {
            try DeployProcess(arguments: arguments, directory: repo.path, environment: environment)
        }

        /// The newest container of production (the canary while a deploy runs).
        func newestProductionContainer() async throws -> String {
            let names = try await GitFixture.run(
                [environment["DOCKER"] ?? "docker", "ps", "--format", "{{.Names}}", "--filter", "label=io.slipway.app=\(app)"],
                in: repo.path, environment: environment)
            let production = names.split(separator: "\n").map(String.init).filter { $0.contains("-production-r") }
            func run(_ name: String) -> Int { Int(name.split(separator: "-").dropLast().last?.dropFirst() ?? "") ?? 0 }
            return try #require(production.max { run($0) < run($1) })
        }

        /// Makes a running container answer 500 to `/` from now on (the app's own switch).
        func setErroring(_ container: String) async throws {
            _ = try await GitFixture.run(
                [environment["DOCKER"] ?? "docker", "exec", container, "/bin/busybox", "touch", "/tmp/hello/errors"], in: repo.path,
                environment: environment)
        }

        func measurements(_ run: Int64) async throws -> [GateMeasurementRecord] {
            try await RunStore(path: stateFile).measurements(runID: run)
        }

        /// Starts a production deploy and pauses it as soon as its run exists, long before its
        /// canary's first step: the canary holds after that step's gates, whatever the machine's load.
        func startPaused(by person: String) async throws -> (DeployProcess, Int64) {
            let deploy = try start("production")
            #expect(await deploy.waitForLine(containing: " to production · release"))
            let run = Int64(try #require(deploy.number(after: "· run ")))
            let pause = try await self.deploy("pause", String(run), "--as", person)
            #expect(pause.status == 0, "\(pause.output)")
            return (deploy, run)
        }

        func latestRun() async throws -> Int64 {
            try #require(try await RunStore(path: stateFile).history(environment: "production", limit: 1).first?.id)
        }

        /// staging and production of the release at HEAD, with users on production.
        func ship() async throws {
            var result = try await deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            (result, _) = try await RequestLoop.around(url, path: "/") { try await deploy("production") }
            try #require(result.status == 0, "\(result.output)")
        }

        static func with(_ body: @Sendable (Project, PrometheusServer) async throws -> Void) async throws {
            try await ContainerServices.shared { services in
                // The project first (Prometheus scrapes what its store's directory lists), then the
                // pipeline is pointed at the test's own Prometheus.
                let project = try await Project.make(services, prometheus: "http://127.0.0.1:0")
                try await PrometheusServer.with(stateFile: project.stateFile) { prometheus in
                    let file = project.repo.directory.file("slipway.yml")
                    let yaml = try String(contentsOfFile: file, encoding: .utf8)
                        .replacingOccurrences(of: "http://127.0.0.1:0", with: prometheus.url)
                    try yaml.write(toFile: file, atomically: true, encoding: .utf8)
                    try await project.repo.git("commit", "-q", "-am", "chore: point at the test's Prometheus")
                    try await project.repo.git("tag", "-f", "v1.0.0")
                    do {
                        try await body(project, prometheus)
                    } catch {
                        await ExampleApp.tearDown(project.repo, app: project.app, environment: project.environment)
                        throw error
                    }
                    await ExampleApp.tearDown(project.repo, app: project.app, environment: project.environment)
                }
            }
        }
    }

    @Test("a healthy release is promoted on its metrics; one whose error rate rises at 50 % is rolled back at 50 %")
    func errorRateRises() async throws {
        try await Project.with { project, prometheus in
            try await project.ship()
            // 2.0.0: healthy, promoted, every measurement recorded and shown.
            try await ExampleApp.release(project.repo, "2.0.0")
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            (result, _) = try await RequestLoop.around(project.url, path: "/") { try await project.deploy("production") }
            #expect(result.status == 0, "\(result.output)")
            let promoted = try await project.latestRun()
            let measured = try await project.measurements(promoted)
            #expect(Set(measured.filter { $0.gate == "errors" }.map(\.checkpoint)) == ["at 25%", "at 50%", "at 100%"])
            #expect(measured.filter { $0.gate == "errors" }.allSatisfy { $0.verdict != .fail })
            #expect(measured.contains { $0.gate == "errors" && $0.verdict == .pass && $0.value == 0 })
            #expect(measured.allSatisfy { !$0.query.contains("${INSTANCE}") })
            let shown = try await project.deploy("show", String(promoted))
            #expect(shown.output.contains("gate measurements:"))
            #expect(shown.output.contains("error-rate: prometheus \(prometheus.url)"))
            let json = try await project.deploy("show", String(promoted), "--json")
            #expect(json.output.contains("\"gates\""))
            #expect(json.output.contains("\"checkpoint\" : \"at 50%\""))

            // 3.0.0: its error rate rises when it reaches 50 %.
            try await ExampleApp.release(project.repo, "3.0.0")
            result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            let ((status, output), users) = try await RequestLoop.around(project.url, path: "/") {
                // Held after the 25 % step's gates passed; the canary errs from then on, and its
                // first measurements at 50 % see it.
                let (deploy, run) = try await project.startPaused(by: "bob")
                #expect(await deploy.waitForLine(containing: "held at 25%: paused by bob"))
                try await project.setErroring(try await project.newestProductionContainer())
                let resume = try await project.deploy("resume", String(run))
                #expect(resume.status == 0, "\(resume.output)")
                let termination = try await deploy.wait()
                return (termination.exitCode, deploy.output.joined(separator: "\n"))
            }
            #expect(status == 3, "\(output)")
            #expect(output.contains("gate errors failed"))
            let run = try await project.latestRun()
            let errors = try await project.measurements(run).filter { $0.gate == "errors" }
            // The 25 % step passed; at 50 % the error rate crossed 1 % and, past failure_limit 1, the
            // canary was rolled back there: it never reached 100 %.
            #expect(errors.filter { $0.checkpoint == "at 25%" }.allSatisfy { $0.verdict != .fail })
            let at50 = errors.filter { $0.checkpoint == "at 50%" }
            #expect(at50.filter { $0.verdict == .fail }.count == 2)
            #expect(at50.last?.verdict == .fail)
            #expect(!errors.contains { $0.checkpoint == "at 100%" })
            let record = try await RunStore(path: project.stateFile).run(id: run)
            #expect(record?.outcome == .rolledBack)
            #expect(record?.reason?.contains("rolled back to 2.0.0") == true)
            // Detection, as the run says it: from the first failed measurement to traffic back.
            let detection = output.split(separator: "\n").first { $0.contains("after the first failed measurement") }
            #expect(detection != nil)
            print("detection: \(detection ?? "none"); users saw \(users.results.with { $0.failed }) failed requests")
            #expect(await ExampleApp.get(project.url + "/version")?.body == "2.0.0")
        }
    }

    @Test("Prometheus stopped mid-analysis fails closed and rolls back; deploy abort from another shell rolls back at once")
    func prometheusGoneAndAbort() async throws {
        try await Project.with { project, prometheus in
            try await project.ship()
            try await ExampleApp.release(project.repo, "2.0.0")
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")

            // deploy pause holds the canary after its first step; deploy abort, from another
            // process, rolls it back from there.
            let (aborted, _) = try await RequestLoop.around(project.url, path: "/") {
                let (deploy, run) = try await project.startPaused(by: "bob")
                #expect(await deploy.waitForLine(containing: "held at 25%: paused by bob"))
                let abort = try await project.deploy("abort", String(run), "--reason", "latency on the dashboard", "--as", "carol")
                #expect(abort.status == 0, "\(abort.output)")
                #expect(abort.output.contains("carol aborted run \(run)"))
                let termination = try await deploy.wait()
                return (termination.exitCode, deploy.output.joined(separator: "\n"))
            }
            #expect(aborted.0 == 3, "\(aborted.1)")
            #expect(aborted.1.contains("aborted by carol: latency on the dashboard"))
            let abortedRun = try await project.latestRun()
            let record = try await RunStore(path: project.stateFile).run(id: abortedRun)
            #expect(record?.reason?.hasPrefix("aborted by carol: latency on the dashboard; rolled back to 1.0.0") == true)
            let audit = try await project.deploy("audit", "--json")
            #expect(audit.output.contains("\"action\" : \"abort\""))

            // Again, and this time Prometheus stops while the first step is analysed.
            result = try await project.deploy("unpin", "production", "--reason", "try again")
            try #require(result.status == 0, "\(result.output)")
            let (stopped, _) = try await RequestLoop.around(project.url, path: "/") {
                let deploy = try project.start("production")
                // Once Prometheus scrapes the canary and its gates begin.
                #expect(await deploy.waitForLine(containing: "gate errors at 25%"))
                await prometheus.stop()
                let termination = try await deploy.wait()
                return (termination.exitCode, deploy.output.joined(separator: "\n"))
            }
            #expect(stopped.0 == 3, "\(stopped.1)")
            #expect(stopped.1.contains("inconclusive (unreachable)"))
            #expect(await ExampleApp.get(project.url + "/version")?.body == "1.0.0")
        }
    }
}
