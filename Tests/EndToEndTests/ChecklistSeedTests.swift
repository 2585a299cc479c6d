import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// The five seed checklists (Pipelines/seeds/) run for real against the example app: its staging
/// deploy (podman, a registry, nginx), its manifests, its repository; HTTPS from openssl
/// s_server. Each `deploy production` runs to its checklist; one goes on, signed off by its
/// roles and approved, to production.
@Suite("seed checklists as pipelines", .timeLimit(.minutes(12)), .exclusiveRun, .sharedContainerServices, .serialized)
struct ChecklistSeedTests {
    static let seeds = ["gricebench", "gpu-inference", "ml-api", "frameworm", "nexus"]

    /// A repository holding the example app, its docs and checks, its manifests and the seed
    /// pipelines, with the pipelines' ports, app name and registry made this test's own.
    struct Project {
        let repo: GitFixture
        let app: String
        let staging: UInt16
        let environment: [String: String]

        static func make(_ services: ContainerServices, tls: TLSServer) async throws -> Project {
            let repo = try await GitFixture("checklist-seeds")
            let app = "seed\(UUID().uuidString.prefix(6).lowercased())"
            let staging = try ContainerServices.freePort()
            let production = try ContainerServices.freePort()
            try ExampleApp.copy(into: repo)
            for file in [
                "test", "README.md", "RUNBOOK.md", "CHANGELOG.md", "checks/smoke", "checks/load", "checks/graceful-shutdown", "checks/lint",
            ] {
                try copy("Examples/hello/\(file)", into: repo)
            }
            for file in try FileManager.default.subpathsOfDirectory(atPath: packageRoot + "/Manifests/hello") where file.hasSuffix(".yaml")
            {
                try copy("Manifests/hello/\(file)", into: repo)
            }
            for seed in seeds {
                let text = try String(contentsOfFile: "\(packageRoot)/Pipelines/seeds/\(seed).yml", encoding: .utf8)
                    .replacingOccurrences(of: "app: hello\n", with: "app: \(app)\n")
                    .replacingOccurrences(of: "127.0.0.1:5000/hello", with: "\(services.registry)/\(app)")
                    .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(staging)")
                    .replacingOccurrences(of: "127.0.0.1:8082", with: "127.0.0.1:\(production)")
                    .replacingOccurrences(of: "https://127.0.0.1:8443", with: tls.url)
                try repo.directory.write("Pipelines/seeds/\(seed).yml", text)
            }
            try repo.directory.write(".gitignore", ".slipway/\nExamples/hello/busybox\nExamples/hello/app/version\n.env\n")
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello, with its checklists")
            try await repo.git("tag", "v1.0.0")
            var environment = services.environment
            environment["DOCKER"] =
                FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker")
                    || FileManager.default.isExecutableFile(atPath: "/usr/bin/docker") ? "docker" : "podman"
            environment["CI"] = "true"
            environment["SLIPWAY_USER"] = "ci-bot"
            return Project(repo: repo, app: app, staging: staging, environment: environment)
        }

        static func copy(_ path: String, into repo: GitFixture) throws {
            let source = "\(packageRoot)/\(path)"
            try repo.directory.write(
                path, try String(contentsOfFile: source, encoding: .utf8), executable: FileManager.default.isExecutableFile(atPath: source))
        }

        func deploy(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await runDeploy(arguments, in: repo.path, environment: environment)
        }

        /// The checklist of the latest production run of `seed`, as `deploy checklist --json` prints it.
        func checklist(_ seed: String) async throws -> (run: Int, items: [[String: Any]]) {
            let result = try await deploy("checklist", "production", "--pipeline", "Pipelines/seeds/\(seed).yml", "--json")
            try #require(result.status == 0, "\(result.output)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
            return (try #require(object["run"] as? Int), try #require(object["items"] as? [[String: Any]]))
        }

        func tearDown() async {
            await ExampleApp.tearDown(repo, app: app, environment: environment, pipeline: "Pipelines/seeds/nexus.yml")
        }
    }

    static func tail(_ text: String, _ lines: Int = 40) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    @Test("each seed runs to its checklist: every required automated item holds on the example app; nexus is signed, approved and deployed")
    func seedsRunToTheirChecklists() async throws {
        try await ContainerServices.shared { services in
            let tls = try await TLSServer.start(days: 365)
            let project = try await Project.make(services, tls: tls)
            do {
                try await run(project)
            } catch {
                await project.tearDown()
                await tls.stop()
                throw error
            }
            await project.tearDown()
            await tls.stop()
        }
    }

