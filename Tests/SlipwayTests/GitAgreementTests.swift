import Foundation
import PropertyBased
import Slipway
import SlipwayGit
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// A repository built with the git CLI at fixed dates (one minute apart), so that every walk
/// ordered by time sees the same history on every run.
final class DatedRepository: Sendable {
    let repo: GitFixture
    private let minutes = MutexBox(600)  // 10:00, so that a rewound clock stays on the same day

    init(_ label: String = "agree") async throws { repo = try await GitFixture(label) }

    var path: String { repo.path }

    private func nextDate() -> [String: String] {
        let minute = minutes.with { value in
            value += 1
            return value
        }
        let date = String(format: "2026-01-%02dT%02d:%02d:00Z", 1 + minute / 1440, (minute / 60) % 24, minute % 60)
        return ["GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date]
    }

    /// Moves the clock back `minutes` (each git call takes the next minute): after a commit, 3
    /// gives the next commit the same date; more, a date before it (a skewed clock).
    func rewind(_ minutes: Int) { self.minutes.with { $0 -= minutes } }

    /// Runs git at the next date (commits and merges take it).
    @discardableResult
    func git(_ arguments: String...) async throws -> String {
        try await GitFixture.run(["git"] + arguments, in: path, environment: nextDate())
    }

    @discardableResult
    func commit(_ message: String, file: String = "file.txt", contents: String? = nil) async throws -> String {
        let target = repo.directory.file(file)
        let previous = (try? String(contentsOfFile: target, encoding: .utf8)) ?? ""
        try repo.directory.write(file, contents ?? previous + message + "\n")
        try await git("add", "-A")
        try await git("commit", "-q", "-m", message)
        return try await git("rev-parse", "HEAD")
    }

    func lines(_ arguments: String...) async throws -> [String] {
        try await GitFixture.run(["git"] + arguments, in: path).split(separator: "\n").map(String.init)
    }

    func remove() { repo.remove() }
}

@Suite("Releases agree with git", .timeLimit(.minutes(3)))
struct GitAgreementTests {
    func changelog(_ repository: DatedRepository) async throws -> Changelog {
        try await SlipwayTests.changelog(at: repository.path)
    }

    @Test(
        "a hotfix tag merged back: the version is git describe's, the changelog starts at the newest stable version, the suggestion is new")
    func hotfixMergedBack() async throws {
        let repo = try await DatedRepository()
        defer { repo.remove() }
        try await repo.commit("feat: one")
        try await repo.git("tag", "v1.0.0")
        try await repo.git("checkout", "-q", "-b", "hotfix")
        try await repo.commit("fix: urgent", file: "hotfix.txt")
        try await repo.git("tag", "v1.0.1")
        try await repo.git("checkout", "-q", "main")
        try await repo.commit("feat: two")
        try await repo.git("tag", "v1.1.0")
        // A release line elsewhere has taken 1.2.0 already.
        try await repo.git("checkout", "-q", "-b", "next")
        try await repo.commit("feat: elsewhere", file: "next.txt")
        try await repo.git("tag", "v1.2.0")
        try await repo.git("checkout", "-q", "main")
        try await repo.commit("feat: three")
        try await repo.git("merge", "-q", "--no-ff", "-m", "Merge hotfix", "hotfix")
        try await repo.commit("fix: four")

        let release = try Repository(discoveringFrom: repo.path).release()
        let describe = try await repo.lines("describe", "--tags", "--abbrev=7")
        #expect("v" + release.version == describe.first, "git describe says \(describe)")
        let log = try await changelog(repo)
        #expect(log.base.description == "tag v1.1.0")
        let range = try await repo.lines("rev-list", "v1.1.0..HEAD")
        #expect(Set(log.commits.map(\.sha)) == Set(range))
        #expect(!log.commits.contains { $0.subject == "feat: two" || $0.subject == "feat: one" })
        #expect(log.suggestedVersion == "1.3.0", "1.2.0 exists; suggested \(String(describing: log.suggestedVersion))")
    }

