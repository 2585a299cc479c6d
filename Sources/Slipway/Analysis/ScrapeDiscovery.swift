import Foundation
import SlipwayCore
import SlipwayPipeline
import Synchronization

/// One address Prometheus scrapes, and the instance (release) it belongs to.
public struct ScrapeEndpoint: Sendable, Hashable {
    /// `host:port`.
    public var address: String
    public var instance: TargetInstance

    public init(address: String, instance: TargetInstance) {
        self.address = address
        self.instance = instance
    }
}

extension DeployTarget {
    /// By default each running instance is one endpoint: its own address (`${TARGET_URL}`).
    public func defaultScrapeEndpoints(_ observation: TargetObservation) -> [ScrapeEndpoint] {
        observation.instances.filter(\.running).compactMap { instance in
            guard let url = URL(string: instance.url), let host = url.host, let port = url.port else { return nil }
            return ScrapeEndpoint(address: "\(host):\(port)", instance: instance)
        }
    }
}

/// Prometheus's file-based service discovery, written by Slipway: after every change a target
/// makes (a release started, traffic moved, an instance removed), the file
/// `<state>/scrape/<app>-<environment>.json` lists every running instance's endpoints, each with
/// the labels gate queries select by (`slipway_instance`, `version`, `run`, `app`, `env`).
/// Prometheus watches the directory (`file_sd_configs`), so every release is scraped as it appears.
///
/// It wraps any ``DeployTarget`` (``TargetSpec/makeTarget(_:)``); a target says where its
/// instances are scraped by ``DeployTarget/scrapeEndpoints(_:)`` when that is not their address.
struct ScrapeDiscovery: DeployTarget {
    let inner: any DeployTarget
    let file: String
    let app: String
    let environment: String

    init(_ inner: any DeployTarget, setting: TargetSetting) {
        self.inner = inner
        self.app = setting.pipeline.app
        self.environment = setting.environment
        self.file = Self.file(stateDirectory: setting.stateDirectory, app: app, environment: environment)
    }

    static func file(stateDirectory: String, app: String, environment: String) -> String {
        "\(stateDirectory)/scrape/\(app)-\(environment).json"
    }

    /// Writes the file from what the target says runs now (atomically: Prometheus never reads half).
    func publish() async {
        guard let observation = try? await inner.observe() else { return }
        let found = await inner.scrapeEndpoints(observation)
        let groups = found.map { endpoint -> [String: Any] in
            var labels = ["slipway_instance": endpoint.instance.name, "app": app, "env": environment]
            if let release = endpoint.instance.release {
                labels["run"] = String(release.run)
                if let version = release.version { labels["version"] = version }
            }
            return ["targets": [endpoint.address], "labels": labels]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: groups, options: [.prettyPrinted, .sortedKeys]) else { return }
        let directory = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: file), options: .atomic)
    }

    var kind: String { inner.kind }
    var serviceURL: String { inner.serviceURL }
    var budget: TargetBudget { inner.budget }
    var checksBeforeChanges: Bool { inner.checksBeforeChanges }
    var instancesChangeWhenRouted: Bool { inner.instancesChangeWhenRouted }

    func observe() async throws -> TargetObservation { try await inner.observe() }

    func stage(_ release: ReleaseReference, run: Int64, history: [ReleaseReference], say: @escaping @Sendable (String) -> Void)
        async throws -> TargetInstance
    {
        let instance = try await inner.stage(release, run: run, history: history, say: say)
        await publish()
        return instance
    }

    /// Moving traffic changes the instances of some targets (a rolling update, a canary by replica
    /// ratio start and stop pods): for those the file is written again after the move. Never
    /// beside it: reading a target while it changes may race with its own bookkeeping (nginx's
    /// confirmed state), and a docker move changes no instance.
    func route(_ shares: [TrafficShare]) async throws -> String {
        guard inner.instancesChangeWhenRouted else { return try await inner.route(shares) }
        do {
            let said = try await inner.route(shares)
            await publish()
            return said
        } catch {
            await publish()
            throw error
        }
    }

    func retire(_ instance: TargetInstance) async throws {
        do {
            try await inner.retire(instance)
        } catch {
            await publish()
            throw error
        }
        await publish()
    }

    func scrapeEndpoints(_ observation: TargetObservation) async -> [ScrapeEndpoint] { await inner.scrapeEndpoints(observation) }

    func imageAvailable(_ image: String, say: @escaping @Sendable (String) -> Void) async -> Bool {
        await inner.imageAvailable(image, say: say)
    }

    func describe(_ operation: TargetOperation) -> String { inner.describe(operation) }
    func preflight(say: @escaping @Sendable (String) -> Void) async throws { try await inner.preflight(say: say) }
    func readiness(of instance: TargetInstance) async -> (ready: Bool, detail: String) { await inner.readiness(of: instance) }
    func status() async -> TargetStatus { await inner.status() }

    func teardown() async throws -> [String] {
        let done = try await inner.teardown()
        try? FileManager.default.removeItem(atPath: file)
        return done
    }
}
