import Foundation
import SlipwayPipeline

/// Which docker CLI and daemon an environment's containers are on. A deploy records it beside
/// nginx's files (`<state dir>/proxy/<environment>/docker.json`), so that every later command about
/// the environment (`status`, `rollback`, `teardown`) reaches the same daemon from any shell, the
/// on-call engineer's new one at 3 a.m. included.
///
/// What a command uses, most specific first: the variable in its own environment (`DOCKER_HOST`,
/// `DOCKER`), the target's `host:` in the pipeline, what the last deploy recorded, the default.
struct DockerEndpoint: Codable, Equatable {
    var command: String
    /// The variables that choose the daemon and the CLI's configuration, as the deploy had them.
    var environment: [String: String]

    /// The variables that say which daemon (and, for podman, which storage and registries).
    static let variables = [
        "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "CONTAINER_HOST",
        "CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_STORAGE_CONF",
    ]

    static func path(directory: String) -> String { directory + "/docker.json" }

    /// The endpoint for a command run with `process` as its environment.
    static func resolve(
        process: [String: String], spec: DockerTargetSpec, pipeline: Pipeline, recorded: DockerEndpoint?
    ) -> DockerEndpoint {
        var chosen: [String: String] = [:]
        for name in variables {
            if let value = process[name] {
                chosen[name] = value
            } else if name == "DOCKER_HOST", let host = spec.host {
                chosen[name] = host
            } else if let value = recorded?.environment[name] {
                chosen[name] = value
            }
        }
        let command = process["DOCKER"] ?? recorded?.command ?? pipeline.dockerCommand(environment: process)
        return DockerEndpoint(command: command, environment: chosen)
    }

    static func read(directory: String) -> DockerEndpoint? {
        guard let data = FileManager.default.contents(atPath: path(directory: directory)) else { return nil }
        return try? JSONDecoder().decode(DockerEndpoint.self, from: data)
    }

    /// Records the endpoint (when it changed), replacing the file atomically.
    func record(directory: String) throws {
        guard Self.read(directory: directory) != self else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try ProxyFiles.makeDirectory(directory)
        try ProxyFiles.replace(Self.path(directory: directory), with: try encoder.encode(self))
    }
}