    @Test("with no stable tag the suggestion follows the commits from 0.0.0")
    func suggestionWithoutTags() {
        func entry(_ subject: String) -> Changelog.Entry {
            let parsed = ConventionalCommit(subject: subject)
            return Changelog.Entry(sha: "0", subject: subject, type: parsed?.type, breaking: parsed?.breaking ?? false)
        }
        #expect(Changelog.suggest(from: nil, commits: [entry("fix: a")]) == "0.0.1")
        #expect(Changelog.suggest(from: nil, commits: [entry("feat: a")]) == "0.1.0")
        #expect(Changelog.suggest(from: nil, commits: [entry("feat!: a")]) == "0.1.0")
        #expect(
            Changelog.suggest(from: SemanticVersion("1.4.0"), commits: [entry("feat!: a")], existing: [SemanticVersion("2.0.0")!])
                == "3.0.0")
    }

    @Test("a sparse checkout (cone mode) is clean when git status is; a submodule at another commit is dirty as git says")
    func sparseAndSubmodule() async throws {
        let repo = try await DatedRepository("sparse")
        defer { repo.remove() }
        try await repo.commit("one", file: "a/x.txt")
        try await repo.commit("two", file: "b/y.txt")
        try await repo.git("sparse-checkout", "init", "--cone")
        try await repo.git("sparse-checkout", "set", "a")
        #expect(try await repo.lines("status", "--porcelain").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: repo.repo.directory.file("b/y.txt")))
        #expect(try Repository(discoveringFrom: repo.path).release().dirty == false)

        let library = try await DatedRepository("sub")
        defer { library.remove() }
        try await library.commit("lib one")
        let main = try await DatedRepository("super")
        defer { main.remove() }
        try await main.commit("root")
        try await main.git("-c", "protocol.file.allow=always", "submodule", "-q", "add", library.path, "lib")
        try await main.git("commit", "-q", "-m", "add lib")
        #expect(try Repository(discoveringFrom: main.path).release().dirty == false)
        // The submodule checked out at another commit.
        try main.repo.directory.write("lib/more.txt", "more\n")
        try await GitFixture.run(["git", "add", "more.txt"], in: main.repo.directory.file("lib"))
        try await GitFixture.run(["git", "commit", "-q", "-m", "lib two"], in: main.repo.directory.file("lib"))
        let status = try await GitFixture.run(["git", "status", "--porcelain"], in: main.path)
        #expect(status == " M lib")
        let release = try Repository(discoveringFrom: main.path).release()
        #expect(release.dirty && release.dirtyPaths == ["lib"], "\(release.dirtyPaths)")
    }

    @Test("a treeless partial clone gets its version and changelog, and says how git fetches the trees for the risk report")
    func treelessPartialClone() async throws {
        let source = try await DatedRepository("promisor")
        defer { source.remove() }
        try await source.commit("feat: one")
        try await source.git("tag", "v1.0.0")
        try await source.commit("feat: migration", file: "db/migrations/0001.sql")
        try await source.commit("fix: two")
        try await source.git("config", "uploadpack.allowFilter", "true")
        let clone = try TemporaryDirectory("treeless")
        defer { clone.remove() }
        try await GitFixture.run(["git", "clone", "-q", "--filter=tree:0", "file://\(source.path)", clone.path], in: "/")
        let repository = try Repository(discoveringFrom: clone.path)
        let release = try repository.release()
        let describe = try await GitFixture.run(["git", "describe", "--tags", "--abbrev=7"], in: clone.path)
        #expect("v" + release.version == describe)
        let log = try await Changelog.build(repository: repository, release: release, environment: nil, store: nil)
        #expect(log.commits.map(\.subject) == ["fix: two", "feat: migration"])
        #expect(log.risk.unreadable != nil)
        #expect(log.notes.contains { $0.contains("partial clone") && $0.contains("git diff --stat") }, "\(log.notes)")
    }

