public import Foundation
import SlipwayCore
public import SlipwayGit
public import SlipwayPipeline
public import SlipwayProcess
public import SlipwayStore

/// What a release ships: the commits since a base, grouped as Conventional Commits, a suggested
/// next version, and the risk report for the files touched.
public struct Changelog: Sendable, Hashable, Codable {
    public struct Base: Sendable, Hashable, Codable {
        public enum Kind: String, Sendable, Codable {
            /// The environment's last good release, from the run store.
            case lastGoodRelease = "last-good-release"
            /// The nearest earlier stable version tag.
            case tag
            /// `--since REV`.
            case since
            /// The first commit: nothing earlier to compare with.
            case root
        }

        public var kind: Kind
        public var sha: String?
        /// How the base was chosen, in a sentence.
        public var description: String
    }

    public struct Entry: Sendable, Hashable, Codable {
        public var sha: String
        public var subject: String
        /// The subject without its Conventional Commit prefix (the subject itself otherwise).
        public var summary: String
        public var body: String
        public var author: String
        public var date: Date
        public var type: String?
        public var scope: String?
        public var breaking: Bool
        public var breakingNote: String?
        /// Risk categories of the files this commit touched (computed for ranges up to 1,000 commits).
        public var flags: [String]

        public init(
            sha: String, subject: String, summary: String? = nil, body: String = "", author: String = "", date: Date = Date(),
            type: String? = nil, scope: String? = nil, breaking: Bool = false, breakingNote: String? = nil, flags: [String] = []
        ) {
            self.sha = sha
            self.subject = subject
            self.summary = summary ?? subject
            self.body = body
            self.author = author
            self.date = date
            self.type = type
            self.scope = scope
            self.breaking = breaking
            self.breakingNote = breakingNote
            self.flags = flags
        }
    }

    public var environment: String?
    public var version: String
    public var head: String
    public var base: Base
    /// False when the base is not an ancestor of the release (a rollback, or a rewritten history).
    public var baseIsAncestor: Bool
    /// Commits in the base that the release does not contain: deploying it undoes them.
    public var undone: Int
    public var commits: [Entry]
    public var suggestedVersion: String?
    public var risk: RiskReport
    public var notes: [String]

    public var breaking: [Entry] { commits.filter(\.breaking) }

    static let groupTitles: [(type: String?, title: String)] = [
        ("feat", "Features"), ("fix", "Fixes"), ("perf", "Performance"), ("revert", "Reverts"), ("docs", "Documentation"),
        (nil, "Other changes"),
    ]

    /// Commits per group, in the order a changelog shows them.
    public var groups: [(title: String, entries: [Entry])] {
        groupIndices.map { ($0.title, $0.indices.map { commits[$0] }) }
    }

    /// The same, as positions in `commits` (no copy of any commit).
    var groupIndices: [(title: String, indices: [Int])] {
        var buckets = [[Int]](repeating: [], count: Self.groupTitles.count)
        let other = Self.groupTitles.count - 1
        for (position, entry) in commits.enumerated() {
            let index = Self.groupTitles.firstIndex { $0.type != nil && $0.type == entry.type } ?? other
            buckets[index].append(position)
        }
        return zip(Self.groupTitles, buckets).filter { !$0.1.isEmpty }.map { ($0.0.title, $0.1) }
    }

    /// The changelog as Markdown.
    public var markdown: String {
        var text = "## \(version)" + (suggestedVersion.map { " (suggested next version: \($0))" } ?? "") + "\n\n"
        text.reserveCapacity(commits.count * 64)
        text += "Since \(base.description): \(commits.count) commit\(commits.count == 1 ? "" : "s").\n"
        if !baseIsAncestor {
            text +=
                "\n> **Warning:** the base is not an ancestor of this release: deploying it undoes \(undone) commit\(undone == 1 ? "" : "s") that the base has.\n"
        }
        if !breaking.isEmpty {
            text += "\n### ⚠ Breaking changes\n\n"
            for entry in breaking { text += "- " + Self.line(entry) + (entry.breakingNote.map { ": \($0)" } ?? "") + "\n" }
        }
        for (title, indices) in groupIndices {
            text += "\n### \(title)\n\n"
            for index in indices {
                text += "- "
                Self.appendLine(commits[index], to: &text)
                text += "\n"
            }
        }
        if !risk.isEmpty {
            text += "\n### Risk\n\n"
            for line in risk.lines { text += "- \(line)\n" }
        }
        return text
    }

    static func line(_ entry: Entry) -> String {
        var text = ""
        appendLine(entry, to: &text)
        return text
    }

