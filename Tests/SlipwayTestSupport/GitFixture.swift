import Foundation
import SlipwayProcess

/// A real git repository in a temporary directory, built with the git CLI.
public struct GitFixture: Sendable {
    public let directory: TemporaryDirectory
    public var path: String { directory.path }

    public init(_ label: String = "repo") async throws {
        directory = try TemporaryDirectory(label)
        try await git("init", "-q", "-b", "main")
        try await git("config", "user.name", "Test Author")
        try await git("config", "user.email", "author@example.com")
        try await git("config", "commit.gpgsign", "false")
    }

    /// Runs git in the repository; returns its standard output, throwing when it fails.
    @discardableResult
    public func git(_ arguments: String..., in directory: String? = nil) async throws -> String {
        try await Self.run(["git"] + arguments, in: directory ?? path)
    }

    @discardableResult
    public static func run(_ argv: [String], in directory: String, environment extra: [String: String] = [:]) async throws -> String {
        let output = OutputBox()
        var environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        environment["GIT_AUTHOR_DATE"] = environment["GIT_AUTHOR_DATE"] ?? "2026-01-01T00:00:00Z"
        let termination = try await ProcessRunner().run(
            ProcessSpec(executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment, workingDirectory: directory),
            masker: .none, onStart: { _ in }, onOutput: { line in output.append(line) })
        guard termination.succeeded else {
            throw DeployProcessError(
                message: "\(argv.joined(separator: " ")) failed (\(termination)): \(output.all.joined(separator: "\n"))")
        }
        return output.stdout.joined(separator: "\n")
    }

    /// Writes a file and commits it with `message`; returns the new commit's sha.
    @discardableResult
    public func commit(_ message: String, file: String = "file.txt", contents: String? = nil) async throws -> String {
        let target = directory.file(file)
        let previous = (try? String(contentsOfFile: target, encoding: .utf8)) ?? ""
        try directory.write(file, contents ?? previous + message + "\n")
        try await git("add", "--", file)
        try await git("commit", "-q", "-m", message)
        return try await git("rev-parse", "HEAD")
    }

    public func remove() { directory.remove() }
}

final class OutputBox: Sendable {
    private let lines = MutexBox<[OutputLine]>([])
    func append(_ line: OutputLine) { lines.with { $0.append(line) } }
    var stdout: [String] { lines.with { $0.filter { $0.stream == .stdout }.map(\.text) } }
    var all: [String] { lines.with { $0.map(\.text) } }
}
