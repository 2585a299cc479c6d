import Foundation
import SlipwayProcess

/// A podman API service and a docker registry of the test's own: their own socket, port,
/// configuration and storage in a temporary directory, stopped (by process group) when the body
/// returns. They are ready when they say so in their logs, not after a sleep.
public struct ContainerServices: Sendable {
    public let directory: TemporaryDirectory
    public let socket: String
    public let registry: String

    /// What a `docker` (or `podman`) child needs in its environment to reach them.
    public var environment: [String: String] {
        [
            "DOCKER_HOST": "unix://\(socket)",
            "CONTAINERS_CONF": directory.file("containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": directory.file("registries.conf"),
        ]
    }

    /// Runs `body` with the services up.
    public static func with<T: Sendable>(_ body: @Sendable (ContainerServices) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory("containers")
        defer { directory.remove() }
        let port = try freePort()
        let services = ContainerServices(directory: directory, socket: directory.file("podman.sock"), registry: "127.0.0.1:\(port)")
        try directory.write(
            "containers.conf",
            """
            [containers]
            default_ulimits = []
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"

            """)
        try directory.write("registries.conf", "[[registry]]\nlocation = \"\(services.registry)\"\ninsecure = true\n")
        try directory.write(
            "registry.yml",
            """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(directory.file("registry"))
            http:
              addr: \(services.registry)

            """)
        let environment = ProcessInfo.processInfo.environment.merging(services.environment) { $1 }
        let registryReady = AsyncStream.makeStream(of: Void.self)
        let podmanReady = AsyncStream.makeStream(of: Void.self)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                _ = try await ProcessRunner().run(
                    ProcessSpec(
                        executable: "docker-registry", arguments: ["serve", directory.file("registry.yml")], environment: environment,
                        gracePeriod: .seconds(2)),
                    masker: .none, onStart: { _ in },
                    onOutput: { line in if line.text.contains("listening on") { registryReady.continuation.yield() } })
                registryReady.continuation.finish()
                return nil
            }
            group.addTask {
                _ = try await ProcessRunner().run(
                    ProcessSpec(
                        executable: "podman",
                        arguments: ["system", "service", "--log-level=info", "--time=0", "unix://\(services.socket)"],
                        environment: environment, gracePeriod: .seconds(2)),
                    masker: .none, onStart: { _ in },
                    onOutput: { line in if line.text.contains("API service listening") { podmanReady.continuation.yield() } })
                podmanReady.continuation.finish()
                return nil
            }
            var registryUp = false
            for await _ in registryReady.stream { registryUp = true; break }
            var podmanUp = false
            for await _ in podmanReady.stream { podmanUp = true; break }
            guard registryUp, podmanUp else {
                group.cancelAll()
                throw DeployProcessError(message: "the registry or the podman service did not start (installed by scripts/bootstrap?)")
            }
            do {
                let result = try await body(services)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// A free TCP port on 127.0.0.1 (bound, read and released).
    public static func freePort() throws -> UInt16 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw DeployProcessError(message: "no free port: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
