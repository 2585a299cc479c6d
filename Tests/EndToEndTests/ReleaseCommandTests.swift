import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// `deploy` in real git repositories: versions, changelogs, dirty trees.
@Suite("deploy with git", .timeLimit(.minutes(2)))
struct ReleaseCommandTests {
    static let pipeline = """
        app: hello
        environments:
          staging: {}
          production: { promote_from: staging }
        stages:
          - { name: build, run: [echo, "building ${VERSION}"] }
          - { name: staging, deploy: staging }
          - { name: production, deploy: production }

        """

    func repository() async throws -> GitFixture {
        let repo = try await GitFixture("e2e-git")
        try repo.directory.write(".gitignore", ".slipway/\n")
        try repo.directory.write("slipway.yml", Self.pipeline)
        try await repo.git("add", ".gitignore", "slipway.yml")
        try await repo.git("commit", "-q", "-m", "chore: pipeline")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("feat(api): add orders", file: "api.txt")
        try await repo.commit("fix: migration", file: "db/migrations/0001_orders.sql", contents: "CREATE TABLE orders (id int);\n")
        return repo
    }

    @Test("a secret's value in a commit message is masked in the run's output, the stored changelog, show and changelog")
    func secretsInCommitMessagesAreMasked() async throws {
        let repo = try await GitFixture("e2e-secret")
        defer { repo.remove() }
        let secret = "s3cr3t-\(UUID().uuidString.prefix(8))"
        try repo.directory.write(".gitignore", ".slipway/\n")
        try repo.directory.write(
            "slipway.yml",
            "app: hello\nsecrets: [API_TOKEN]\nenvironments: { staging: {} }\nstages:\n  - { name: staging, deploy: staging }\n")
        try await repo.git("add", ".gitignore", "slipway.yml")
        try await repo.git("commit", "-q", "-m", "chore: pipeline")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("fix: rotate token \(secret)", file: "token.txt")
        let environment = ["API_TOKEN": secret]
        var commands = [["changelog", "staging"], ["changelog", "--json"]]
        for command in commands {
            let shown = try await runDeploy(command, in: repo.path, environment: environment)
            #expect(shown.output.contains("rotate token ***"), "\(command): \(shown.output)")
            #expect(!shown.output.contains(secret), "\(command) shows the secret: \(shown.output)")
        }
        let deployed = try await runDeploy(["staging"], in: repo.path, environment: environment)
        #expect(deployed.status == 0, "\(deployed.output)")
        #expect(!deployed.output.contains(secret))
        commands = [["show", "1"], ["show", "1", "--json"]]
        for command in commands {
            let shown = try await runDeploy(command, in: repo.path, environment: environment)
            #expect(shown.status == 0, "\(command): \(shown.output)")
            #expect(shown.output.contains("rotate token ***"), "\(command): \(shown.output)")
            #expect(!shown.output.contains(secret), "\(command) shows the secret: \(shown.output)")
        }
        let stored = try await GitFixture.run(
            ["sqlite3", ".slipway/state.sqlite", "SELECT markdown || json FROM changelog"], in: repo.path, environment: [:])
        #expect(stored.contains("rotate token ***"))
        #expect(!stored.contains(secret))
    }

    @Test("a run records its version and changelog; production takes only what passed staging; show prints it")
    func runRecordsTheChangelog() async throws {
        let repo = try await repository()
        defer { repo.remove() }
        let staging = try await runDeploy(["staging"], in: repo.path)
        #expect(staging.status == 0)
        #expect(staging.output.contains("[build] building 1.0.0-2-g"))
        #expect(
            staging.output.contains(
                "ships 2 commits touching 2 files; flagged: 1 database migration: db/migrations/0001_orders.sql (since tag v1.0.0)"))

        let changelog = try await runDeploy(["changelog", "production"], in: repo.path)
        #expect(changelog.output.contains("suggested next version: 1.1.0"))
        #expect(changelog.output.contains("- **api:** add orders ("))

        let production = try await runDeploy(["production"], in: repo.path)
        #expect(production.status == 0)
        let status = try await runDeploy(["status", "production"], in: repo.path)
        #expect(status.output.contains("last good   1.0.0-2-g"))
        #expect(status.output.contains("(run 2)"))
        let show = try await runDeploy(["show", "2"], in: repo.path)
        #expect(show.output.contains("changelog:"))
        #expect(show.output.contains("### Features"))

