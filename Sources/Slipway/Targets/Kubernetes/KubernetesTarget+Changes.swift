import Foundation
public import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import Synchronization

extension KubernetesTarget {
    /// A rollout that did not become ready: what kubectl said, and what the pods say.
    public struct NotReady: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Collects the kubectl calls of one operation for its line in the run record.
    final class Transcript: Sendable {
        let lines = Mutex<[String]>([])
        let say: (@Sendable (String) -> Void)?
        init(say: (@Sendable (String) -> Void)? = nil) { self.say = say }
        var record: @Sendable (String) -> Void {
            { [self] line in
                lines.withLock { $0.append(line) }
                say?(line)
            }
        }
        var text: String { lines.withLock { $0.joined(separator: "\n") } }
    }

    // MARK: - Starting a release

    public func stage(
        _ release: ReleaseReference, run: Int64, history: [ReleaseReference], say: @escaping @Sendable (String) -> Void
    ) async throws -> TargetInstance {
        let manifests = try await manifests()
        if inPlace {
            // The Deployment's own rolling update is the move of traffic: it starts there. What
            // carries no release (the Service, the router's objects, the rest) is applied now.
            let transcript = Transcript(say: say)
            try await kubectl.apply(mainObjects(manifests), record: transcript.record)
            let main = try await kubectl.object("service", manifests.serviceName)
            await resolveURL(mainService: main)
            var url = spec.url ?? ""
            if spec.url == nil { url = try await address(ofService: manifests.serviceName, record: transcript.record) }
            if spec.url == nil, spec.router == .service { cache.withLock { $0.url = url } }
            say("rolling update of deployment/\(manifests.deploymentName) when traffic moves; service/\(manifests.serviceName) at \(url)")
            return TargetInstance(name: "r\(run)", release: release, url: url, goodHistory: history, startedBy: String(run))
        }
        let transcript = Transcript(say: say)
        let main = try await kubectl.object("service", manifests.serviceName)
        let serving = main?.string("spec", "selector", KubernetesLabel.colour)
        let colour = Self.colours.first { $0 != serving } ?? "blue"
        let name = "\(manifests.deploymentName)-\(colour)"
        var colourLabels = labels
        colourLabels[KubernetesLabel.colour] = colour
        let deployment = ManifestEdit.deployment(
            manifests.deployment, name: name, labels: colourLabels, selectorLabels: [KubernetesLabel.colour: colour], release: release,
            annotations: ManifestEdit.releaseAnnotations(release, history: history, startedBy: String(run)), pipelineImage: pipelineImage)
        var service = ManifestEdit.setting(manifests.service, ["metadata", "name"], name)
        service = ManifestEdit.merging(service, ["metadata", "labels"], colourLabels)
        service = ManifestEdit.merging(service, ["spec", "selector"], [KubernetesLabel.colour: colour])
        service = Self.withoutServerFields(service)
        let others = manifests.others.map { ManifestEdit.merging($0, ["metadata", "labels"], labels) }
        try await kubectl.apply(others + [deployment, service], record: transcript.record)
        try await waitForRollout(name, record: transcript.record)
        knownReplicas.withLock { $0[name] = manifests.replicas }
        let url = try await address(ofService: name, record: transcript.record)
        say("\(name) ready, answering at \(url) (its own Service)")
        return TargetInstance(name: name, release: release, url: url, goodHistory: history, startedBy: String(run))
    }

    /// The rolling shape's objects that carry no release: the Service, the router's Ingress or
    /// HTTPRoute, and the rest, labelled as Slipway's.
    func mainObjects(_ manifests: AppManifests) -> [[String: Any]] {
        var objects = manifests.others.map { ManifestEdit.merging($0, ["metadata", "labels"], labels) }
        objects.append(ManifestEdit.merging(manifests.service, ["metadata", "labels"], labels))
        if spec.router == .ingressNginx, let ingress = manifests.ingress {
            objects.append(ManifestEdit.merging(ingress, ["metadata", "labels"], labels))
        }
        if spec.router == .httpRoute, let route = manifests.httpRoute {
            objects.append(ManifestEdit.merging(route, ["metadata", "labels"], labels))
        }
        return objects
    }

    /// A copy of a Service for another name: no cluster IP or node ports of the original.
    static func withoutServerFields(_ service: [String: Any]) -> [String: Any] {
        var copy = service
        if var spec = copy["spec"] as? [String: Any] {
            spec["clusterIP"] = nil
            spec["clusterIPs"] = nil
            if let ports = spec["ports"] as? [[String: Any]] {
                spec["ports"] = ports.map { port in
                    var port = port
                    port["nodePort"] = nil
                    return port
                }
            }
            copy["spec"] = spec
        }
        copy["status"] = nil
        return copy
    }

