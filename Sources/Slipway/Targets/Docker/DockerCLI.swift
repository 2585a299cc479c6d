import Foundation
public import SlipwayCore
import SlipwayPipeline
public import SlipwayProcess

/// A container Slipway started for an environment, as `docker inspect` describes it.
public struct DeployedContainer: Sendable, Hashable {
    public var id: String
    public var name: String
    public var running: Bool
    public var labels: [String: String]

    /// The host port on 127.0.0.1 that docker published it on (older releases named it in a label).
    public var publishedPort: Int?
    public var port: Int? { publishedPort ?? labels[DockerCLI.Label.port].flatMap { Int($0) } }
    public var release: ReleaseReference? {
        guard let run = labels[DockerCLI.Label.run].flatMap({ Int64($0) }), let image = labels[DockerCLI.Label.image] else { return nil }
        return ReleaseReference(run: run, version: labels[DockerCLI.Label.version], sha: labels[DockerCLI.Label.sha], image: image)
    }
    /// Earlier releases that passed their gates and bake here, newest first, as the container was
    /// told when it started: what `deploy rollback` falls back on when the run store is gone.
    public var goodHistory: [ReleaseReference] {
        guard let text = labels[DockerCLI.Label.history] else { return [] }
        return (try? JSONDecoder().decode([ReleaseReference].self, from: Data(text.utf8))) ?? []
    }
}

/// One host's containers, driven through the docker CLI (Docker Engine, or podman's Docker API):
/// every command an argv, never a shell.
public struct DockerCLI: Sendable {
    public let command: String
    public let environment: [String: String]
    public let launcher: any ProcessLaunching
    public let app: String
    public let environmentName: String

    public enum Label {
        public static let app = "io.slipway.app"
        public static let environment = "io.slipway.environment"
        public static let run = "io.slipway.run"
        public static let version = "io.slipway.version"
        public static let sha = "io.slipway.sha"
        public static let image = "io.slipway.image"
        public static let port = "io.slipway.port"
        public static let startedBy = "io.slipway.started-by"
        public static let history = "io.slipway.good-history"
    }

    public init(command: String, environment: [String: String], launcher: any ProcessLaunching, app: String, environmentName: String) {
        self.command = command
        self.environment = environment
        self.launcher = launcher
        self.app = app
        self.environmentName = environmentName
    }

    public typealias CommandFailed = TargetCommandFailed

    /// Runs `docker <arguments>` and returns what it printed; a non-zero exit throws with its output.
    @discardableResult
    public func run(_ arguments: [String], timeout: Duration = .seconds(300), onLine: @escaping @Sendable (String) -> Void = { _ in })
        async throws -> String
    {
        let spec = ProcessSpec(
            executable: command, arguments: arguments, environment: environment, timeout: timeout, gracePeriod: .seconds(2))
        let (termination, output) = try await launcher.capture(spec, onLine: onLine)
        guard termination.succeeded else {
            throw CommandFailed(command: spec.displayCommand, termination: termination.description, output: output)
        }
        return output
    }

    /// A name for a new container of this environment (`hello-staging-r12-4f0c2a`). The random
    /// part makes it unique whatever the run store says: a store lost and begun again repeats run
    /// ids, and a name already taken must never make a deploy touch the container that has it.
    public func containerName(run: Int64) -> String {
        let safe = "\(app)-\(environmentName)".map { $0.isLetter || $0.isNumber || "_.-".contains($0) ? $0 : "-" }
        let token = String(UInt32.random(in: 0...0xFF_FFFF), radix: 16)
        return String(safe) + "-r\(run)-" + String(repeating: "0", count: 6 - token.count) + token
    }

