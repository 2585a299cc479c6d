import SlipwayCore
public import SlipwayPipeline

/// The files a range of commits touches, and those a risk rule flags.
public struct RiskReport: Sendable, Hashable, Codable {
    public struct Flag: Sendable, Hashable, Codable {
        public var category: String
        public var paths: [String]
    }

    public var filesChanged: Int
    public var flags: [Flag]
    /// Why the files could not be read (a partial clone without trees), when they could not.
    public var unreadable: String?

    public init(files: [String], rules: RiskRules) {
        filesChanged = Set(files).count
        var byCategory: [String: [String]] = [:]
        let matcher = rules.compiled()
        for path in Set(files).sorted() {
            for category in matcher.categories(of: path) { byCategory[category, default: []].append(path) }
        }
        flags = rules.categories.compactMap { category in byCategory[category.name].map { Flag(category: category.name, paths: $0) } }
    }

    public var isEmpty: Bool { flags.isEmpty }

    static func noun(_ category: String, _ count: Int) -> String {
        let word: String =
            switch category {
            case "migration": "database migration"
            case "manifest": "Kubernetes manifest"
            case "dependency": "dependency file"
            case "secret": "secret-like file"
            default: category
            }
        return count == 1 ? word : word + "s"
    }

    /// One line per flagged category: `1 database migration: db/migrations/0042_add_index.sql`.
    public var lines: [String] {
        flags.map { flag in
            let shown = flag.paths.prefix(5).joined(separator: ", ") + (flag.paths.count > 5 ? ", … (\(flag.paths.count - 5) more)" : "")
            return "\(flag.paths.count) \(Self.noun(flag.category, flag.paths.count)): \(shown)"
        }
    }

    /// What going forward changes: `ships 12 commits touching 40 files; flagged: 1 database migration: …`.
    public func summary(commits: Int) -> String {
        if unreadable != nil { return "ships \(commits) commit\(commits == 1 ? "" : "s"); files unknown (no risk report)" }
        let head = "ships \(commits) commit\(commits == 1 ? "" : "s") touching \(filesChanged) file\(filesChanged == 1 ? "" : "s")"
        return isEmpty ? head + "; nothing flagged" : head + "; flagged: " + lines.joined(separator: "; ")
    }

    /// What going back undoes: `rolling back undoes 7 commits, 1 of them a migration: db/…`.
    /// `flaggedCommits` counts, per category, the commits that touched its files.
    public func rollbackSummary(commits: Int, flaggedCommits: [String: Int]) -> String {
        var text = "rolling back undoes \(commits) commit\(commits == 1 ? "" : "s")"
        let parts = flags.map { flag -> String in
            let count = flaggedCommits[flag.category] ?? flag.paths.count
            let what =
                flag.category == "migration"
                ? (count == 1 ? "a migration" : "migrations")
                : (count == 1 ? "a \(Self.noun(flag.category, 1)) change" : "\(Self.noun(flag.category, 1)) changes")
            return "\(count) of them \(what): " + flag.paths.prefix(3).joined(separator: ", ")
        }
        if !parts.isEmpty { text += ", " + parts.joined(separator: "; ") }
        return text
    }
}