    func run(_ project: Project) async throws {
        // Two releases through staging: the second one's rollback rehearsal has something to go back to.
        var result = try await project.deploy("staging", "--pipeline", "Pipelines/seeds/nexus.yml")
        try #require(result.status == 0, "\(Self.tail(result.output))")
        try await ExampleApp.release(project.repo, "1.1.0")
        result = try await project.deploy("staging", "--pipeline", "Pipelines/seeds/nexus.yml")
        try #require(result.status == 0, "\(Self.tail(result.output))")
        #expect(result.output.contains("rollback rehearsal passed"))

        for seed in Self.seeds {
            let pipeline = "Pipelines/seeds/\(seed).yml"
            let coverage = try await project.deploy("checklist", "--coverage", pipeline, "--json")
            let counts = try #require(try JSONSerialization.jsonObject(with: Data(coverage.output.utf8)) as? [String: Any])
            let automated = try #require(counts["automated"] as? Int)
            #expect(try #require(counts["deploy_automated_percent"] as? Int) > 50, "\(seed): \(coverage.output)")

            let production = try DeployProcess(
                arguments: ["production", "--pipeline", pipeline], directory: project.repo.path, environment: project.environment)
            let waiting = await production.waitForLine(containing: "needed before production")
            try #require(waiting, "\(seed) did not reach its sign-offs:\n\(Self.tail(production.output.joined(separator: "\n")))")
            let (run, items) = try await project.checklist(seed)
            let checks = items.filter { $0["kind"] as? String == "check" }
            #expect(checks.count == automated)
            // Every automated item was evaluated for real; every required one held.
            for item in checks {
                let state = item["state"] as? String ?? "?"
                #expect(state == "passed" || state == "failed", "\(seed): \(item["item_id"] ?? "?") is \(state)")
                if item["advisory"] as? Bool != true {
                    #expect(state == "passed", "\(seed): \(item["item_id"] ?? "?") \(state): \(item["detail"] ?? "")")
                }
                #expect(!(item["detail"] as? String ?? "").isEmpty)
            }
            let signOffs = items.filter { $0["kind"] as? String == "sign_off" && $0["state"] as? String == "pending" }
            #expect(!signOffs.isEmpty)

            if seed != "nexus" {
                // A sign-off is recorded by name, then the deploy is stopped; the record says so.
                let item = try #require(signOffs.first { ($0["signers"] as? [String])?.contains("*") == true }?["item_id"] as? String)
                let signed = try await project.deploy("sign", String(run), item, "--as", "grace", "--comment", "checked by hand")
                #expect(signed.status == 0, "\(signed.output)")
                #expect(signed.output.hasPrefix("grace signed off \(item) ("))
                production.signal(SIGTERM)
                let ended = try await production.wait()
                #expect(ended.exitCode != 0)
                let after = try await project.checklist(seed)
                let record = try #require(after.items.first { $0["item_id"] as? String == item })
                #expect(record["state"] as? String == "signed")
                #expect(record["signed_by"] as? String == "grace")
                #expect(record["comment"] as? String == "checked by hand")
                continue
            }

            // nexus: each role signs what it may, the stage passes, a second person approves.
            let security = try #require(signOffs.first { ($0["signers"] as? [String]) == ["carol"] }?["item_id"] as? String)
            let refused = try await project.deploy("sign", String(run), security, "--as", "mallory")
            #expect(refused.status != 0)
            #expect(refused.output.contains("mallory may not sign off '\(security)'"), "\(refused.output)")
            for person in ["carol", "dave", "erin", "alice"] {
                let signed = try await project.deploy("sign", String(run), "--all", "--as", person)
                #expect(signed.status == 0, "\(person): \(Self.tail(signed.output))")
            }
            let approvalWaiting = await production.waitForLine(containing: "approval before production")
            #expect(approvalWaiting, "\(Self.tail(production.output.joined(separator: "\n")))")
            let approved = try await project.deploy("approve", String(run), "--as", "bob")
            #expect(approved.status == 0, "\(approved.output)")
            let ended = try await production.wait()
            #expect(ended.exitCode == 0, "\(Self.tail(production.output.joined(separator: "\n")))")
            let final = try await project.checklist(seed)
            let required = final.items.filter { $0["advisory"] as? Bool != true }
            #expect(required.allSatisfy { ["passed", "signed"].contains($0["state"] as? String ?? "") })
            let table = try await project.deploy("checklist", "production", "--pipeline", pipeline)
            #expect(final.items.contains { $0["signed_by"] as? String == "dave" && $0["state"] as? String == "signed" })
            #expect(table.output.contains("checklist of run \(run) (production)"))
        }
    }
}
