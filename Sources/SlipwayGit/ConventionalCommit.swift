/// A commit message read as a Conventional Commit (`feat(api)!: drop v1`), when it is one.
public struct ConventionalCommit: Sendable, Hashable, Codable {
    public var type: String
    public var scope: String?
    public var description: String
    /// `!` after the type/scope, or a `BREAKING CHANGE:` / `BREAKING-CHANGE:` footer.
    public var breaking: Bool
    /// The footer's text, when it explains the breaking change.
    public var breakingNote: String?

    /// Parses the subject and body; nil when the subject is not `type(scope)!: description`.
    public init?(subject: String, body: String = "") {
        guard let colon = subject.firstIndex(of: ":"), subject[subject.index(after: colon)...].first == " " else { return nil }
        var head = subject[..<colon]
        let description = subject[subject.index(after: colon)...].trimmingWhitespace()
        guard !description.isEmpty else { return nil }
        var bang = false
        if head.hasSuffix("!") {
            bang = true
            head = head.dropLast()
        }
        var scope: String?
        if head.hasSuffix(")"), let open = head.firstIndex(of: "(") {
            scope = String(head[head.index(after: open)..<head.index(before: head.endIndex)])
            head = head[..<open]
            guard let scope, !scope.isEmpty, !scope.contains(where: { $0 == "(" || $0 == ")" }) else { return nil }
        }
        guard !head.isEmpty, head.utf8.allSatisfy({ ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A || $0 == 0x2D }) else { return nil }
        var note: String?
        if body.utf8.contains(0x42), body.contains("BREAKING") {
            for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
                for marker in ["BREAKING CHANGE:", "BREAKING-CHANGE:"] where line.hasPrefix(marker) {
                    note = line.dropFirst(marker.count).trimmingWhitespace()
                }
            }
        }
        self.type = head.lowercased()
        self.scope = scope
        self.description = description
        self.breaking = bang || note != nil
        self.breakingNote = note
    }
}
