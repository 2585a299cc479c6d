public import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore

/// A whole simulated cluster: the store, the API server on a loopback port, the controllers, the
/// kubelet and the traffic (Service and ingress addresses). `kube-sim start` runs one; tests may
/// run one in process.
public final class Cluster: Sendable {
    public struct Options: Sendable {
        public var port: Int
        public var version: KubeVersion
        public var stateDirectory: URL
        public var runtime: PodRuntime
        public var tokenFile: URL?
        public var requestLog: URL?
        public var experiment: APIServer.Experiment?

        public init(
            port: Int, version: KubeVersion, stateDirectory: URL, runtime: PodRuntime, tokenFile: URL? = nil,
            requestLog: URL? = nil, experiment: APIServer.Experiment? = nil
        ) {
            self.experiment = experiment
            self.port = port
            self.version = version
            self.stateDirectory = stateDirectory
            self.runtime = runtime
            self.tokenFile = tokenFile
            self.requestLog = requestLog
        }
    }

    public let options: Options
    public let store: Store
    public let network: Network
    public let server: APIServer
    public let controllers: ControllerManager
    public let kubelet: Kubelet
    public let traffic: Traffic
    /// With tokens, the API server speaks HTTPS with this certificate (kubectl sends tokens only over TLS).
    let certificate: ServingCertificate?

    /// `https` when tokens are in use, otherwise `http`.
    public var scheme: String { certificate == nil ? "http" : "https" }
    /// The serving certificate, base64 PEM, for a kubeconfig's `certificate-authority-data`.
    public var certificateAuthorityData: String? { certificate?.base64 }

    public init(options: Options) async throws {
        self.options = options
        try FileManager.default.createDirectory(at: options.stateDirectory, withIntermediateDirectories: true)
        store = try await Store(stateDirectory: options.stateDirectory)
        network = try Network(stateDirectory: options.stateDirectory)
        server = try APIServer(
            store: store, version: options.version, tokenFile: options.tokenFile, network: network,
            requestLog: options.requestLog, experiment: options.experiment)
        controllers = ControllerManager(store: store)
        kubelet = Kubelet(store: store, network: network, runtime: options.runtime, instance: String(network.block))
        traffic = Traffic(store: store, network: network, edgeFile: options.stateDirectory.appendingPathComponent("edge"))
        certificate = options.tokenFile == nil ? nil : try ServingCertificate.load(orCreateIn: options.stateDirectory)
        // Addresses recorded before a restart stay taken.
        var addresses: [String] = []
        var ports: [Int] = []
        if let services = await store.catalog.find(group: "", resource: "services") {
            for service in await store.list(services, namespace: nil).items {
                addresses += service[path: ["spec", "clusterIPs"]]?.array?.compactMap(\.string) ?? []
                addresses += (service[path: ["status", "loadBalancer", "ingress"]]?.array ?? []).compactMap { $0["ip"]?.string }
                ports += (service[path: ["spec", "ports"]]?.array ?? []).compactMap { $0["nodePort"]?.int }
            }
        }
        await network.reserve(addresses: addresses, nodePorts: ports)
    }

    /// Serves until cancelled (or until `onStarted`'s caller stops it); then stops every container.
    public func run(onStarted: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var logger = Logger(label: "kube-sim")
        logger.logLevel = .error
        let server = self.server
        let app = Application(
            responder: CallbackResponder { request, context in try await server.respond(to: request, context: context) },
            server: try certificate.map { try .tls(.http1(), tlsConfiguration: $0.tlsConfiguration()) } ?? .http1(),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: options.port), serverName: nil),
            onServerRunning: { channel in await onStarted(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            group.addTask { await self.controllers.run() }
            group.addTask { await self.kubelet.run() }
            group.addTask { await self.traffic.run() }
            do {
                try await group.next()
            } catch {
                group.cancelAll()
                await shutdownUncancelled()
                throw error
            }
            group.cancelAll()
        }
        await shutdownUncancelled()
    }

    /// Shutdown runs its commands even when the run was cancelled (SIGTERM): a new task does not
    /// inherit the cancellation.
    private func shutdownUncancelled() async {
        await Task { await self.shutdown() }.value
    }

    /// Stops containers and listeners, ends watches, saves the objects.
    public func shutdown() async {
        await kubelet.stopAll()
        await traffic.stopAll()
        await store.finishWatches()
        await store.save()
        await network.release()
    }
}
