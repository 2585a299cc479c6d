import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import Synchronization

/// What the target finds out without changing anything: preflight, the readiness gate's answer,
/// `deploy status` with drift.
extension KubernetesTarget {
    // MARK: - Before anything changes

    public func preflight(say: @escaping @Sendable (String) -> Void) async throws {
        let record = Transcript(say: say).record
        _ = try await kubectl.call(["version", "--client=true", "-o", "json"], timeout: .seconds(30), record: record)
        if let context = spec.context {
            let contexts = try await kubectl.call(["config", "get-contexts", "-o", "name"], timeout: .seconds(30), record: record)
            let names = contexts.stdout.split(separator: "\n").map(String.init)
            guard contexts.succeeded, names.contains(context) else {
                throw KubernetesPreflight(
                    description:
                        "context '\(context)' is not in \(spec.kubeconfig ?? kubectl.environment["KUBECONFIG"] ?? "~/.kube/config")"
                        + (names.isEmpty ? "" : " (it has: \(names.joined(separator: ", ")))")
                        + "; fix `context:` of environment \(environmentName), or `kubectl config get-contexts` to see them")
            }
        }
        let version = try await kubectl.call(["version", "-o", "json", "--request-timeout=10s"], timeout: .seconds(30), record: record)
        guard version.succeeded else {
            throw KubernetesPreflight(
                description:
                    "the cluster of \(spec.context.map { "context '\($0)'" } ?? "the current context") cannot be reached: "
                    + (version.stderr.split(separator: "\n").last.map(String.init) ?? version.status))
        }
        let manifests = try await manifests()
        var needed = [
            ("get", "deployments.apps"), ("create", "deployments.apps"), ("patch", "deployments.apps"),
            ("get", "services"), ("create", "services"), ("patch", "services"),
        ]
        if !inPlace { needed += [("delete", "deployments.apps"), ("delete", "services")] }
        switch spec.router {
        case .service: break
        case .ingressNginx: needed += [("create", "ingresses.networking.k8s.io"), ("patch", "ingresses.networking.k8s.io")]
        case .httpRoute: needed += [("create", "httproutes.gateway.networking.k8s.io"), ("patch", "httproutes.gateway.networking.k8s.io")]
        }
        for (verb, resource) in needed {
            let answer = try await kubectl.call(["auth", "can-i", verb, resource], timeout: .seconds(30), record: record)
            guard answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "yes" else {
                throw KubernetesPreflight(
                    description:
                        "forbidden: \(spec.context.map { "context '\($0)'" } ?? "this user") may not \(verb) \(resource) in namespace "
                        + "'\(spec.namespace ?? "default")' (`kubectl auth can-i \(verb) \(resource)` says \(answer.stdout.isEmpty ? answer.stderr : answer.stdout)); "
                        + "ask for a Role that allows it")
            }
        }
        if let namespace = spec.namespace {
            let found = try await kubectl.call(["get", "namespace", namespace, "-o", "name", "--ignore-not-found"], record: record)
            guard found.succeeded, !found.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw KubernetesPreflight(
                    description: found.succeeded
                        ? "namespace '\(namespace)' does not exist; create it (`kubectl create namespace \(namespace)`) or fix `namespace:`"
                        : "cannot read namespace '\(namespace)': \(found.stderr)")
            }
        }
        if spec.router == .ingressNginx, manifests.ingress == nil {
            throw KubernetesPreflight(description: "router ingress-nginx needs an Ingress in \(spec.manifests)")
        }
        if spec.router == .httpRoute, manifests.httpRoute == nil {
            throw KubernetesPreflight(description: "router httproute needs an HTTPRoute in \(spec.manifests)")
        }
        say("kubectl reaches \(spec.context ?? "the current context"), namespace \(spec.namespace ?? "default"): every verb allowed")
    }

    // MARK: - Status and teardown

    public func status() async -> TargetStatus {
        let observation: TargetObservation
        do {
            observation = try await observe()
        } catch {
            return TargetStatus(kind: kind, url: serviceURL, routes: [], problem: "cannot read the cluster: \(error)")
        }
        var status = TargetStatus(kind: kind, url: serviceURL, routes: observation.routes)
        status.details.append(
            "context \(spec.context ?? "(current)"), namespace \(spec.namespace ?? "default"), router \(spec.router.rawValue)"
                + (inPlace ? ", rolling" : ""))
        var problems: [String] = []
        let deployments = (try? await kubectl.items("deployments.apps", selector: selector)) ?? []
        for deployment in deployments {
            let name = deployment.string("metadata", "name") ?? "?"
            let ready = deployment.int("status", "readyReplicas") ?? 0
            let wanted = deployment.int("spec", "replicas") ?? 0
            let revision = deployment.string("metadata", "annotations", "deployment.kubernetes.io/revision") ?? "?"
            let image = ((deployment[path: "spec", "template", "spec", "containers"] as? [[String: Any]]) ?? []).compactMap {
                $0["image"] as? String
            }
            let colour = deployment.string("metadata", "labels", KubernetesLabel.colour).map { " (\($0))" } ?? ""
            status.details.append(
                "deployment/\(name)\(colour): \(ready)/\(wanted) ready, revision \(revision), \(image.joined(separator: ", "))")
            // Drift: the pod template's image is not the one Slipway put there.
            if let recorded = deployment.string("spec", "template", "metadata", "annotations", KubernetesLabel.image),
                !image.contains(recorded)
            {
                problems.append(
                    "drift: deployment/\(name) runs \(image.joined(separator: ", ")) but Slipway deployed \(recorded) (changed outside deploy)"
                )
            }
        }
        status.instances = observation.instances.map {
            "\($0.name) (\($0.running ? "ready" : "not ready"), \($0.release?.description ?? "?"))"
        }
        if observation.routes.isEmpty, !deployments.isEmpty { problems.append("no release takes traffic") }
        if !problems.isEmpty { status.problem = problems.joined(separator: "; ") }
        return status
    }

    // MARK: - The readiness gate
    /// The `readiness` gate: every pod of the release ready, as many as wanted, and no container
    /// restarted.
    public func readiness(of instance: TargetInstance) async -> (ready: Bool, detail: String) {
        do {
            let wanted: Int
            let selector: String
            if inPlace {
                let manifests = try await manifests()
                guard let run = instance.release?.run,
                    let set = try await kubectl.items("replicasets.apps", selector: self.selector).first(where: { set in
                        set.string("spec", "template", "metadata", "annotations", KubernetesLabel.run) == String(run)
                    }), let hash = set.string("metadata", "labels", "pod-template-hash")
                else { return (false, "no ReplicaSet of deployment/\(manifests.deploymentName) runs \(instance.label)") }
                wanted = set.int("spec", "replicas") ?? 0
                selector = "pod-template-hash=\(hash)"
            } else {
                guard let deployment = try await kubectl.object("deployment", instance.name),
                    let matchLabels = deployment[path: "spec", "selector", "matchLabels"] as? [String: Any]
                else { return (false, "deployment/\(instance.name) is gone") }
                wanted = deployment.int("spec", "replicas") ?? 0
                selector = matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }
            let pods = try await kubectl.items("pods", selector: selector).filter { $0[path: "metadata", "deletionTimestamp"] == nil }
            var ready = 0
            var restarts = 0
            for pod in pods {
                let statuses = (pod[path: "status", "containerStatuses"] as? [[String: Any]]) ?? []
                if !statuses.isEmpty, statuses.allSatisfy({ $0["ready"] as? Bool == true }) { ready += 1 }
                restarts += statuses.reduce(0) { $0 + ((($1["restartCount"] as? NSNumber)?.intValue) ?? 0) }
            }
            let detail = "\(ready)/\(wanted) pods of \(instance.label) ready, \(restarts) restart\(restarts == 1 ? "" : "s")"
            return (wanted > 0 && ready >= wanted && restarts == 0, detail)
        } catch {
            return (false, "cannot read the cluster: \(error)")
        }
    }
}

