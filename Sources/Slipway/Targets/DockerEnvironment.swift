public import Foundation
public import SlipwayProcess

/// An environment on a docker target: its containers (through the docker CLI) and the nginx in
/// front of them (its files in `<state directory>/proxy/<environment>/`). Deploys, rollbacks,
/// `deploy status` and `deploy teardown` all reach the environment through this.
public struct DockerEnvironment: Sendable {
    public let host: DockerHost
    public let proxy: NginxProxy
    public let target: DockerTargetSpec

    public init(
        pipeline: Pipeline, environment: String, target: DockerTargetSpec, stateDirectory: String,
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment, launcher: any ProcessLaunching = ProcessRunner()
    ) {
        var processEnvironment = processEnvironment
        if processEnvironment["PATH"] == nil { processEnvironment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" }
        self.target = target
        host = DockerHost(
            command: pipeline.dockerCommand(environment: processEnvironment), environment: processEnvironment, launcher: launcher,
            app: pipeline.app, environmentName: environment)
        proxy = NginxProxy(
            directory: stateDirectory + "/proxy/" + environment, listen: target.listen,
            executable: processEnvironment["SLIPWAY_NGINX"] ?? "nginx", environment: processEnvironment, launcher: launcher)
    }

    public struct Status: Sendable, Encodable {
        /// Where users reach it.
        public var url: String
        public var nginxPID: Int32?
        public var generation: Int?
        public var backends: [NginxProxy.Backend]
        /// Containers of this environment (running or not); nil when docker could not be asked.
        public var containers: [String]?
        public var problem: String?
    }

    public func status() async -> Status {
        let state = proxy.state()
        var status = Status(
            url: "http://\(target.listen)", nginxPID: proxy.masterPID(), generation: state?.generation, backends: state?.backends ?? [])
        do {
            let containers = try await host.containers()
            status.containers = containers.map { "\($0.name) (\($0.running ? "running" : "stopped"), \($0.release?.description ?? "?"))" }
            for backend in status.backends where !containers.contains(where: { $0.name == backend.container && $0.running }) {
                status.problem = "nginx sends traffic to \(backend.container), which is not running"
            }
        } catch {
            status.problem = "cannot list containers: \(error)"
        }
        if status.nginxPID == nil, !status.backends.isEmpty { status.problem = "nginx is not running for \(target.listen)" }
        return status
    }

    /// Removes every container of the environment and stops its nginx; returns the names removed.
    /// nginx is stopped even when docker cannot be reached; that error is then thrown.
    public func teardown() async throws -> [String] {
        var removed: [String] = []
        var failure: (any Error)?
        do {
            for container in try await host.containers() {
                try await host.remove(container.name)
                removed.append(container.name)
            }
        } catch {
            failure = error
        }
        await proxy.stop()
        try? FileManager.default.removeItem(atPath: proxy.directory + "/state.json")
        if let failure { throw failure }
        return removed
    }
}
