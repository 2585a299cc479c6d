import SlipwayGit
import Testing

@Suite("Conventional Commits")
struct ConventionalCommitTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var subject: String
        var body: String = ""
        var type: String?
        var scope: String? = nil
        var breaking = false
        var testDescription: String { subject }
    }

    static let cases: [Case] = [
        Case(subject: "feat: add canary steps", type: "feat"),
        Case(subject: "fix(api): retry on 503", type: "fix", scope: "api"),
        Case(subject: "feat(ui)!: drop the old dashboard", type: "feat", scope: "ui", breaking: true),
        Case(subject: "refactor!: rename the store", type: "refactor", breaking: true),
        Case(subject: "chore: bump deps", body: "BREAKING CHANGE: needs Swift 6", type: "chore", breaking: true),
        Case(subject: "perf: faster walk", body: "BREAKING-CHANGE: new cache format", type: "perf", breaking: true),
        Case(subject: "Feat: capitalised type", type: "feat"),
        Case(subject: "Update README", type: nil),
        Case(subject: "fix: ", type: nil),
        Case(subject: "fix(): empty scope", type: nil),
        Case(subject: "Merge branch 'main' into topic", type: nil),
        Case(subject: "feat(naïve): ünïcödé déscription ✨", type: "feat", scope: "naïve"),
    ]

    @Test("subjects parse into type, scope and breaking", arguments: cases)
    func parses(_ c: Case) {
        let parsed = ConventionalCommit(subject: c.subject, body: c.body)
        #expect(parsed?.type == c.type)
        if c.type != nil {
            #expect(parsed?.scope == c.scope)
            #expect(parsed?.breaking == c.breaking)
        }
    }
}
