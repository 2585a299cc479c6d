public import Foundation
public import SlipwayCore
public import SlipwayPipeline
public import SlipwayProcess

/// One running copy of a release on a target: a container behind nginx, a Deployment of one
/// colour. Strategies only ever hold these; what an instance is made of is the target's business.
public struct TargetInstance: Sendable, Hashable, Codable {
    /// The target's own name for it (a container name, a Deployment name).
    public var name: String
    public var release: ReleaseReference?
    /// Where gates reach this instance alone, before or beside the router (`${TARGET_URL}`).
    public var url: String
    public var running: Bool
    /// The good releases before it, newest first, as the instance itself records them (labels,
    /// annotations): what `deploy rollback` falls back on when the run store is gone.
    public var goodHistory: [ReleaseReference]
    /// The run that started it, as the instance says.
    public var startedBy: String?

    public init(
        name: String, release: ReleaseReference?, url: String, running: Bool = true, goodHistory: [ReleaseReference] = [],
        startedBy: String? = nil
    ) {
        self.name = name
        self.release = release
        self.url = url
        self.running = running
        self.goodHistory = goodHistory
        self.startedBy = startedBy
    }

    /// `1.4.2` or the instance's name when it carries no release.
    public var label: String { release?.version ?? name }
}

/// A share of the environment's traffic (a percentage; the shares of one route add up to 100).
public struct TrafficShare: Sendable, Hashable, Codable {
    public var instance: TargetInstance
    public var weight: Int

    public init(_ instance: TargetInstance, weight: Int) {
        self.instance = instance
        self.weight = weight
    }
}

/// What an environment serves now, as the target itself says (never the run store).
public struct TargetObservation: Sendable {
    /// Every instance of this app and environment, running or not.
    public var instances: [TargetInstance]
    /// Where the router sends traffic now.
    public var routes: [TrafficShare]

    public init(instances: [TargetInstance], routes: [TrafficShare]) {
        self.instances = instances
        self.routes = routes
    }

    /// The instance taking the most traffic, if it runs: the release a rollback returns to.
    public var stable: TargetInstance? {
        guard let primary = routes.max(by: { $0.weight < $1.weight }) else { return nil }
        return instances.first { $0.name == primary.instance.name && $0.running }.map { running in
            var instance = primary.instance
            instance.goodHistory = running.goodHistory
            instance.startedBy = running.startedBy
            return instance
        }
    }

    /// Instances the router sends no traffic to.
    public var unrouted: [TargetInstance] {
        let routed = Set(routes.map(\.instance.name))
        return instances.filter { !routed.contains($0.name) }
    }
}

/// The longest each target operation may take: `deploy plan` and every deploy add them up into
/// the worst-case time to abort and restore.
public struct TargetBudget: Sendable, Hashable {
    /// Starting a candidate until it answers.
    public var stage: Duration
    /// One change of the traffic split until it is in force.
    public var route: Duration

    public init(stage: Duration, route: Duration) {
        self.stage = stage
        self.route = route
    }
}

/// What `deploy status` shows of a target: where it answers, where traffic goes, and anything wrong.
public struct TargetStatus: Sendable, Encodable {
    public var kind: String
    /// Where users reach the environment.
    public var url: String
    public var routes: [Route]
    /// The target's own facts, one line each (`nginx pid 123, configuration generation 7`).
    public var details: [String]
    public var instances: [String]?
    public var problem: String?

    public struct Route: Sendable, Encodable {
        public var release: String
        /// The image the release runs, as the target says.
        public var image: String?
        public var weight: Int
        public var instance: String
        public var url: String
    }

    public init(
        kind: String, url: String, routes: [TrafficShare], details: [String] = [], instances: [String]? = nil, problem: String? = nil
    ) {
        self.kind = kind
        self.url = url
        self.routes = routes.map {
            Route(
                release: $0.instance.release?.description ?? "?", image: $0.instance.release?.image, weight: $0.weight,
                instance: $0.instance.name, url: $0.instance.url)
        }
        self.details = details
        self.instances = instances
        self.problem = problem
    }
}

/// Where releases run and how traffic reaches them. A target knows nothing of strategies, gates or
/// the run record: the rollout strategies (``RolloutStrategy``) drive it through these calls, and
/// `deploy status` and `deploy teardown` use it as it is.
///
/// A new target is a folder under `Targets/` with a type conforming to this protocol, and one
/// registration in ``TargetSpec/makeTarget(_:)``.
public protocol DeployTarget: Sendable {
    /// `docker`, `kubernetes`.
    var kind: String { get }
    /// Where users reach the environment through the router (`${SERVICE_URL}`).
    var serviceURL: String { get }
    var budget: TargetBudget { get }