    /// `kubectl rollout status` until the Deployment is ready; when it is not, what its pods say.
    func waitForRollout(_ deployment: String, record: @escaping @Sendable (String) -> Void) async throws {
        let timeout = await readyTimeout
        let seconds = Int(timeout / .seconds(1))
        let result = try await kubectl.call(
            ["rollout", "status", "deployment/\(deployment)", "--timeout=\(seconds)s"], timeout: timeout + .seconds(30), record: record)
        guard result.succeeded else {
            let reason = result.stderr.split(separator: "\n").last.map(String.init) ?? result.status
            let pods = await podProblems(deployment)
            throw NotReady(
                description: "deployment/\(deployment) did not become ready: \(reason)" + (pods.isEmpty ? "" : "; " + pods))
        }
    }

    /// Why the pods of a Deployment are not ready, one clause each (at most three).
    func podProblems(_ deployment: String) async -> String {
        guard let object = try? await kubectl.object("deployment", deployment),
            let matchLabels = object[path: "spec", "selector", "matchLabels"] as? [String: Any]
        else { return "" }
        let selector = matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let pods = (try? await kubectl.items("pods", selector: selector)) ?? []
        var clauses: [String] = []
        for pod in pods {
            for status in (pod[path: "status", "containerStatuses"] as? [[String: Any]]) ?? [] where status["ready"] as? Bool != true {
                let waiting = status[path: "state", "waiting"] as? [String: Any]
                let reason = waiting?.string("reason") ?? (status[path: "state", "running"] != nil ? "running, not ready" : "not ready")
                let restarts = (status["restartCount"] as? NSNumber)?.intValue ?? 0
                clauses.append(
                    "pod \(pod.string("metadata", "name") ?? "?"): \(reason)" + (restarts > 0 ? " (\(restarts) restarts)" : ""))
            }
        }
        return clauses.prefix(3).joined(separator: "; ")
    }

    /// Where a Service answers, waiting (up to 30 s) for a load balancer to be given one.
    func address(ofService name: String, record: @escaping @Sendable (String) -> Void) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let service = try await kubectl.object("service", name)
            let type = service?.string("spec", "type") ?? "ClusterIP"
            let hasBalancer = (service?[path: "status", "loadBalancer", "ingress"] as? [[String: Any]])?.isEmpty == false
            if let service, type != "LoadBalancer" || hasBalancer || ContinuousClock.now > deadline,
                let address = Self.address(of: service)
            {
                return address
            }
            if ContinuousClock.now > deadline { throw NotReady(description: "service/\(name) has no address") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    // MARK: - Removing

    public func retire(_ instance: TargetInstance) async throws {
        if inPlace { return }  // A revision stays in the Deployment's history (`kubectl rollout history`).
        let manifests = try await manifests()
        if let colour = Self.colour(of: instance), let main = try await kubectl.object("service", manifests.serviceName),
            main.string("spec", "selector", KubernetesLabel.colour) == colour
        {
            throw NotReady(description: "\(instance.name) was not removed: service/\(manifests.serviceName) selects it")
        }
        try await kubectl.run(["delete", "deployment/\(instance.name)", "service/\(instance.name)", "--ignore-not-found", "--wait=false"])
    }

    public func imageAvailable(_ image: String, say: @escaping @Sendable (String) -> Void) async -> Bool {
        say("the cluster pulls \(image) itself (by digest)")
        return true
    }

    public func describe(_ operation: TargetOperation) -> String {
        let global = kubectl.globalArguments.joined(separator: " ")
        switch operation {
        case .stage(let release, _):
            return inPlace
                ? "(the rolling update starts when traffic moves)"
                : "kubectl \(global) apply -f <\(spec.manifests), a colour> (image \(release.image)); kubectl rollout status"
        case .route:
            if inPlace { return "kubectl \(global) apply / rollout undo --to-revision; kubectl rollout status" }
            switch spec.router {
            case .service: return "kubectl \(global) patch service --type=merge (selector)"
            case .ingressNginx: return "kubectl \(global) apply (ingress + canary ingress, canary-weight)"
            case .httpRoute: return "kubectl \(global) apply (httproute backendRefs weights)"
            }
        case .retire(let instance):
            return inPlace
                ? "(kept as a revision: kubectl rollout history)"
                : "kubectl \(global) delete deployment/\(instance.name) service/\(instance.name)"
        case .findImage: return "(the cluster pulls the image)"
        }
    }

    public func teardown() async throws -> [String] {
        let output = try await kubectl.run(
            ["delete", "deployments.apps,services,ingresses.networking.k8s.io", "-l", selector, "--ignore-not-found", "-o", "name"])
        var lines = output.split(separator: "\n").map { "deleted \($0)" }
        if let removed = try? await kubectl.run(
            ["delete", "httproutes.gateway.networking.k8s.io", "-l", selector, "--ignore-not-found", "-o", "name"])
        {
            lines += removed.split(separator: "\n").map { "deleted \($0)" }
        }
        return lines.isEmpty ? ["nothing of \(app) in \(environmentName) was left"] : lines
    }
}