    /// `**scope:** summary (abc1234) · flags`, appended in place: a long changelog has tens of
    /// thousands of these, and neither the entry nor the pieces are copied.
    static func appendLine(_ entry: borrowing Entry, to text: inout String) {
        if let scope = entry.scope {
            text += "**"
            text += scope
            text += ":** "
        }
        text += entry.summary
        text += " ("
        text += entry.sha.prefix(7)
        text += ")"
        if !entry.flags.isEmpty {
            text += " · "
            text += entry.flags.joined(separator: ", ")
        }
    }

    /// The next version the commits call for: a breaking change bumps major (minor before 1.0),
    /// a feature minor, anything else patch; with no version before, the same from 0.0.0 (a
    /// feature makes 0.1.0, a fix 0.0.1). Never a version some tag already spells (`existing`):
    /// the same part is bumped again until it is free (a hotfix line may have taken it).
    public static func suggest(from base: SemanticVersion?, commits: [Entry], existing: Set<SemanticVersion> = []) -> String? {
        guard !commits.isEmpty else { return nil }
        var next = base ?? SemanticVersion(major: 0, minor: 0, patch: 0)
        next.prerelease = []
        next.build = []
        enum Part { case major, minor, patch, none }
        let part: Part =
            if commits.contains(where: \.breaking) {
                next.major == 0 ? .minor : .major
            } else if commits.contains(where: { $0.type == "feat" }) {
                .minor
            } else if base?.isPrerelease == true {
                // 1.2.0-rc.1 with only fixes on top: the release itself
                .none
            } else {
                .patch
            }
        func bump(_ part: Part) {
            switch part {
            case .major: (next.major, next.minor, next.patch) = (next.major + 1, 0, 0)
            case .minor: (next.minor, next.patch) = (next.minor + 1, 0)
            case .patch, .none: next.patch += 1
            }
        }
        if part != .none { bump(part) }
        while existing.contains(next) { bump(part) }
        return next.description
    }
}

extension Changelog {
    /// Builds the changelog of `release` (a commit of `repository`) for `environment`. The range
    /// starts at `since` when given, else at the environment's last good release, else at the
    /// nearest earlier stable version tag, else at the root.
    public static func build(
        repository: Repository, release: GitRelease, version: String? = nil, environment: String?, store: (any RunLog)?,
        since: String? = nil, firstParentOnly: Bool = false, rules: RiskRules = .defaults
    ) async throws -> Changelog {
        let head = release.sha
        var notes: [String] = []
        var base: Base?
        if let since {
            let sha = try repository.resolve(since)
            base = Base(kind: .since, sha: sha, description: "\(since) (\(sha.prefix(7)))")
        }
        if base == nil, let environment, let store, let good = try await store.lastSucceeded(environment: environment), let sha = good.sha {
            if repository.contains(sha) {
                base = Base(
                    kind: .lastGoodRelease, sha: sha,
                    description:
                        "the last good release of \(environment), \(good.version ?? String(sha.prefix(7))) (run \(good.id), \(sha.prefix(7)))"
                )
            } else {
                notes.append(
                    "\(environment)'s last good release \(sha.prefix(7)) (run \(good.id)) is not in this repository"
                        + (repository.isShallow ? ": this is a shallow clone, run `git fetch --unshallow`" : ": fetch it, or pass --since"))
            }
        }
        // The newest stable version reachable from the release, not the nearest: a hotfix tag
        // merged back is older than the release it was merged into.
        var baseVersion: SemanticVersion?
        if base == nil, let newest = try repository.newestVersionTag(reachableFrom: head, stableOnly: true, skipping: head) {
            base = Base(kind: .tag, sha: newest.tag.sha, description: "tag \(newest.tag.name)")
            baseVersion = newest.version
        }
        if base == nil {
            base = Base(kind: .root, sha: nil, description: "the start of history")
            if repository.isShallow {
                notes.append("this is a shallow clone: the changelog stops where its history does (run `git fetch --unshallow --tags`)")
            }
        }
        let chosen = base!
        var risk = RiskReport(files: [], rules: rules)
        do {
            risk = RiskReport(files: try repository.changedFiles(from: chosen.sha, to: head), rules: rules)
        } catch {
            guard error.isMissingObject else { throw error }
            // A partial clone without trees (`--filter=tree:0`): git fetches missing objects from
            // its promisor remote when it needs them; libgit2 1.5 cannot.
            risk = RiskReport(files: [], rules: rules)
            risk.unreadable =
                "the trees of this range are not in this clone"
                + (repository.isPartialClone
                    ? " (a partial clone, e.g. `--filter=tree:0`, whose missing objects libgit2 cannot fetch)" : "")
                + "; run `git diff --stat \(chosen.sha.map { String($0.prefix(12)) } ?? "HEAD~1") HEAD` (git fetches them) or clone with `--filter=blob:none`"
            notes.append("no risk report: " + risk.unreadable!)
        }
        // Each entry is made from its commit alone: over a long range, on a second thread while
        // the walk reads on.
        var (entries, ancestor) = try repository.commits(from: chosen.sha, to: head, firstParentOnly: firstParentOnly) { commit in
            let conventional = ConventionalCommit(subject: commit.subject, body: commit.body)
            return Entry(
                sha: commit.sha, subject: commit.subject, summary: conventional?.description ?? commit.subject, body: commit.body,
                author: commit.author, date: commit.date, type: conventional?.type, scope: conventional?.scope,
                breaking: conventional?.breaking ?? false, breakingNote: conventional?.breakingNote, flags: [])
        }
        let undone = ancestor ? 0 : try repository.count(from: head, to: chosen.sha!)
        // Which commit touched a flagged file: one tree diff per commit, so only for ranges of a
        // reasonable size. Done even when the range as a whole flags nothing: a secret added and
        // removed again inside it is still in the history.
        if entries.count <= 1000 && risk.unreadable == nil {
            let matcher = rules.compiled()
            // The same files change in commit after commit: each path is matched once.
            var known: [String: [String]] = [:]
            for index in entries.indices {
                guard let touched = try? repository.filesChangedBy(entries[index].sha) else { break }
                let categories = touched.flatMap { path in
                    if let found = known[path] { return found }
                    let found = matcher.categories(of: path)
                    known[path] = found
                    return found
                }
                entries[index].flags = Array(Set(categories)).sorted()
            }
        }
        // The version the suggestion bumps: the base tag's, else the one git describe names at the base.
        if baseVersion == nil, let sha = chosen.sha { baseVersion = try repository.nearestVersionTag(from: sha)?.version }
        return Changelog(
            environment: environment, version: version ?? release.version, head: head, base: chosen, baseIsAncestor: ancestor,
            undone: undone, commits: entries,
            suggestedVersion: suggest(from: baseVersion, commits: entries, existing: try repository.taggedVersions()), risk: risk,
            notes: notes)
    }

