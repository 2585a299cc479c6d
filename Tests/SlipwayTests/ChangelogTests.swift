import Foundation
import Slipway
import SlipwayGit
import SlipwayStore
import SlipwayTestSupport
import Testing

/// The changelog of the repository at `path`, as a run builds it.
func changelog(
    at path: String, environment: String? = nil, store: RunStore? = nil, since: String? = nil, firstParent: Bool = false
) async throws -> Changelog {
    let repository = try Repository(discoveringFrom: path)
    return try await Changelog.build(
        repository: repository, release: try repository.release(), environment: environment, store: store, since: since,
        firstParentOnly: firstParent)
}

@Suite("Changelogs from real repositories", .timeLimit(.minutes(2)))
struct ChangelogTests {
    func changelog(
        _ repo: GitFixture, environment: String? = nil, store: RunStore? = nil, since: String? = nil,
        firstParent: Bool = false
    ) async throws -> Changelog {
        try await SlipwayTests.changelog(at: repo.path, environment: environment, store: store, since: since, firstParent: firstParent)
    }

    @Test("with no good release, the range starts at the previous stable tag (a pre-release does not count)")
    func sinceStableTag() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("feat: first")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("fix: a bug")
        try await repo.git("tag", "v1.1.0-rc.1")
        try await repo.commit("feat(api): new endpoint")
        let log = try await changelog(repo)
        #expect(log.base.kind == .tag)
        #expect(log.base.description == "tag v1.0.0")
        #expect(log.commits.map(\.subject) == ["feat(api): new endpoint", "fix: a bug"])
        #expect(log.groups.map(\.title) == ["Features", "Fixes"])
        #expect(log.suggestedVersion == "1.1.0")
        #expect(log.markdown.contains("- **api:** new endpoint ("))
    }

    @Test("a tagged HEAD's changelog starts at the tag before it; with no tags it starts at the root")
    func taggedHeadAndRoot() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("one")
        let untagged = try await changelog(repo)
        #expect(untagged.base.kind == .root)
        #expect(untagged.commits.count == 1)
        // No version yet: the commits decide from 0.0.0 (no feature: a patch).
        #expect(untagged.suggestedVersion == "0.0.1")
        try await repo.git("tag", "v0.1.0")
        try await repo.commit("fix: two")
        try await repo.git("tag", "v0.1.1")
        let log = try await changelog(repo)
        #expect(log.base.description == "tag v0.1.0")
        #expect(log.commits.map(\.subject) == ["fix: two"])
    }

    @Test("the environment's last good release from the run store starts the range")
    func sinceLastGoodRelease() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("feat: one")
        let deployed = try await repo.commit("fix: two")
        try await repo.commit("feat!: three breaks things", contents: "x")
        let store = try RunStore.inMemory()
        var run = try await store.insert(
            RunRecord(
                pipeline: "p", app: "a", environment: "production", trigger: Trigger(user: "u"),
                sha: deployed, version: "1.2.0", startedAt: Date(), ownerPID: 1, ownerHost: "h"))
        try await store.finish(runID: run.id, outcome: .succeeded, exitCode: 0, reason: nil, at: Date())
        run = try await #require(try store.run(id: run.id))
        let log = try await changelog(repo, environment: "production", store: store)
        #expect(log.base.kind == .lastGoodRelease)
        #expect(log.base.description.contains("the last good release of production, 1.2.0 (run 1"))
        #expect(log.commits.map(\.subject) == ["feat!: three breaks things"])
        #expect(log.breaking.count == 1)
        #expect(log.markdown.contains("### ⚠ Breaking changes"))
        // an environment with nothing deployed falls back to tags, then the root
        await #expect(try changelog(repo, environment: "staging", store: store).base.kind == .root)
    }

    @Test("--since overrides, and a base that is not an ancestor counts what deploying undoes")
    func sinceAndNonAncestor() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        let root = try await repo.commit("root")
        try await repo.git("checkout", "-q", "-b", "other")
        try await repo.commit("other one", file: "other.txt")
        let other = try await repo.commit("other two", file: "other.txt")
        try await repo.git("checkout", "-q", "main")
        try await repo.commit("main one")
        let log = try await changelog(repo, since: other)
        #expect(log.base.kind == .since)
        #expect(!log.baseIsAncestor)
        #expect(log.undone == 2)
        #expect(log.commits.map(\.subject) == ["main one"])
        #expect(log.markdown.contains("undoes 2 commits"))
        await #expect(try changelog(repo, since: root).baseIsAncestor)
        await #expect(throws: GitError.self) { try await changelog(repo, since: "no-such-ref") }
    }

    @Test("merges: full history by default, the branch's own with first-parent")
    func merges() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("base")
        try await repo.git("tag", "v1.0.0")
        try await repo.git("checkout", "-q", "-b", "topic")
        try await repo.commit("feat: on topic", file: "topic.txt")
        try await repo.git("checkout", "-q", "main")
        try await repo.commit("fix: on main")
        try await repo.git("merge", "-q", "--no-ff", "-m", "Merge topic", "topic")
        let full = try await changelog(repo)
        #expect(Set(full.commits.map(\.subject)) == ["Merge topic", "fix: on main", "feat: on topic"])
        let firstParent = try await changelog(repo, firstParent: true)
        #expect(firstParent.commits.map(\.subject) == ["Merge topic", "fix: on main"])
    }

    @Test("unicode in messages and author names survives")
    func unicode() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.git("config", "user.name", "Zoë Ångström")
        try await repo.commit("feat(i18n): añadir 日本語 ✨\n\nCorps du message: ça marche")
        let log = try await changelog(repo)
        #expect(log.commits.first?.subject == "feat(i18n): añadir 日本語 ✨")
        #expect(log.commits.first?.body == "Corps du message: ça marche")
        #expect(log.commits.first?.author == "Zoë Ångström")
    }

    @Test("a shallow clone says so and still gives the release's commit")
    func shallowClone() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("one")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("two")
        let head = try await repo.commit("three")
        let clone = try TemporaryDirectory("shallow")
        defer { clone.remove() }
        try await repo.git("clone", "-q", "--depth", "1", "--no-tags", "file://\(repo.path)", clone.file("c"))
        let resolved = ReleaseResolver.resolve(override: nil, directory: clone.file("c"), environment: [:])
        #expect(resolved.release.sha == head)
        #expect(resolved.git?.shallow == true)
        #expect(resolved.notes.contains { $0.contains("shallow clone") && $0.contains("git fetch --unshallow") })
        let repository = try #require(resolved.repository)
        let log = try await Changelog.build(repository: repository, release: try #require(resolved.git), environment: nil, store: nil)
        #expect(log.commits.count == 1)
        #expect(log.notes.contains { $0.contains("shallow clone") })
    }

    @Test("the risk report flags migrations, manifests, dependencies and secret-like files, per commit too")
    func riskReport() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("base")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("feat: index", file: "db/migrations/0042_add_index.sql", contents: "CREATE INDEX i ON t(c);\n")
        try await repo.commit("chore: deps", file: "Package.swift", contents: "// swift-tools-version: 6.0\n")
        try await repo.commit("fix: copy", file: "Sources/App/main.swift", contents: "print(1)\n")
        let log = try await changelog(repo)
        #expect(log.risk.filesChanged == 3)
        #expect(log.risk.flags.map(\.category) == ["migration", "dependency"])
        #expect(log.risk.lines.first == "1 database migration: db/migrations/0042_add_index.sql")
        #expect(log.flaggedCommitCounts == ["migration": 1, "dependency": 1])
        #expect(
            log.risk.rollbackSummary(commits: log.commits.count, flaggedCommits: log.flaggedCommitCounts).hasPrefix(
                "rolling back undoes 3 commits, 1 of them a migration: db/migrations/0042_add_index.sql"))
    }

    @Test("risk patterns: ** spans folders, a bare pattern matches names anywhere, the pipeline can add and switch off")
    func globs() {
        #expect(Glob.matches("db/migrations/**", path: "db/migrations/2026/0001.sql"))
        #expect(Glob.matches("**/migrations/**", path: "migrations/x.sql"))
        #expect(!Glob.matches("Manifests/**", path: "src/Manifests.swift"))
        #expect(Glob.matches("*.lock", path: "deep/dir/yarn.lock"))
        #expect(Glob.matches("requirements*.txt", path: "requirements-dev.txt"))
        let rules = RiskRules.defaults.merging([("secret", []), ("terraform", ["infra/**/*.tf"])])
        #expect(rules.categories(of: "config/api.secret.json") == [])
        #expect(rules.categories(of: "infra/prod/main.tf") == ["terraform"])
    }
}
