import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import Synchronization

/// Moving traffic: the service, ingress-nginx and httproute routers for colours, and the rolling
/// shape's apply or `rollout undo --to-revision`.
extension KubernetesTarget {
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
}
