import SlipwayGit
import SlipwayTestSupport
import Testing

@Suite("Semantic versions")
struct SemanticVersionTests {
    @Test("parses with or without v, with pre-release and build")
    func parses() {
        #expect(SemanticVersion("v1.2.3") == SemanticVersion(major: 1, minor: 2, patch: 3))
        #expect(SemanticVersion("1.2.3-rc.1+build.5")?.prerelease == ["rc", "1"])
        #expect(SemanticVersion("1.2.3-rc.1+build.5")?.build == ["build", "5"])
        for bad in ["1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "release-1", "v", ""] {
            #expect(SemanticVersion(bad) == nil, "\(bad) should not parse")
        }
    }

    @Test("orders by SemVer 2.0 precedence")
    func orders() {
        let ordered = [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
            "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0",
        ].map { SemanticVersion($0)! }
        #expect(ordered.shuffled().sorted() == ordered)
        #expect(SemanticVersion("1.0.0+a") == SemanticVersion("1.0.0+b"))
    }
}

@Suite("Releases from git", .timeLimit(.minutes(1)))
struct GitReleaseTests {
    @Test("a tagged HEAD is its tag's version; commits past it give a describe-style version")
    func taggedAndPast() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "v1.4.2")
        var release = try Repository(discoveringFrom: repo.path).release()
        #expect(release.version == "1.4.2")
        #expect(release.branch == "main")
        try await repo.commit("second")
        try await repo.commit("third")
        let head = try await repo.commit("fourth")
        release = try Repository(discoveringFrom: repo.path).release()
        #expect(release.version == "1.4.2-3-g\(head.prefix(7))")
        #expect(release.sha == head)
    }

    @Test("annotated and lightweight tags both count; the highest version on a commit wins")
    func tagKinds() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "-a", "v2.0.0-rc.1", "-m", "release candidate")
        try await repo.git("tag", "2.0.0")
        try await repo.git("tag", "not-a-version")
        let repository = try Repository(discoveringFrom: repo.path)
        let tags = try repository.tags().sorted { $0.name < $1.name }
        #expect(tags.map(\.name) == ["2.0.0", "not-a-version", "v2.0.0-rc.1"])
        #expect(tags.map(\.annotated) == [false, false, true])
        #expect(try repository.release().version == "2.0.0")
    }

    @Test("a dirty tree is marked, and a subdirectory finds its repository")
    func dirtyAndDiscovery() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "v0.1.0")
        try repo.directory.write("sub/dir/new.txt", "untracked\n")
        let release = try Repository(discoveringFrom: repo.directory.file("sub/dir")).release()
        #expect(release.dirty)
        #expect(release.dirtyPaths == ["sub/dir/new.txt"])
        #expect(release.version == "0.1.0+dirty")
    }

    @Test("detached HEAD has no branch; no tags gives 0.0.0-N-gSHA")
    func detachedAndUntagged() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        let first = try await repo.commit("first")
        try await repo.commit("second")
        try await repo.git("checkout", "-q", first)
        let release = try Repository(discoveringFrom: repo.path).release()
        #expect(release.branch == nil)
        #expect(release.version == "0.0.0-1-g\(first.prefix(7))")
    }

    @Test("an empty repository and a plain folder give clear errors")
    func emptyAndNotARepository() async throws {
        let repo = try await GitFixture()
        defer { repo.remove() }
        let empty = try Repository(discoveringFrom: repo.path)
        #expect(empty.isEmpty)
        let error = #expect(throws: GitError.self) { try empty.head() }
        #expect(error?.message == "the repository has no commits yet: commit something first")

        let plain = try TemporaryDirectory("plain")
        defer { plain.remove() }
        let notRepo = #expect(throws: GitError.self) { try Repository(discoveringFrom: plain.path) }
        #expect(notRepo?.message.contains("is not inside a git repository") == true)
    }
}