    /// Commits per risk category, for "7 commits, 1 of them a migration".
    public var flaggedCommitCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for entry in commits { for flag in entry.flags { counts[flag, default: 0] += 1 } }
        return counts
    }

    /// One line for the start of a run: `ships 12 commits touching 40 files since …; flagged: …`.
    public var summary: String {
        risk.summary(commits: commits.count) + alongTheWay + " (since \(base.description))"
    }

    /// What what rolling back to the base undoes: `rolling back undoes 7 commits, 1 of them a migration: …`.
    public var rollbackSummary: String {
        risk.rollbackSummary(commits: commits.count, flaggedCommits: flaggedCommitCounts) + alongTheWay
    }

    /// Categories only single commits touched (the range as a whole leaves no trace of them:
    /// a secret-like file added and removed again): `; along the way, 1 commit touched a secret-like file`.
    var alongTheWay: String {
        let shown = Set(risk.flags.map(\.category))
        let hidden = flaggedCommitCounts.filter { !shown.contains($0.key) }.sorted { $0.key < $1.key }
        guard !hidden.isEmpty else { return "" }
        return "; along the way, "
            + hidden.map {
                "\($0.value) commit\($0.value == 1 ? "" : "s") touched \($0.value == 1 ? "a " : "")\(RiskReport.noun($0.key, $0.value))"
            }
            .joined(separator: ", ")
    }
}

extension Changelog {
    /// A changelog as a run recorded it (`RunLog.saveChangelog`'s JSON).
    public static func decodeRecorded(_ json: String) -> Changelog? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Changelog.self, from: Data(json.utf8))
    }
}

extension Changelog {
    /// The changelog with every secret's value masked in what people wrote: subjects, bodies,
    /// authors, breaking-change notes, and the notes about the range.
    public func masked(by masker: SecretMasker) -> Changelog {
        // No secrets: nothing to mask, and no second copy of every commit's text (a 50,000-commit
        // changelog's memory and a tenth of its time).
        guard masker.longestSecret > 0 else { return self }
        var copy = self
        for index in copy.commits.indices {
            copy.commits[index].subject = masker.mask(copy.commits[index].subject)
            copy.commits[index].summary = masker.mask(copy.commits[index].summary)
            copy.commits[index].body = masker.mask(copy.commits[index].body)
            copy.commits[index].author = masker.mask(copy.commits[index].author)
            copy.commits[index].breakingNote = copy.commits[index].breakingNote.map(masker.mask)
        }
        copy.notes = notes.map(masker.mask)
        copy.base.description = masker.mask(base.description)
        return copy
    }
}
