import Foundation
import SlipwayCore
public import SlipwayPipeline
import SlipwayProcess
import Synchronization

/// An environment in a namespace of a Kubernetes cluster, driven only through kubectl, as a person
/// would: the app's manifests (kustomize) with the image set by digest and Slipway's labels and
/// annotations, `kubectl apply`, `kubectl rollout status`, `kubectl patch`.
///
/// Two shapes, chosen by the environment's strategy:
/// - **rolling**: the manifests' one Deployment updated in place. Each release is a revision (a
///   ReplicaSet whose pod template carries the release's annotations); moving traffic to a release
///   is `kubectl apply` and `kubectl rollout status`, and back to one the cluster still has is
///   `kubectl rollout undo --to-revision` (the revision recorded for that release, not "previous").
/// - **blue-green and canary**: one Deployment per colour (`hello-blue`, `hello-green`), each with
///   a Service of its own that gates reach it through; traffic moves by the router: the app's
///   Service selector (a split is a replica ratio behind it), an ingress-nginx canary Ingress, or
///   an HTTPRoute's backend weights.
///
/// What serves is read from the cluster (selectors, weights, annotations), so every command works
/// with the run store lost.
public final class KubernetesTarget: DeployTarget {
    public let spec: KubernetesTargetSpec
    public let kubectl: Kubectl
    let app: String
    let environmentName: String
    let pipelineImage: String?
    let inPlace: Bool
    let cache = Mutex<(manifests: AppManifests?, url: String?)>((nil, nil))
    /// Each colour Deployment's replica count as this process last read or set it: a move back to
    /// a colour known to be at full strength is then one `kubectl patch`, no read first.
    let knownReplicas = Mutex<[String: Int]>([:])