        // Nothing new since production's last good release
        let after = try await runDeploy(["changelog", "production", "--json"], in: repo.path)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(after.output.utf8)) as? [String: Any])
        #expect((json["commits"] as? [Any])?.isEmpty == true)
        #expect((json["base"] as? [String: Any])?["kind"] as? String == "last-good-release")
    }

    @Test("a dirty tree is refused where a clean one is required, unless --allow-dirty, which is recorded")
    func dirtyTree() async throws {
        let repo = try await repository()
        defer { repo.remove() }
        #expect(try await runDeploy(["staging"], in: repo.path).status == 0)
        try repo.directory.write("api.txt", "edited but not committed\n")
        // staging does not require a clean tree, but records that it was not
        #expect(try await runDeploy(["staging"], in: repo.path).status == 0)
        let refused = try await runDeploy(["production"], in: repo.path)
        #expect(refused.status == 1)
        #expect(refused.output.contains("the working tree has uncommitted changes, and production takes only committed releases"))
        #expect(refused.output.contains("api.txt"))

        let allowed = try await runDeploy(["production", "--allow-dirty"], in: repo.path)
        #expect(allowed.status == 0)
        let show = try await runDeploy(["show", "3", "--json"], in: repo.path)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any])
        let run = try #require(json["run"] as? [String: Any])
        #expect(run["dirty"] as? Bool == true)
        #expect((run["overrides"] as? [String])?.first?.hasPrefix("allow-dirty") == true)
        #expect((run["version"] as? String)?.hasSuffix("+dirty") == true)
    }

    @Test("outside a repository, and in an empty one, the messages say what is wrong")
    func noRepository() async throws {
        let plain = try TemporaryDirectory("plain")
        defer { plain.remove() }
        let outside = try await runDeploy(["changelog"], in: plain.path)
        #expect(outside.status == 1)
        #expect(outside.output.contains("is not inside a git repository"))

        let empty = try await GitFixture("empty")
        defer { empty.remove() }
        let result = try await runDeploy(["changelog"], in: empty.path)
        #expect(result.status == 1)
        #expect(result.output.contains("the repository has no commits yet: commit something first"))
    }

    @Test(
        "a checkout owned by another user: refused with git's explanation, then read once safe.directory is '*'",
        .enabled(if: getuid() == 0, "needs root to give the checkout to another user"))
    func foreignOwner() async throws {
        let repo = try await repository()
        defer { repo.remove() }
        let home = try TemporaryDirectory("home")
        defer { home.remove() }
        try await GitFixture.run(["chown", "-R", "65534:65534", repo.path], in: "/")
        var result = try await runDeploy(["changelog"], in: repo.path, environment: ["HOME": home.path])
        #expect(result.status != 0)
        #expect(result.output.contains("dubious ownership"), "\(result.output)")
        #expect(result.output.contains("git config --global --add safe.directory \(repo.path)"), "\(result.output)")
        // What container CI jobs commonly set.
        try home.write(".gitconfig", "[safe]\n\tdirectory = *\n")
        result = try await runDeploy(["changelog"], in: repo.path, environment: ["HOME": home.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("add orders"), "\(result.output)")
    }

    @Test("the approval screen and deploy approve show the risk report of what waits")
    func approvalShowsRisk() async throws {
        let repo = try await GitFixture("e2e-approval")
        defer { repo.remove() }
        try repo.directory.write(".gitignore", ".slipway/\n")
        try repo.directory.write(
            "slipway.yml",
            """
            app: hello
            environments:
              production: { approval: { approvers: 1, timeout: 2m }, require_clean_tree: false }
            stages:
              - { name: sign-off, approval: production }
              - { name: production, deploy: production }

            """)
        try await repo.git("add", ".")
        try await repo.git("commit", "-q", "-m", "chore: pipeline")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("feat: orders table", file: "db/migrations/0001_orders.sql", contents: "CREATE TABLE orders (id int);\n")
        let deploy = try DeployProcess(arguments: ["production"], directory: repo.path, environment: ["SLIPWAY_USER": "alice"])
        #expect(await deploy.waitForLine(containing: "approve: deploy approve 1"))
        let screen = deploy.output.joined(separator: "\n")
        #expect(screen.contains("risk: 1 database migration: db/migrations/0001_orders.sql"), "\(screen)")
        let approved = try await runDeploy(["approve", "1", "--as", "bob"], in: repo.path)
        #expect(approved.status == 0, "\(approved.output)")
        #expect(approved.output.contains("risk: 1 database migration: db/migrations/0001_orders.sql"), "\(approved.output)")
        #expect(try await deploy.wait() == .exited(0))
    }
}
