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

    // MARK: - Moving traffic

    public func route(_ shares: [TrafficShare]) async throws -> String {
        let manifests = try await manifests()
        let transcript = Transcript()
        let summary: String
        if inPlace {
            summary = try await routeRevision(shares, manifests: manifests, record: transcript.record)
        } else {
            summary = try await routeColours(shares, manifests: manifests, record: transcript.record)
        }
        // The first move creates the app's Service: from then on, it is where users are.
        if spec.url == nil, cache.withLock({ $0.url }) == nil, !shares.isEmpty {
            if spec.router == .service {
                if let url = try? await address(ofService: manifests.serviceName, record: { _ in }) { cache.withLock { $0.url = url } }
            } else {
                await resolveURL(mainService: try? await kubectl.object("service", manifests.serviceName))
            }
        }
        return ([summary] + [transcript.text]).filter { !$0.isEmpty }.joined(separator: "\n")
    }

    static func colour(of instance: TargetInstance) -> String? {
        colours.first { instance.name.hasSuffix("-" + $0) }
    }

    /// Points the app's Service at one colour (or, nil, at both: a replica-ratio split); creates it
    /// from the manifests the first time. One `kubectl patch service`.
    func selectColour(_ colour: String?, manifests: AppManifests, record: @escaping @Sendable (String) -> Void) async throws {
        let patch = "{\"spec\":{\"selector\":{\"\(KubernetesLabel.colour)\":\(colour.map { "\"\($0)\"" } ?? "null")}}}"
        let result = try await kubectl.call(
            ["patch", "service", manifests.serviceName, "--type=merge", "-p", patch, "-o", "name"], record: record)
        if result.succeeded { return }
        guard result.stderr.contains("NotFound") || result.stderr.contains("not found") else {
            throw Kubectl.Failed(
                command: "kubectl patch service \(manifests.serviceName)", termination: result.status, output: result.stderr)
        }
        var service = ManifestEdit.merging(manifests.service, ["metadata", "labels"], labels)
        if let colour { service = ManifestEdit.merging(service, ["spec", "selector"], [KubernetesLabel.colour: colour]) }
        try await kubectl.apply([service], record: record)
    }

    func routeColours(_ shares: [TrafficShare], manifests: AppManifests, record: @escaping @Sendable (String) -> Void) async throws
        -> String
    {
        let moving = shares.filter { $0.weight > 0 }.sorted { $0.weight > $1.weight }
        guard let primary = moving.first else {
            do { try await selectColour("none", manifests: manifests, record: record) } catch { throw TrafficUnchanged(error) }
            return "service/\(manifests.serviceName) selects no release"
        }
        guard let primaryColour = Self.colour(of: primary.instance) else {
            throw TrafficUnchanged(NotReady(description: "\(primary.instance.name) is not a colour Deployment Slipway started"))
        }
        let secondary = moving.dropFirst().first
        let secondaryColour = secondary.flatMap { Self.colour(of: $0.instance) }
        var changed = false
        do {
            switch spec.router {
            case .service:
                guard let secondary, let secondaryColour else {
                    // All to one colour: its full replica count first (a split may have scaled it down).
                    try await scale("\(manifests.deploymentName)-\(primaryColour)", to: manifests.replicas, record: record)
                    changed = true
                    try await selectColour(primaryColour, manifests: manifests, record: record)
                    return "service/\(manifests.serviceName) selects \(primary.instance.label) (\(primaryColour))"
                }
                // A split behind one Service: the smaller share gets replicas in proportion.
                let n = manifests.replicas
                let small = min(n, max(1, Int((Double(n) * Double(secondary.weight) / Double(primary.weight)).rounded())))
                try await scale("\(manifests.deploymentName)-\(primaryColour)", to: n, record: record)
                try await scale("\(manifests.deploymentName)-\(secondaryColour)", to: small, record: record)
                changed = true
                try await selectColour(nil, manifests: manifests, record: record)
                let share = small * 100 / (small + n)
                return
                    "service/\(manifests.serviceName) selects both colours: \(secondary.instance.label) \(small) of \(small + n) replicas "
                    + "(≈\(share)% for \(secondary.weight)% asked), \(primary.instance.label) \(n)"
            case .ingressNginx:
                guard let ingress = manifests.ingress, let name = ingress.string("metadata", "name") else {
                    throw NotReady(description: "router ingress-nginx needs an Ingress in \(spec.manifests)")
                }
                try await selectColour(primaryColour, manifests: manifests, record: record)
                changed = true
                var main = ManifestEdit.merging(ingress, ["metadata", "labels"], labels)
                main["status"] = nil
                var canary = Self.renamingBackends(
                    main, from: manifests.serviceName, to: "\(manifests.serviceName)-\(secondaryColour ?? primaryColour)")
                canary = ManifestEdit.setting(canary, ["metadata", "name"], name + "-canary")
                canary = ManifestEdit.merging(
                    canary, ["metadata", "annotations"],
                    [
                        "nginx.ingress.kubernetes.io/canary": "true",
                        "nginx.ingress.kubernetes.io/canary-weight": String(secondary?.weight ?? 0),
                    ])
                try await kubectl.apply([main, canary], record: record)
                return "ingress \(name) → \(primary.instance.label)"
                    + (secondary.map { ", canary ingress \(name)-canary weight \($0.weight) → \($0.instance.label)" } ?? "")
            case .httpRoute:
                guard let route = manifests.httpRoute, let name = route.string("metadata", "name") else {
                    throw NotReady(description: "router httproute needs an HTTPRoute in \(spec.manifests)")
                }
                var weighted = [(manifests.serviceName + "-" + primaryColour, primary.weight)]
                if let secondary, let secondaryColour { weighted.append((manifests.serviceName + "-" + secondaryColour, secondary.weight)) }
                var object = ManifestEdit.merging(route, ["metadata", "labels"], labels)
                object["status"] = nil
                var rules = (object[path: "spec", "rules"] as? [[String: Any]]) ?? [[:]]
                for index in rules.indices {
                    let port =
                        ((rules[index]["backendRefs"] as? [[String: Any]])?.first?["port"] as? NSNumber)?.intValue ?? manifests.servicePort
                    rules[index]["backendRefs"] = weighted.map { ["name": $0.0, "port": port, "weight": $0.1] as [String: Any] }
                }
                object = ManifestEdit.setting(object, ["spec", "rules"], rules)
                try await kubectl.apply([object], record: record)
                changed = true
                if secondary == nil { try await selectColour(primaryColour, manifests: manifests, record: record) }
                return "httproute \(name): " + weighted.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            }
        } catch {
            throw changed ? error : TrafficUnchanged(error)
        }
    }

    /// An Ingress whose backends that name `from` name `to` instead.
    static func renamingBackends(_ ingress: [String: Any], from: String, to: String) -> [String: Any] {
        var rules = (ingress[path: "spec", "rules"] as? [[String: Any]]) ?? []
        for index in rules.indices {
            var paths = (rules[index][path: "http", "paths"] as? [[String: Any]]) ?? []
            for pathIndex in paths.indices where paths[pathIndex].string("backend", "service", "name") == from {
                paths[pathIndex] = ManifestEdit.setting(paths[pathIndex], ["backend", "service", "name"], to)
            }
            rules[index] = ManifestEdit.setting(rules[index], ["http", "paths"], paths)
        }
        return ManifestEdit.setting(ingress, ["spec", "rules"], rules)
    }

    /// `kubectl scale` and, when it changed anything, the rollout until ready.
    func scale(_ deployment: String, to replicas: Int, record: @escaping @Sendable (String) -> Void) async throws {
        if knownReplicas.withLock({ $0[deployment] }) != replicas {
            guard let object = try await kubectl.object("deployment", deployment) else {
                throw NotReady(description: "deployment/\(deployment) does not exist")
            }
            if object.int("spec", "replicas") != replicas {
                try await kubectl.run(["scale", "deployment/\(deployment)", "--replicas=\(replicas)"], record: record)
                try await waitForRollout(deployment, record: record)
            }
        }
        knownReplicas.withLock { $0[deployment] = replicas }
    }

    /// Rolling: the Deployment at the release's revision when the cluster still has it (`rollout
    /// undo --to-revision`), else applied with the release's image; then its rollout.
    func routeRevision(_ shares: [TrafficShare], manifests: AppManifests, record: @escaping @Sendable (String) -> Void) async throws
        -> String
    {
        let moving = shares.filter { $0.weight > 0 }
        let name = manifests.deploymentName
        if moving.isEmpty {
            // Nothing is to serve (a first release that failed): no pods.
            if try await kubectl.object("deployment", name) != nil {
                do {
                    try await kubectl.run(["scale", "deployment/\(name)", "--replicas=0"], record: record)
                } catch {
                    throw TrafficUnchanged(error)
                }
            }
            return "deployment/\(name) scaled to 0: nothing serves"
        }
        guard moving.count == 1, let target = moving.first, let release = target.instance.release else {
            throw TrafficUnchanged(
                NotReady(
                    description:
                        "a rolling deploy on Kubernetes moves all traffic at once; a split needs strategy blue_green or canary"))
        }
        let revisions = try await revisions(manifests)
        if let revision = revisions.first(where: { $0.release?.run == release.run && $0.release?.image == release.image }) {
            if !revision.current {
                do {
                    try await kubectl.run(["rollout", "undo", "deployment/\(name)", "--to-revision=\(revision.number)"], record: record)
                } catch {
                    throw TrafficUnchanged(error)
                }
            }
            try await waitForRollout(name, record: record)
            return "deployment/\(name) at revision \(revision.number) (\(target.instance.label))"
                + (revision.current ? ", already current" : ": kubectl rollout undo --to-revision=\(revision.number)")
        }
        let deployment = ManifestEdit.deployment(
            manifests.deployment, name: name, labels: labels, selectorLabels: [:], release: release,
            annotations: ManifestEdit.releaseAnnotations(
                release, history: target.instance.goodHistory, startedBy: target.instance.startedBy),
            pipelineImage: pipelineImage)
        do {
            try await kubectl.apply([deployment], record: record)
        } catch {
            throw TrafficUnchanged(error)
        }
        try await waitForRollout(name, record: record)
        let after = (try? await self.revisions(manifests)) ?? []
        let revision = after.first(where: { $0.current })?.number
        return "deployment/\(name) rolled out \(target.instance.label)" + (revision.map { " (revision \($0))" } ?? "")
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

/// The cluster cannot take this deploy: found before anything changed.
public struct KubernetesPreflight: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension KubernetesTarget {
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