    @Test("commit messages: CRLF footers, an encoding header, digits in a type")
    func messages() async throws {
        let repo = try await DatedRepository("messages")
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "v1.0.0")
        try repo.repo.directory.write("file.txt", "changed\n")
        try repo.repo.directory.write("message", "feat: new api\r\n\r\nBREAKING CHANGE: the old one is gone\r\n")
        try await repo.git("commit", "-q", "-a", "--cleanup=verbatim", "-F", "message")
        try repo.repo.directory.write("file.txt", "changed again\n")
        // "fix: café" in Latin-1, with the encoding header git writes for it.
        try Data([0x66, 0x69, 0x78, 0x3A, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A]).write(
            to: URL(fileURLWithPath: repo.repo.directory.file("latin1")))
        try await repo.git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-a", "--cleanup=verbatim", "-F", "latin1")
        try await repo.commit("i18n!: drop old locales")
        let log = try await changelog(repo)
        let bySubject = Dictionary(log.commits.map { ($0.subject, $0) }, uniquingKeysWith: { a, _ in a })
        let gitSubjects = try await repo.lines("log", "--format=%s", "v1.0.0..HEAD")
        #expect(log.commits.map(\.subject) == gitSubjects)
        #expect(bySubject["feat: new api"]?.breaking == true)
        #expect(bySubject["feat: new api"]?.breakingNote == "the old one is gone")
        #expect(bySubject["fix: café"]?.type == "fix")
        #expect(bySubject["i18n!: drop old locales"]?.type == "i18n")
        #expect(bySubject["i18n!: drop old locales"]?.breaking == true)
    }

    @Test("per-commit risk flags: kept when the range flags nothing, a merge counts only its own changes, directories and words")
    func perCommitFlags() async throws {
        let repo = try await DatedRepository("risk")
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "v1.0.0")
        try await repo.commit("feat: add a key", file: "config/db-secret.env", contents: "password\n")
        try await repo.git("rm", "-q", "config/db-secret.env")
        try await repo.git("commit", "-q", "-m", "fix: remove the key")
        try await repo.git("checkout", "-q", "-b", "side")
        try await repo.commit("feat: schema", file: "db/migrations/0001.sql")
        try await repo.git("checkout", "-q", "main")
        try await repo.commit("docs: readme", file: "README.md")
        try await repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")
        let log = try await changelog(repo)
        let flags = Dictionary(log.commits.map { ($0.subject, $0.flags) }, uniquingKeysWith: { a, _ in a })
        #expect(!log.risk.flags.contains { $0.category == "secret" })
        #expect(flags["feat: add a key"] == ["secret"] && flags["fix: remove the key"] == ["secret"])
        #expect(flags["feat: schema"] == ["migration"])
        #expect(flags["Merge side"] == [], "the merge repeated the side branch's migration")
        #expect(log.flaggedCommitCounts["migration"] == 1)
        #expect(log.summary.contains("along the way, 2 commits touched secret-like files"), "\(log.summary)")

        let rules = RiskRules.defaults
        #expect(rules.categories(of: "k8s/deployment.yaml") == ["manifest"])
        #expect(rules.categories(of: "deploy/manifests/service.yaml") == ["manifest"])
        #expect(rules.categories(of: "src/secretary.py") == [])
        #expect(rules.categories(of: "client_secret.json") == ["secret"])
        #expect(rules.categories(of: "config/credentials") == ["secret"])
    }

    @Test("SemVer: alphanumeric identifiers such as -1, and a dirty tree past a tag with build metadata")
    func semanticVersions() async throws {
        #expect(SemanticVersion("1.0.0--1")! > SemanticVersion("1.0.0-2")!)
        #expect(SemanticVersion("1.0.0-2")! < SemanticVersion("1.0.0-10")!)
        #expect(SemanticVersion("1.0.0-rc.99999999999999999999")! > SemanticVersion("1.0.0-rc.2")!)
        let repo = try await DatedRepository("semver")
        defer { repo.remove() }
        try await repo.commit("first")
        try await repo.git("tag", "v1.0.0+build.5")
        try await repo.commit("second")
        try repo.repo.directory.write("file.txt", "dirty\n")
        let release = try Repository(discoveringFrom: repo.path).release()
        let parsed = try #require(SemanticVersion(release.version), "\(release.version) is not SemVer")
        #expect(parsed.build == ["build", "5", "dirty"])
        #expect(release.version.hasPrefix("1.0.0-1-g"))
    }

    @Test("clock skew hides a commit after the walk took it: the range is git's (the commit is left out)")
    func skewHidesATakenCommit() async throws {
        let repo = try await GitFixture("skew")
        defer { repo.remove() }
        // S is dated after the side branch built on it (D, C, B: a clock set in the past), and the
        // merge M has S and B as parents: walking base..M by date takes S before the hidden side
        // reaches it through D.
        func commit(_ message: String, at seconds: Int) async throws {
            let date = "@\(1_700_000_000 + seconds) +0000"
            _ = try await GitFixture.run(
                ["git", "commit", "-q", "--allow-empty", "-m", message], in: repo.path,
                environment: ["GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date])
        }
        try await commit("R", at: 1000)
        try await commit("S", at: 5000)
        try await repo.git("checkout", "-q", "-b", "side")
        try await commit("D", at: 300)
        try await commit("C", at: 500)
        try await commit("B", at: 1000)
        try await repo.git("tag", "base")
        try await repo.git("checkout", "-q", "main")
        let date = "@\(1_700_006_000) +0000"
        _ = try await GitFixture.run(
            ["git", "merge", "-q", "--no-ff", "-m", "M", "side"], in: repo.path,
            environment: ["GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date])
        let repository = try Repository(discoveringFrom: repo.path)
        let head = try repository.resolve("HEAD")
        let base = try repository.resolve("base")
        let theirs = try await GitFixture.run(["git", "rev-list", "base..HEAD"], in: repo.path).split(separator: "\n").map(String.init)
        #expect(theirs == [head])
        let (ours, ancestor) = try repository.commits(from: base, to: head) { $0.sha }
        #expect(ours == theirs)
        #expect(ancestor)
        var walked: [String] = []
        try repository.forEachCommit(from: base, to: head) { commit in
            walked.append(commit.sha)
            return true
        }
        #expect(walked == theirs)
    }

    @Test("a long range (past the walk's batches of 512): every commit, in git's order, with the entries made on a second thread")
    func longRange() async throws {
        let repo = try await GitFixture("long")
        defer { repo.remove() }
        // 1,500 commits in a line through git fast-import; v1.0.0 at the 200th.
        var stream = ""
        for index in 1...1500 {
            let message = (index % 3 == 0 ? "feat: step \(index)" : "fix(core): step \(index)") + "\n"
            stream += "commit refs/heads/main\nmark :\(index)\n"
            stream += "author Dev <dev@example.com> \(1_700_000_000 + index) +0000\n"
            stream += "committer Dev <dev@example.com> \(1_700_000_000 + index) +0000\n"
            stream += "data \(message.utf8.count)\n\(message)"
            if index > 1 { stream += "from :\(index - 1)\n" }
            stream += "\n"
        }
        stream += "reset refs/tags/v1.0.0\nfrom :200\n\n"
        let file = try repo.directory.write("stream", stream)
        _ = try await GitFixture.run(["sh", "-c", "git fast-import --quiet < \"$1\"", "sh", file], in: repo.path)
        let repository = try Repository(discoveringFrom: repo.path)
        let head = try repository.resolve("main")
        let theirs = try await GitFixture.run(["git", "rev-list", "v1.0.0..main"], in: repo.path).split(separator: "\n").map(String.init)
        #expect(theirs.count == 1300)
        let (ours, ancestor) = try repository.commits(from: try repository.resolve("v1.0.0"), to: head) { commit in
            "\(commit.sha) \(commit.subject)"
        }
        #expect(ours.map { String($0.prefix(40)) } == theirs)
        #expect(ours.first?.hasSuffix(" feat: step 1500") == true && ours.last?.hasSuffix(" feat: step 201") == true)
        #expect(ancestor)
    }

    /// Random branchy histories with random version tags (some commits sharing a date, some dated
    /// before their parents), compared with git: the distance to
    /// the nearest tag (`git describe --tags --long`), the range from the changelog's base
    /// (`git rev-list base..HEAD`, in git's order), and its first-parent form (`--first-parent`).
    @Test("random histories: version, range and first-parent range agree with git", .timeLimit(.minutes(3)))
    func randomHistories() async throws {
        let steps = Gen.int(in: 0...11).array(of: 6...28)
        await propertyCheck(count: 15, input: steps) { steps in
            do {
                try await Self.check(history: steps)
            } catch {
                Issue.record("\(steps): \(error)")
            }
        }
    }

    static let versions = ["1.0.0", "1.1.0", "1.0.1", "2.0.0-rc.1", "0.9.0", "2.0.0", "1.2.0", "1.1.1", "3.0.0-beta", "2.1.0"]

    static func check(history steps: [Int]) async throws {
        let repo = try await DatedRepository("random")
        defer { repo.remove() }
        try await repo.commit("root")
        var branches = ["main"]
        var current = "main"
        var tagged = 0
        for (index, step) in steps.enumerated() {
            switch step {
            case 0...3:
                try await repo.commit("change \(index)", file: "\(current).txt")
            case 4, 5:
                let version = versions[(index * 7 + tagged) % versions.count]
                if (try? await repo.git("rev-parse", "-q", "--verify", "refs/tags/v\(version)")) == nil {
                    try await repo.git("tag", "v\(version)")
                    tagged += 1
                }
            case 6:
                current = "b\(index)"
                branches.append(current)
                try await repo.git("checkout", "-q", "-b", current)
            case 7:
                current = branches[index % branches.count]
                try await repo.git("checkout", "-q", current)
            case 8:
                let other = branches[(index + 1) % branches.count]
                if other != current {
                    try await repo.git("merge", "-q", "--no-ff", "-m", "merge \(other) into \(current)", other)
                }
            case 10:
                // The next commit has the same date as this one.
                try await repo.commit("same minute \(index)", file: "\(current).txt")
                repo.rewind(3)
            case 11:
                // The next commit is dated before this one (a skewed clock).
                try await repo.commit("skewed \(index)", file: "\(current).txt")
                repo.rewind(10)
            default:
                try await repo.commit("more \(index)", file: "\(current).txt")
            }
        }
        let repository = try Repository(discoveringFrom: repo.path)
        let release = try repository.release()
        if let tag = release.tagName {
            // git describe counts while it walks by date: with a clock that went backwards its
            // count can be off (its own documentation's caveat). The exact count is rev-list's.
            if !steps.contains(11) {
                let described = try await repo.lines("describe", "--tags", "--long", "--abbrev=7")
                let gitDistance = described.first.flatMap { $0.split(separator: "-").dropLast().last.flatMap { Int($0) } }
                #expect(release.distance == gitDistance, "describe: \(described), ours: \(tag) at \(release.distance)")
            }
            let ours = try await repo.lines("rev-list", "--count", "\(tag)..HEAD")
            #expect(ours.first == String(release.distance))
        } else {
            #expect((try? await repo.lines("describe", "--tags")) == nil, "git found a tag that we did not")
        }
        // The whole history (a first deploy's changelog) in git's order too.
        var whole: [String] = []
        try repository.forEachCommit(from: nil, to: release.sha) { commit in
            whole.append(commit.sha)
            return true
        }
        #expect(whole == (try await repo.lines("rev-list", "HEAD")), "the whole history")
        guard let base = try repository.newestVersionTag(reachableFrom: release.sha, stableOnly: true, skipping: release.sha) else {
            return
        }
        for firstParent in [false, true] {
            var ours: [String] = []
            try repository.forEachCommit(from: base.tag.sha, to: release.sha, firstParentOnly: firstParent) { commit in
                ours.append(commit.sha)
                return true
            }
            let theirs =
                firstParent
                ? try await repo.lines("rev-list", "--first-parent", "\(base.tag.name)..HEAD")
                : try await repo.lines("rev-list", "\(base.tag.name)..HEAD")
            // The same commits in the same order: newest first by commit date, as git lists them.
            #expect(ours == theirs, "range from \(base.tag.name), first parent: \(firstParent)")
        }
    }
}