    /// What runs and where traffic goes, read from the target itself.
    func observe() async throws -> TargetObservation
    /// Starts `release` beside what serves, taking no traffic, and returns once it answers.
    /// `history` (the good releases before it) is stored with the instance.
    func stage(
        _ release: ReleaseReference, run: Int64, history: [ReleaseReference], say: @escaping @Sendable (String) -> Void
    ) async throws -> TargetInstance
    /// Sends the environment's traffic as `shares` say (nothing at all when empty); returns once
    /// the new split is in force, with a line saying what changed. Throws ``TrafficUnchanged``
    /// when it failed before changing anything (traffic still goes where it went).
    func route(_ shares: [TrafficShare]) async throws -> String
    /// Stops and removes an instance.
    func retire(_ instance: TargetInstance) async throws
    /// Whether `image` can still be run here (present, or pulled now).
    func imageAvailable(_ image: String, say: @escaping @Sendable (String) -> Void) async -> Bool
    /// A command line a person would recognise for each operation, for the run record.
    func describe(_ operation: TargetOperation) -> String

    /// Whether ``preflight(say:)`` checks anything (then it is a recorded step of each deploy).
    var checksBeforeChanges: Bool { get }
    /// Whether moving traffic starts or stops processes of its instances (Kubernetes: a rolling
    /// update, replica ratios), so that what Prometheus scrapes changes with it.
    var instancesChangeWhenRouted: Bool { get }
    /// Checks, before anything changes, that this target can be driven at all (the tool found, the
    /// cluster reached, the verbs allowed); says what it checked. Most targets have nothing to check.
    func preflight(say: @escaping @Sendable (String) -> Void) async throws
    /// Whether every replica of `instance` is ready and none restarting, in a few words (the
    /// `readiness` gate). A target without replicas says whether the instance runs.
    func readiness(of instance: TargetInstance) async -> (ready: Bool, detail: String)

    func status() async -> TargetStatus
    /// Removes every instance and stops the router; returns what it did, a line each.
    func teardown() async throws -> [String]
    /// Where Prometheus scrapes the instances of `observation` (``ScrapeDiscovery``). By default
    /// each running instance's own address; a target whose instances are many processes (pods)
    /// lists each of them.
    func scrapeEndpoints(_ observation: TargetObservation) async -> [ScrapeEndpoint]
}

extension DeployTarget {
    public var checksBeforeChanges: Bool { false }
    public var instancesChangeWhenRouted: Bool { false }

    public func scrapeEndpoints(_ observation: TargetObservation) async -> [ScrapeEndpoint] {
        defaultScrapeEndpoints(observation)
    }

    public func preflight(say: @escaping @Sendable (String) -> Void) async throws {}

    public func readiness(of instance: TargetInstance) async -> (ready: Bool, detail: String) {
        do {
            let found = try await observe().instances.first { $0.name == instance.name }
            guard let found else { return (false, "\(instance.name) is gone") }
            return found.running ? (true, "\(instance.name) runs") : (false, "\(instance.name) is not running")
        } catch {
            return (false, "cannot read \(kind): \(error)")
        }
    }
}

/// A change of the traffic split that failed before anything changed: the split before is still in
/// force. A strategy's first move failing this way means the new release never took traffic.
public struct TrafficUnchanged: Error, Sendable, CustomStringConvertible {
    public var cause: any Error
    public init(_ cause: any Error) { self.cause = cause }
    public var description: String { "\(cause) (traffic did not move)" }
}

/// The operations a run record names (``DeployTarget/describe(_:)``).
public enum TargetOperation: Sendable {
    case stage(ReleaseReference, name: String)
    case route
    case retire(TargetInstance)
    case findImage
}

/// Everything a target needs to be built for one environment.
public struct TargetSetting: Sendable {
    public var pipeline: Pipeline
    public var environment: String
    /// Where targets keep their own files (nginx's), beside the run store.
    public var stateDirectory: String
    public var processEnvironment: [String: String]
    public var launcher: any ProcessLaunching

    public init(
        pipeline: Pipeline, environment: String, stateDirectory: String,
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment, launcher: any ProcessLaunching = ProcessRunner()
    ) {
        self.pipeline = pipeline
        self.environment = environment
        self.stateDirectory = stateDirectory
        self.processEnvironment = processEnvironment
        self.launcher = launcher
    }
}

extension TargetStatus {
    /// When the last run here finished (succeeded or rolled back), what takes most traffic should
    /// be the release Slipway last recorded as good there; anything else was changed outside deploy.
    public func drift(lastGood: RunRecord?, latest: RunRecord?) -> String? {
        guard let lastGood, let image = lastGood.image, let latest, latest.id == lastGood.id || latest.outcome == .rolledBack,
            let primary = routes.max(by: { $0.weight < $1.weight })
        else { return nil }
        let recorded = Release(sha: lastGood.sha, version: lastGood.version).description
        guard let serves = primary.image, serves != image else { return nil }
        return "\(kind) serves \(primary.release), but Slipway last recorded \(recorded) (\(image), run \(lastGood.id)) here: "
            + "changed outside deploy? `deploy \(lastGood.environment)` or `deploy rollback \(lastGood.environment)` puts it back in line"
    }
}
