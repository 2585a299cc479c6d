import Foundation
import SlipwayProcess
public import Testing

/// A podman API service and a docker registry of the test's own, started and stopped by the
/// project's own `scripts/services` (what `scripts/bootstrap` runs for the main job): their own
/// socket, port, configuration and storage in a temporary directory, stopped by their recorded
/// process ids when the body returns.
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

    /// What `scripts/services` needs to find these services.
    static func scriptEnvironment(directory: String, port: String) -> [String: String] {
        ["SLIPWAY_SERVICES": directory, "REGISTRY_PORT": port]
    }

    /// Starts what of them is not running (after a test stopped one), by the project's script.
    public func start() async throws {
        try await GitFixture.run(
            ["\(packageRoot)/scripts/services", "start", "podman", "registry"], in: directory.path,
            environment: Self.scriptEnvironment(directory: directory.path, port: String(registry.split(separator: ":").last ?? "")))
    }

    /// Where the podman API service's process id is recorded.
    public var podmanPIDFile: String { directory.file("podman.pid") }

    /// Runs `body` with the services up.
    public static func with<T: Sendable>(_ body: @Sendable (ContainerServices) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory("containers")
        defer { directory.remove() }
        let port = try freePort()
        let services = ContainerServices(directory: directory, socket: directory.file("podman.sock"), registry: "127.0.0.1:\(port)")
        let script = ["\(packageRoot)/scripts/services"]
        let environment = scriptEnvironment(directory: directory.path, port: String(port))
        func stop() async {
            _ = try? await GitFixture.run(script + ["stop", "podman", "registry"], in: directory.path, environment: environment)
        }
        do {
            _ = try await GitFixture.run(script + ["start", "podman", "registry"], in: directory.path, environment: environment)
            let result = try await body(services)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    /// A free TCP port on 127.0.0.1.
    public static func freePort() throws -> UInt16 {
        guard let port = LoopbackPort.free() else { throw DeployProcessError(message: "no free port on 127.0.0.1: \(errno)") }
        return UInt16(port)
    }
}

extension ContainerServices {
    /// The services of the suite running now (``SharedContainerServices``), if it has them.
    @TaskLocal public static var current: ContainerServices?

    /// The suite's services: those of ``SharedContainerServices``, else a set of the test's own.
    public static func shared<T: Sendable>(_ body: @Sendable (ContainerServices) async throws -> T) async throws -> T {
        if let current { return try await body(current) }
        return try await with(body)
    }
}

/// A suite trait: one podman service and one registry for every test of the suite, started before
/// its first test and stopped (by their process ids) after its last. Tests reach them through
/// ``ContainerServices/shared(_:)``; each test still has its own app name, ports, nginx and
/// containers, so they run in parallel.
public struct SharedContainerServices: SuiteTrait, TestScoping {
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await ContainerServices.with { services in
            try await ContainerServices.$current.withValue(services) { try await function() }
        }
    }
}

extension Trait where Self == SharedContainerServices {
    /// One podman service and registry for the whole suite.
    public static var sharedContainerServices: Self { SharedContainerServices() }
}