    public init(_ spec: KubernetesTargetSpec, setting: TargetSetting) {
        var processEnvironment = setting.processEnvironment
        if processEnvironment["PATH"] == nil { processEnvironment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" }
        self.spec = spec
        kubectl = Kubectl(spec: spec, environment: processEnvironment, launcher: setting.launcher)
        app = setting.pipeline.app
        environmentName = setting.environment
        pipelineImage = setting.pipeline.image
        let strategy = setting.pipeline.environment(named: setting.environment)?.strategy
        inPlace = strategy == .rolling
    }

    public var kind: String { "kubernetes" }
    public var checksBeforeChanges: Bool { true }
    /// A rolling update or a change of replica ratios starts and stops pods.
    public var instancesChangeWhenRouted: Bool { true }

    public var serviceURL: String {
        spec.url ?? cache.withLock { $0.url }
            ?? "http://\(cache.withLock { $0.manifests?.serviceName } ?? app).\(spec.namespace ?? "default").svc"
    }

    public var budget: TargetBudget { Self.budget(spec) }

    /// A rollout waits at most its ready timeout (the Deployment's progress deadline, 600 s when
    /// unknown); so may a move: on the rolling shape it is the rollout, and a replica-ratio split
    /// waits for the scaled Deployment.
    public static func budget(_ spec: KubernetesTargetSpec) -> TargetBudget {
        let ready = spec.readyTimeout ?? .seconds(600)
        return TargetBudget(stage: ready + .seconds(30), route: ready + .seconds(30))
    }

    /// `slipway.dev/app=hello,slipway.dev/environment=production`: everything Slipway applied here.
    var selector: String { "\(KubernetesLabel.app)=\(app),\(KubernetesLabel.environment)=\(environmentName)" }

    var labels: [String: String] {
        [KubernetesLabel.managedBy: "slipway", KubernetesLabel.app: app, KubernetesLabel.environment: environmentName]
    }

    func manifests() async throws -> AppManifests {
        if let cached = cache.withLock({ $0.manifests }) { return cached }
        let rendered = try await AppManifests.render(spec.manifests, kubectl: kubectl)
        cache.withLock { $0.manifests = rendered }
        return rendered
    }

    var readyTimeout: Duration {
        get async {
            if let ready = spec.readyTimeout { return ready }
            let deadline = (try? await manifests().progressDeadline) ?? 600
            return .seconds(deadline + 30)
        }
    }

    // MARK: - Reading the cluster

    static let colours = ["blue", "green"]

    /// Where a Service answers: its load-balancer address, else its cluster IP.
    static func address(of service: [String: Any]) -> String? {
        let port = ((service[path: "spec", "ports"] as? [[String: Any]])?.first?.int("port")) ?? 80
        let ingress = (service[path: "status", "loadBalancer", "ingress"] as? [[String: Any]])?.first
        let host =
            ingress?.string("ip") ?? ingress?.string("hostname")
            ?? service.string("spec", "clusterIP").flatMap { $0 == "None" ? nil : $0 }
        guard let host else { return nil }
        return port == 80 ? "http://\(host)" : "http://\(host):\(port)"
    }

    func resolveURL(mainService: [String: Any]?) async {
        guard spec.url == nil else { return }
        var url: String?
        switch spec.router {
        case .service:
            url = mainService.flatMap(Self.address)
        case .ingressNginx, .httpRoute:
            if let manifests = try? await manifests(), let ingress = manifests.ingress, let name = ingress.string("metadata", "name"),
                let live = try? await kubectl.object("ingress", name),
                let entry = (live[path: "status", "loadBalancer", "ingress"] as? [[String: Any]])?.first
            {
                let port = (entry["ports"] as? [[String: Any]])?.first?.int("port") ?? 80
                if let host = entry.string("ip") ?? entry.string("hostname") {
                    url = port == 80 ? "http://\(host)" : "http://\(host):\(port)"
                }
            }
            if url == nil { url = mainService.flatMap(Self.address) }
        }
        if let url { cache.withLock { $0.url = url } }
    }

    public func observe() async throws -> TargetObservation {
        let manifests = try await manifests()
        return inPlace ? try await observeRevisions(manifests) : try await observeColours(manifests)
    }

    /// Blue-green and canary: the colour Deployments, and where the router sends traffic.
    func observeColours(_ manifests: AppManifests) async throws -> TargetObservation {
        let objects = try await kubectl.items("deployments.apps,services", selector: selector)
        let services = Dictionary(
            objects.filter { $0["kind"] as? String == "Service" }.compactMap { object in
                object.string("metadata", "name").map { ($0, object) }
            }
        ) { first, _ in first }
        var main = services[manifests.serviceName]
        if main == nil { main = try await kubectl.object("service", manifests.serviceName) }
        await resolveURL(mainService: main)
        var instances: [TargetInstance] = []
        var colourOf: [String: TargetInstance] = [:]
        for deployment in objects where deployment["kind"] as? String == "Deployment" {
            guard let name = deployment.string("metadata", "name"),
                let colour = deployment.string("metadata", "labels", KubernetesLabel.colour)
            else { continue }
            let annotations = (deployment[path: "metadata", "annotations"] as? [String: Any]) ?? [:]
            let url = services[name].flatMap(Self.address) ?? ""
            let instance = TargetInstance(
                name: name, release: ReleaseReference(annotations: annotations), url: url,
                running: (deployment.int("status", "readyReplicas") ?? 0) > 0,
                goodHistory: ReleaseReference.history(annotations: annotations),
                startedBy: annotations[KubernetesLabel.startedBy] as? String)
            instances.append(instance)
            colourOf[colour] = instance
            if let replicas = deployment.int("spec", "replicas") { knownReplicas.withLock { $0[name] = replicas } }
        }
        let routes = try await routes(manifests, main: main, colourOf: colourOf, deployments: objects)
        return TargetObservation(instances: instances, routes: routes)
    }

    func routes(_ manifests: AppManifests, main: [String: Any]?, colourOf: [String: TargetInstance], deployments: [[String: Any]])
        async throws -> [TrafficShare]
    {
        let mainColour = main.flatMap { $0.string("spec", "selector", KubernetesLabel.colour) }
        switch spec.router {
        case .service:
            if let mainColour {
                return colourOf[mainColour].map { [TrafficShare($0, weight: 100)] } ?? []
            }
            guard main != nil else { return [] }
            // A split: both colours behind the Service, in proportion to their ready replicas.
            let ready = deployments.compactMap { deployment -> (TargetInstance, Int)? in
                guard let colour = deployment.string("metadata", "labels", KubernetesLabel.colour), let instance = colourOf[colour]
                else { return nil }
                return (instance, deployment.int("status", "readyReplicas") ?? 0)
            }.filter { $0.1 > 0 }
            let total = ready.reduce(0) { $0 + $1.1 }
            guard total > 0 else { return [] }
            return ready.map { TrafficShare($0.0, weight: $0.1 * 100 / total) }
        case .ingressNginx:
            guard let mainColour, let stable = colourOf[mainColour] else { return [] }
            guard let ingress = manifests.ingress, let name = ingress.string("metadata", "name"),
                let canary = try await kubectl.object("ingress", name + "-canary"),
                let weight = canary.string("metadata", "annotations", "nginx.ingress.kubernetes.io/canary-weight").flatMap({ Int($0) }),
                weight > 0, let colour = Self.colour(inBackendsOf: canary, service: manifests.serviceName), let candidate = colourOf[colour]
            else { return [TrafficShare(stable, weight: 100)] }
            return [TrafficShare(candidate, weight: min(weight, 100)), TrafficShare(stable, weight: 100 - min(weight, 100))]
                .filter { $0.weight > 0 }
        case .httpRoute:
            guard let route = manifests.httpRoute, let name = route.string("metadata", "name"),
                let live = try await kubectl.object("httproutes.gateway.networking.k8s.io", name)
            else { return mainColour.flatMap { colourOf[$0] }.map { [TrafficShare($0, weight: 100)] } ?? [] }
            let references = ((live[path: "spec", "rules"] as? [[String: Any]])?.first?["backendRefs"] as? [[String: Any]]) ?? []
            let weighted = references.compactMap { reference -> (TargetInstance, Int)? in
                guard let service = reference["name"] as? String, let colour = Self.colours.first(where: { service.hasSuffix("-" + $0) }),
                    let instance = colourOf[colour]
                else { return nil }
                return (instance, (reference["weight"] as? NSNumber)?.intValue ?? 1)
            }
            let total = weighted.reduce(0) { $0 + $1.1 }
            guard total > 0 else { return [] }
            return weighted.filter { $0.1 > 0 }.map { TrafficShare($0.0, weight: $0.1 * 100 / total) }
        }
    }

    /// Which colour's Service an Ingress sends to.
    static func colour(inBackendsOf ingress: [String: Any], service: String) -> String? {
        let rules = (ingress[path: "spec", "rules"] as? [[String: Any]]) ?? []
        for rule in rules {
            for path in (rule[path: "http", "paths"] as? [[String: Any]]) ?? [] {
                if let name = path.string("backend", "service", "name"), let colour = colours.first(where: { name == service + "-" + $0 }) {
                    return colour
                }
            }
        }
        return nil
    }

    /// Rolling: the Deployment's revisions (ReplicaSets), the current one taking the traffic.
    func observeRevisions(_ manifests: AppManifests) async throws -> TargetObservation {
        let revisions = try await self.revisions(manifests)
        let main = try await kubectl.object("service", manifests.serviceName)
        await resolveURL(mainService: main)
        let instances = revisions.filter { $0.current || $0.replicas > 0 }.map { $0.instance(url: serviceURL) }
        let routes = revisions.filter(\.current).map { TrafficShare($0.instance(url: serviceURL), weight: 100) }
        return TargetObservation(instances: instances, routes: routes)
    }

    /// One revision of the rolling Deployment.
    struct Revision: Sendable {
        var number: Int
        var replicaSet: String
        var release: ReleaseReference?
        var history: [ReleaseReference]
        var startedBy: String?
        var replicas: Int
        var ready: Int
        var current: Bool

        func instance(url: String) -> TargetInstance {
            TargetInstance(
                name: release.map { "r\($0.run)" } ?? replicaSet, release: release, url: url, running: ready > 0, goodHistory: history,
                startedBy: startedBy)
        }
    }

    func revisions(_ manifests: AppManifests) async throws -> [Revision] {
        guard let deployment = try await kubectl.object("deployment", manifests.deploymentName) else { return [] }
        let uid = deployment.string("metadata", "uid")
        let currentNumber = deployment.string("metadata", "annotations", "deployment.kubernetes.io/revision").flatMap { Int($0) }
        let sets = try await kubectl.items("replicasets.apps", selector: selector).filter { set in
            ((set[path: "metadata", "ownerReferences"] as? [[String: Any]]) ?? []).contains { $0["uid"] as? String == uid }
        }
        return sets.compactMap { set in
            guard let number = set.string("metadata", "annotations", "deployment.kubernetes.io/revision").flatMap({ Int($0) }) else {
                return nil
            }
            let annotations = (set[path: "spec", "template", "metadata", "annotations"] as? [String: Any]) ?? [:]
            return Revision(
                number: number, replicaSet: set.string("metadata", "name") ?? "", release: ReleaseReference(annotations: annotations),
                history: ReleaseReference.history(annotations: annotations), startedBy: annotations[KubernetesLabel.startedBy] as? String,
                replicas: set.int("status", "replicas") ?? 0, ready: set.int("status", "readyReplicas") ?? 0,
                current: number == currentNumber)
        }.sorted { $0.number > $1.number }
    }
}
