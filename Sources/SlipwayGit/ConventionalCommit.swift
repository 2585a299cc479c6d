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
        // A noun: letters, then letters, digits or hyphens (`feat`, `i18n`, `build-deps`).
        guard let first = head.utf8.first, Self.isLetter(first),
            head.utf8.allSatisfy({ Self.isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
        else { return nil }
        var note: String?
        if body.utf8.contains(0x42), body.contains("BREAKING") {
            // By unicode scalars: in a Character view "\r\n" is one character, never equal to "\n".
            for line in body.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map(String.UnicodeScalarView.init)
                .map(String.init)
            {
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

    private static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }
}