    /// Every container of this app and environment that Slipway started, running or not.
    public func containers() async throws -> [DeployedContainer] {
        let ids = try await run([
            "ps", "-aq", "--no-trunc", "--filter", "label=\(Label.app)=\(app)", "--filter", "label=\(Label.environment)=\(environmentName)",
        ])
        .split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard !ids.isEmpty else { return [] }
        let text = try await run(["inspect", "--type", "container"] + ids)
        struct Inspected: Decodable {
            struct State: Decodable { var Running: Bool }
            struct Config: Decodable { var Labels: [String: String]? }
            struct Binding: Decodable { var HostPort: String? }
            struct Network: Decodable { var Ports: [String: [Binding]?]? }
            var Id: String
            var Name: String
            var State: State
            var Config: Config
            var NetworkSettings: Network?
        }
        let inspected = try JSONDecoder().decode([Inspected].self, from: Data(text.utf8))
        return inspected.map {
            let published = $0.NetworkSettings?.Ports?.values.compactMap { $0?.first?.HostPort.flatMap { Int($0) } }.first
            return DeployedContainer(
                id: $0.Id, name: $0.Name.hasPrefix("/") ? String($0.Name.dropFirst()) : $0.Name, running: $0.State.Running,
                labels: $0.Config.Labels ?? [:], publishedPort: published)
        }
    }

    /// A container that started but never answered.
    public struct NotReady: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Starts `release` as a new container on a loopback port that docker picks (`--publish
    /// 127.0.0.1::PORT`: no other process can take it between a check and the use), and returns
    /// the container's id and that port. `history` (the good releases before it) goes into a
    /// label, so the host itself can say what to roll back to.
    public func start(
        _ release: ReleaseReference, name: String, containerPort: Int, history: [ReleaseReference], startedBy: Int64,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> (id: String, port: Int) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let historyText = String(decoding: try encoder.encode(Array(history.prefix(5))), as: UTF8.self)
        var labels = [
            (Label.app, app), (Label.environment, environmentName), (Label.run, String(release.run)), (Label.image, release.image),
            (Label.startedBy, String(startedBy)), (Label.history, historyText),
        ]
        if let version = release.version { labels.append((Label.version, version)) }
        if let sha = release.sha { labels.append((Label.sha, sha)) }
        var arguments = ["run", "--detach", "--name", name, "--publish", "127.0.0.1::\(containerPort)"]
        arguments += ["--env", "PORT=\(containerPort)"]
        for (key, value) in labels { arguments += ["--label", "\(key)=\(value)"] }
        arguments.append(release.image)
        // The id is the last line (a pull's progress may come first).
        let output = try await run(arguments, onLine: onLine)
        let id = output.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        // `127.0.0.1:41234` (podman and Docker print one line per address).
        let published = try await run(["port", name, "\(containerPort)/tcp"], timeout: .seconds(60))
        guard
            let port = published.split(whereSeparator: \.isNewline).lazy.compactMap({ $0.split(separator: ":").last.flatMap { Int($0) } })
                .first
        else {
            throw CommandFailed(command: "\(command) port \(name)", termination: "named no port", output: published)
        }
        return (id, port)
    }

    /// Stops and removes a container at once (`docker rm --force`).
    public func remove(_ name: String) async throws {
        try await run(["rm", "--force", name], timeout: .seconds(60))
    }

    /// Whether `image` can be run here: present locally, or pulled now from its registry.
    public func imageAvailable(_ image: String, onLine: @escaping @Sendable (String) -> Void = { _ in }) async -> Bool {
        if (try? await run(["image", "inspect", "--format", "{{.Id}}", image], timeout: .seconds(60))) != nil { return true }
        return (try? await run(["pull", image], timeout: .seconds(600), onLine: onLine)) != nil
    }

    /// Waits until something answers HTTP (any status) on 127.0.0.1:`port`.
    public static func waitUntilListening(port: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if Task.isCancelled { return false }
            // Any answer, whatever its status, means the release accepts connections.
            if (try? await HTTP.get("http://127.0.0.1:\(port)/", timeout: .seconds(2))) != nil { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return false
    }
}
