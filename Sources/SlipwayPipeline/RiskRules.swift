import SlipwayCore

/// Path patterns that make a change risky, by category: `**` any number of folders, `*` and `?`
/// within a name; a pattern with no `/` matches a file's name in any folder.
public struct RiskRules: Sendable, Hashable {
    public var categories: [(name: String, patterns: [String])]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.categories.map(\.name) == rhs.categories.map(\.name) && lhs.categories.map(\.patterns) == rhs.categories.map(\.patterns)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(categories.map(\.name)) }

    /// The defaults: database migrations, Kubernetes manifests, dependency manifests and lock
    /// files, and names that look like secrets.
    public static let defaults = RiskRules(categories: [
        ("migration", ["**/migrations/**", "**/migrate/**", "*.sql"]),
        (
            "manifest",
            [
                "**/manifests/**", "**/Manifests/**", "**/k8s/**", "**/kubernetes/**", "**/helm/**", "kustomization.yaml",
                "kustomization.yml", "Chart.yaml",
            ]
        ),
        (
            "dependency",
            [
                "Package.swift", "Package.resolved", "*.lock", "package-lock.json", "go.mod", "go.sum",
                "requirements*.txt", "Cargo.toml", "pom.xml", "build.gradle",
            ]
        ),
        // "secret" and "credential" as words of the name (`db-secret.yaml`, `client_secret.json`,
        // `credentials`), not inside another word (`secretary.py`).
        (
            "secret",
            [
                "*.pem", "*.key", "*.p12", "*.pfx", ".env", ".env.*", "id_rsa*", "id_ed25519*", "**/secrets/**", "secret", "secrets",
                "secret.*", "secrets.*", "*[-_.]secret", "*[-_.]secrets", "*[-_.]secret.*", "*[-_.]secrets.*", "credentials",
                "credentials.*", "*[-_.]credentials", "*[-_.]credentials.*", "credential.*", "*[-_.]credential.*",
            ]
        ),
    ])

    /// The defaults with the pipeline's categories laid over them: a category of the same name
    /// replaces the default one, an empty list switches it off.
    public func merging(_ overrides: [(name: String, patterns: [String])]) -> RiskRules {
        var merged = categories
        for (name, patterns) in overrides {
            if let index = merged.firstIndex(where: { $0.name == name }) {
                merged[index].patterns = patterns
            } else {
                merged.append((name, patterns))
            }
        }
        return RiskRules(categories: merged.filter { !$0.patterns.isEmpty })
    }

    /// The categories a path falls in.
    public func categories(of path: String) -> [String] {
        compiled().categories(of: path)
    }

    /// The rules with every pattern parsed once, for matching many paths (a release's files, each
    /// commit's): parsing each pattern again for each path was most of a deploy's own time on a
    /// repository of a few thousand files.
    public func compiled() -> Compiled {
        Compiled(categories: categories.map { ($0.name, $0.patterns.map(Glob.Pattern.init)) })
    }

    public struct Compiled: Sendable {
        let categories: [(name: String, patterns: [Glob.Pattern])]

        public func categories(of path: String) -> [String] {
            let path = Glob.Path(path)
            return categories.filter { category in category.patterns.contains { $0.matches(path) } }.map(\.name)
        }
    }
}

/// Glob matching for repository paths.
public enum Glob {
    public static func matches(_ pattern: String, path: String) -> Bool {
        Pattern(pattern).matches(Path(path))
    }

    /// A pattern parsed once: a name pattern (no `/`: it matches a file's name in any folder), or
    /// folder by folder, `**` standing for any number of them.
    struct Pattern: Sendable {
        enum Segment: Sendable {
            case anyFolders
            case name([Token])
        }
        let nameOnly: [Token]?
        let segments: [Segment]

        init(_ pattern: String) {
            if !pattern.contains("/") {
                nameOnly = Glob.tokens(Array(pattern))
                segments = []
            } else {
                nameOnly = nil
                segments = pattern.split(separator: "/").map { $0 == "**" ? .anyFolders : .name(Glob.tokens(Array($0))) }
            }
        }

        func matches(_ path: Path) -> Bool {
            if let nameOnly { return Glob.matchSegment(nameOnly, path.segments.last ?? []) }
            return Glob.matchSegments(segments[...], path.segments[...])
        }
    }

    /// A path split into its names once, each as characters.
    struct Path {
        let segments: [[Character]]
        init(_ path: String) { segments = path.split(separator: "/").map { Array($0) } }
    }

    private static func matchSegments(_ pattern: ArraySlice<Pattern.Segment>, _ path: ArraySlice<[Character]>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        switch first {
        case .anyFolders:
            let rest = pattern.dropFirst()
            return (path.startIndex...path.endIndex).contains { matchSegments(rest, path[$0...]) }
        case .name(let tokens):
            guard let name = path.first, matchSegment(tokens, name) else { return false }
            return matchSegments(pattern.dropFirst(), path.dropFirst())
        }
    }

    /// One element of a name pattern: `?`, `*`, a character, or a class (`[-_.]`, `[!0-9]`).
    enum Token: Equatable, Sendable {
        case one, star
        case literal(Character)
        case set([ClosedRange<Character>], negated: Bool)

        func matches(_ character: Character) -> Bool {
            switch self {
            case .one: true
            case .star: false
            case .literal(let literal): literal == character
            case .set(let ranges, let negated): ranges.contains { $0.contains(character) } != negated
            }
        }
    }

    static func tokens(_ pattern: [Character]) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        while index < pattern.count {
            let character = pattern[index]
            if character == "*" {
                tokens.append(.star)
            } else if character == "?" {
                tokens.append(.one)
            } else if character == "[", let close = pattern[(index + 1)...].dropFirst().firstIndex(of: "]") {
                var body = Array(pattern[(index + 1)..<close])
                let negated = body.first == "!" || body.first == "^"
                if negated { body.removeFirst() }
                var ranges: [ClosedRange<Character>] = []
                var position = 0
                while position < body.count {
                    if position + 2 < body.count, body[position + 1] == "-", body[position] <= body[position + 2] {
                        ranges.append(body[position]...body[position + 2])
                        position += 3
                    } else {
                        ranges.append(body[position]...body[position])
                        position += 1
                    }
                }
                tokens.append(.set(ranges, negated: negated))
                index = close
            } else {
                tokens.append(.literal(character))
            }
            index += 1
        }
        return tokens
    }

    private static func matchSegment(_ pattern: [Token], _ name: [Character]) -> Bool {
        var p = 0, n = 0, star = -1, mark = 0
        while n < name.count {
            if p < pattern.count, pattern[p] != .star, pattern[p].matches(name[n]) {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == .star {
                star = p
                mark = n
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                n = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == .star { p += 1 }
        return p == pattern.count
    }
}