/// The cluster cannot take this deploy: found before anything changed.
public struct KubernetesPreflight: Error, Sendable, CustomStringConvertible {
    public var description: String
}

// Where Prometheus scrapes a release: each of its running pods, at its pod IP and the app
// container's first port (kube-sim gives each pod a loopback address of its own).
extension KubernetesTarget {
    public func scrapeEndpoints(_ observation: TargetObservation) async -> [ScrapeEndpoint] {
        guard let pods = try? await kubectl.items("pods", selector: selector) else { return [] }
        return pods.compactMap { pod -> ScrapeEndpoint? in
            guard pod.string("status", "phase") == "Running", let ip = pod.string("status", "podIP") else { return nil }
            let containers = (pod[path: "spec", "containers"] as? [[String: Any]]) ?? []
            let index = ManifestEdit.appContainerIndex(containers, pipelineImage: pipelineImage)
            guard containers.indices.contains(index),
                let port = (containers[index]["ports"] as? [[String: Any]])?.first?.int("containerPort")
            else { return nil }
            let annotations = (pod[path: "metadata", "annotations"] as? [String: Any]) ?? [:]
            let release = ReleaseReference(annotations: annotations)
            let image = containers[index]["image"] as? String
            let instance =
                observation.instances.first { release != nil && $0.release?.run == release?.run }
                ?? observation.instances.first { image != nil && $0.release?.image == image }
            guard let instance else { return nil }
            return ScrapeEndpoint(address: "\(ip):\(port)", instance: instance)
        }
    }
}
