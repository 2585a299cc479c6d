import ArgumentParser
import Foundation
import Slipway

struct ChangelogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changelog",
        abstract: "Show the version and what would ship: the commits since the environment's last good release.",
        discussion: """
            The range starts at --since when given, else at the environment's last good release (from the run store), \
            else at the nearest earlier stable version tag, else at the first commit. Commits written as Conventional \
            Commits (feat:, fix(api):, feat!:, BREAKING CHANGE:) are grouped, and a next version is suggested. The files \
            the range touches are checked against the pipeline's risk patterns (migrations, manifests, dependencies, \
            secret-like names).
            """)

    @Argument(help: "The environment whose last good release starts the range (omit: since the previous stable tag).")
    var environment: String?

    @Option(name: .long, help: ArgumentHelp("Start the range at this revision instead (a tag, branch or sha).", valueName: "rev"))
    var since: String?

    @Flag(name: .long, help: "Follow only the first parent of merges (the branch's own history).")
    var firstParent = false

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the changelog as JSON.")
    var json = false

    func run() async throws {
        try await guarded {
            let pipeline = try? location.loadPipeline()
            if let environment, let pipeline, pipeline.environment(named: environment) == nil {
                throw Plan.UnknownEnvironment(name: environment, known: pipeline.environments.map(\.name), file: pipeline.file)
            }
            let (changelog, shallow, shortSHA) = try await location.workspace().changelog(
                environment: environment, pipeline: pipeline, since: since, firstParentOnly: firstParent,
                directory: FileManager.default.currentDirectoryPath)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(changelog), as: UTF8.self))
                return
            }
            for note in changelog.notes { Console.standardError.write("note: \(note)\n") }
            if shallow {
                Console.standardError.write("note: this is a shallow clone: run `git fetch --unshallow --tags` for the whole history\n")
            }
            print(changelog.markdown, terminator: "")
            if changelog.commits.isEmpty {
                print("\nNothing to ship: \(shortSHA) is what \(environment ?? "the base") already has.")
            }
        }
    }
}
