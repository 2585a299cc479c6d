import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A real Prometheus of the test's own, started and stopped by the project's `scripts/services`
/// (as the main job's is): its own port, configuration and storage in a temporary directory,
/// scraping every second the targets listed in `<scrape directory>/*.json`, the files deploy writes
/// beside its run store (or a test writes itself). Stopped by its recorded process id.
public final class PrometheusServer: Sendable {
    public let directory: TemporaryDirectory
    public let port: UInt16
    /// Where the file-based discovery files are read from.
    public let scrapeDirectory: String
    let environment: [String: String]

    public var url: String { "http://127.0.0.1:\(port)" }

    init(directory: TemporaryDirectory, port: UInt16, stateFile: String) {
        self.directory = directory
        self.port = port
        self.scrapeDirectory = (stateFile as NSString).deletingLastPathComponent + "/scrape"
        environment = ["SLIPWAY_SERVICES": directory.path, "PROMETHEUS_PORT": String(port), "SLIPWAY_STATE": stateFile]
    }

    /// Runs `body` with a Prometheus scraping what a deploy whose store is `stateFile` publishes.
    public static func with<T: Sendable>(stateFile: String, _ body: @Sendable (PrometheusServer) async throws -> T) async throws -> T {
        let server = PrometheusServer(
            directory: try TemporaryDirectory("prometheus"), port: try ContainerServices.freePort(), stateFile: stateFile)
        defer { server.directory.remove() }
        do {
            try await server.start()
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    public func start() async throws {
        _ = try await GitFixture.run(
            ["\(packageRoot)/scripts/services", "start", "prometheus"], in: directory.path, environment: environment)
    }

    public func stop() async {
        _ = try? await GitFixture.run(
            ["\(packageRoot)/scripts/services", "stop", "prometheus"], in: directory.path, environment: environment)
    }

    /// Lists `targets` for Prometheus to scrape, as deploy's discovery does: a file of its own.
    public func publish(_ name: String, targets: [(address: String, instance: String)]) throws {
        let groups = targets.map { ["targets": [$0.address], "labels": ["slipway_instance": $0.instance]] as [String: Any] }
        try FileManager.default.createDirectory(atPath: scrapeDirectory, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: groups)
        try data.write(to: URL(fileURLWithPath: "\(scrapeDirectory)/\(name).json"), options: .atomic)
    }

    /// The result of an instant query: each series' labels and value.
    public func query(_ promQL: String) async throws -> [(labels: [String: String], value: String)] {
        var components = URLComponents(string: url + "/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: promQL)]
        let (data, _) = try await URLSession.shared.data(from: components.url!)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let result = ((object?["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
        return result.map { series in
            ((series["metric"] as? [String: String]) ?? [:], ((series["value"] as? [Any])?.last as? String) ?? "")
        }
    }

    /// Waits until `promQL` returns at least one series whose value satisfies `condition`; fails
    /// after `limit`. Prometheus tells no one when it scrapes, so this asks again every 200 ms (as
    /// `kubectl wait` or a gate would): the wait ends on the condition, never on the time.
    public func waitFor(
        _ promQL: String, limit: Duration = .seconds(60), _ condition: @Sendable (Double) -> Bool = { _ in true }
    ) async throws {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if let answer = try? await query(promQL), answer.contains(where: { Double($0.value).map(condition) ?? false }) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw DeployProcessError(message: "Prometheus at \(url) never answered '\(promQL)' as expected within \(limit)")
    }
}

/// The example app (Examples/hello/app) run straight from its files with the host's busybox, on a
/// port of its own: a real scrape target without a container. Stopped by its process id.
public final class HelloProcess: Sendable {
    public let port: UInt16
    public let state: TemporaryDirectory
    let process: DeployProcess

    public var url: String { "http://127.0.0.1:\(port)" }
    public var address: String { "127.0.0.1:\(port)" }

    public init(version: String = "1.0.0") async throws {
        state = try TemporaryDirectory("hello")
        port = try ContainerServices.freePort()
        let busybox = ["/usr/bin/busybox", "/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/bin/busybox"
        process = try DeployProcess(
            executable: busybox, arguments: ["sh", "\(packageRoot)/Examples/hello/app/start"], directory: state.path,
            environment: ["PORT": String(port), "HELLO_STATE": state.path, "HELLO_VERSION": version])
        guard await process.waitForLine(containing: "hello listening") else {
            await stop()
            throw DeployProcessError(message: "the hello app did not start: \(process.output.joined(separator: "\n"))")
        }
        // The start script says it listens once its port answers.
        guard await ExampleApp.get(url + "/version")?.body == version else {
            await stop()
            throw DeployProcessError(message: "the hello app did not answer on \(port)")
        }
    }

    /// Makes `/` answer 500 from now on (or again 200).
    public func setErroring(_ erroring: Bool) throws {
        if erroring {
            _ = try state.write("errors", "on\n")
        } else {
            try? FileManager.default.removeItem(atPath: state.file("errors"))
        }
    }

    /// `count` requests to `/`.
    public func requests(_ count: Int) async {
        for _ in 0..<count { _ = await ExampleApp.get(url + "/") }
    }

    /// Stops it (its start script stops its server on SIGTERM) and removes its state.
    public func stop() async {
        process.signal(SIGTERM)
        _ = try? await process.wait()
        state.remove()
    }
}

/// A TCP port that accepts connections (the kernel completes them: it listens) and never answers:
/// a server that hangs.
public final class SilentServer: Sendable {
    public let port: UInt16
    private let socket: Int32

    public init() throws {
        (socket, port) = try LoopbackListener.open()
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public func stop() { close(socket) }
}
