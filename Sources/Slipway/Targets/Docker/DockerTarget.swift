import Foundation
public import SlipwayCore
public import SlipwayPipeline
import SlipwayProcess

/// An environment on one host: each release a container (through the docker CLI, Docker Engine or
/// podman's Docker API) answering on its own loopback port, and an nginx that Slipway runs in front
/// (its files in `<state directory>/proxy/<environment>/`) switching traffic by reload.
///
/// What serves lives in the router's `state.json` and in the containers' labels, so it survives a
/// crash of deploy and a lost run store.
public struct DockerTarget: DeployTarget {
    public let cli: DockerCLI
    public let router: NginxRouter
    public let spec: DockerTargetSpec

    public init(_ spec: DockerTargetSpec, setting: TargetSetting) {
        var processEnvironment = setting.processEnvironment
        if processEnvironment["PATH"] == nil { processEnvironment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" }
        self.spec = spec
        let directory = setting.stateDirectory + "/proxy/" + setting.environment
        router = NginxRouter(
            directory: directory, listen: spec.listen, executable: processEnvironment["SLIPWAY_NGINX"] ?? "nginx",
            environment: processEnvironment, launcher: setting.launcher)
        endpoint = DockerEndpoint.resolve(
            process: processEnvironment, spec: spec, pipeline: setting.pipeline, recorded: DockerEndpoint.read(directory: router.directory))
        var cliEnvironment = processEnvironment
        cliEnvironment.merge(endpoint.environment) { _, chosen in chosen }
        cli = DockerCLI(
            command: endpoint.command, environment: cliEnvironment, launcher: setting.launcher, app: setting.pipeline.app,
            environmentName: setting.environment)
    }

    /// The CLI and daemon this environment's containers are on (recorded by each deploy).
    let endpoint: DockerEndpoint

    public var kind: String { "docker" }
    public var serviceURL: String { "http://\(spec.listen)" }
    public var budget: TargetBudget { Self.budget(spec) }

    /// Starting: the image pulled and the container answering; a switch: nginx -t, reload, the new
    /// generation answering, the old workers gone.
    public static func budget(_ spec: DockerTargetSpec) -> TargetBudget {
        TargetBudget(stage: spec.readyTimeout + .seconds(30), route: .seconds(10))
    }

    static func url(port: Int) -> String { "http://127.0.0.1:\(port)" }

    static func port(of url: String) -> Int? { url.split(separator: ":").last.flatMap { Int($0) } }

    static func instance(_ container: DeployedContainer) -> TargetInstance {
        TargetInstance(
            name: container.name, release: container.release, url: container.port.map(url(port:)) ?? "",
            running: container.running, goodHistory: container.goodHistory, startedBy: container.labels[DockerCLI.Label.startedBy])
    }

    public func observe() async throws -> TargetObservation {
        let containers = try await cli.containers()
        let routes = (await router.serving()?.backends ?? []).map { backend in
            TrafficShare(
                TargetInstance(name: backend.container, release: backend.release, url: Self.url(port: backend.port)),
                weight: backend.weight)
        }
        return TargetObservation(instances: containers.map(Self.instance), routes: routes)
    }

    public func stage(
        _ release: ReleaseReference, run: Int64, history: [ReleaseReference], say: @escaping @Sendable (String) -> Void
    ) async throws -> TargetInstance {
        let name = cli.containerName(run: run)
        // Every later command about this environment reaches the same daemon, from any shell.
        try endpoint.record(directory: router.directory)
        do {
            let (id, port) = try await cli.start(
                release, name: name, containerPort: spec.port, history: history, startedBy: run, onLine: say)
            say("container \(name) (\(id.prefix(12))) on 127.0.0.1:\(port)")
            let started = ContinuousClock.now
            guard await DockerCLI.waitUntilListening(port: port, timeout: spec.readyTimeout) else {
                let logs = (try? await cli.run(["logs", "--tail", "20", name])) ?? ""
                if !logs.isEmpty { say(logs) }
                throw DockerCLI.NotReady(
                    description: "\(name) did not answer on 127.0.0.1:\(port) within \(DurationParser.format(spec.readyTimeout))")
            }
            say("answering after \(DurationParser.format(ContinuousClock.now - started))")
            return TargetInstance(name: name, release: release, url: Self.url(port: port), startedBy: String(run))
        } catch {
            // A container that never answered is never left behind (and a name nginx serves is
            // never removed: the name is new, but whatever happens, this holds).
            try? await removeUnlessServed(name)
            throw error
        }
    }

    public func route(_ shares: [TrafficShare]) async throws -> String {
        let backends = try shares.map { share in
            guard let port = Self.port(of: share.instance.url) else {
                throw TrafficUnchanged(
                    NginxRouter.ProxyError(description: "\(share.instance.name) has no port on 127.0.0.1 to send traffic to"))
            }
            return NginxRouter.Backend(port: port, weight: share.weight, container: share.instance.name, release: share.instance.release)
        }
        let started = ContinuousClock.now
        // apply says itself (TrafficUnchanged) when it failed before nginx was told anything.
        let state = try await router.apply(backends)
        let took = ContinuousClock.now - started
        let split = state.backends.map { "\($0.release?.version ?? $0.container) \($0.weight)%" }.joined(separator: ", ")
        return
            "nginx generation \(state.generation) on \(spec.listen): \(split.isEmpty ? "nothing" : split) (took \(DurationParser.format(took)))"
    }

    public func retire(_ instance: TargetInstance) async throws {
        try await removeUnlessServed(instance.name)
    }

    /// Removes a container, never one nginx sends traffic to.
    func removeUnlessServed(_ name: String) async throws {
        if let serving = await router.serving(), serving.backends.contains(where: { $0.container == name }) {
            throw NginxRouter.ProxyError(description: "\(name) was not removed: nginx (generation \(serving.generation)) sends it traffic")
        }
        try await cli.remove(name)
    }

    public func imageAvailable(_ image: String, say: @escaping @Sendable (String) -> Void) async -> Bool {
        await cli.imageAvailable(image, onLine: say)
    }

    public func describe(_ operation: TargetOperation) -> String {
        switch operation {
        case .stage(let release, let name): "docker run --detach --name \(name) … \(release.image)"
        case .route: "nginx -s reload (\(spec.listen))"
        case .retire(let instance): "docker rm --force \(instance.name)"
        case .findImage: "docker image inspect / docker pull"
        }
    }

    public func status() async -> TargetStatus {
        let state = await router.serving()
        let routes = (state?.backends ?? []).map {
            TrafficShare(TargetInstance(name: $0.container, release: $0.release, url: Self.url(port: $0.port)), weight: $0.weight)
        }
        var status = TargetStatus(kind: kind, url: serviceURL, routes: routes)
        let pid = router.masterPID()
        if let pid { status.details.append("nginx pid \(pid), configuration generation \(state?.generation ?? 0)") }
        do {
            let containers = try await cli.containers()
            status.instances = containers.map { "\($0.name) (\($0.running ? "running" : "stopped"), \($0.release?.description ?? "?"))" }
            for route in routes where !containers.contains(where: { $0.name == route.instance.name && $0.running }) {
                status.problem = "nginx sends traffic to \(route.instance.name), which is not running"
            }
        } catch {
            status.problem = "cannot list containers: \(error)"
        }
        // Only without a master is it worth reading every process's descriptors.
        let orphans = pid == nil ? router.orphanedWorkers() : []
        if !orphans.isEmpty {
            status.problem =
                "nginx's master is gone; its orphaned worker\(orphans.count == 1 ? "" : "s") (pid \(orphans.map(String.init).joined(separator: ", "))) "
                + "still serve\(orphans.count == 1 ? "s" : "") \(spec.listen) with generation \(state?.generation ?? 0); "
                + "the next deploy or rollback replaces \(orphans.count == 1 ? "it" : "them") with a new nginx"
        } else if pid == nil, !routes.isEmpty {
            status.problem = "nginx is not running for \(spec.listen)"
        }
        return status
    }

    /// Removes every container of the environment and stops its nginx; returns what it did, a line
    /// each. nginx is stopped even when docker cannot be reached; that error is then thrown.
    public func teardown() async throws -> [String] {
        var removed: [String] = []
        var failure: (any Error)?
        do {
            for container in try await cli.containers() {
                try await cli.remove(container.name)
                removed.append("removed \(container.name)")
            }
        } catch {
            failure = error
        }
        await router.stop()
        for file in ["state.json", "state.json.next"] { try? FileManager.default.removeItem(atPath: router.directory + "/" + file) }
        if let failure { throw failure }
        removed.append("stopped nginx on \(spec.listen)")
        return removed
    }
}
