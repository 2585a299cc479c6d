import Foundation
import SlipwayCore
import Yams

// `environments:`: each environment, its `target:`, `strategy:` and `approval:`.
extension PipelineReader {
    func environmentMap(_ node: Node) -> [EnvironmentSpec] {
        guard let pairs = mapping(node, "environments") else { return [] }
        var result: [EnvironmentSpec] = []
        for (keyNode, name, value) in pairs.entries {
            if reservedNames.contains(name) {
                error(
                    keyNode, "environment name '\(name)' clashes with the command `deploy \(name)`",
                    hint: "rename the environment, e.g. '\(name)-env'")
            } else if !isValidIdentifier(name) {
                error(
                    keyNode, "environment name \(shown(name)) is not valid" + tooLong(name),
                    hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
            }
            result.append(environment(name: name, keyNode: keyNode, node: value))
        }
        return result
    }

    func environment(name: String, keyNode: Node, node: Node) -> EnvironmentSpec {
        var spec = EnvironmentSpec(
            name: name, location: location(keyNode), target: nil, strategy: nil, gates: [],
            promoteFrom: nil, approval: nil, variables: [], requireCleanTree: false)
        if isNull(node) { return spec }
        guard let pairs = mapping(node, "environment '\(name)'") else { return spec }
        checkKeys(
            pairs,
            allowed: [
                "target", "strategy", "gates", "promote_from", "approval", "variables", "require_clean_tree", "freeze", "rehearse_rollback",
            ],
            in: "environment '\(name)'")
        spec.target = pairs["target"].flatMap(target)
        spec.strategy = pairs["strategy"].flatMap(strategy)
        spec.gates = pairs["gates"].map { stringList($0, "gates", hint: "list gate names, e.g. `gates: [smoke]`") } ?? []
        spec.promoteFrom = pairs["promote_from"].flatMap { string($0, "promote_from") }
        spec.approval = pairs["approval"].flatMap(approval)
        spec.variables = pairs["variables"].map { variableMap($0, context: "variables of '\(name)'") } ?? []
        spec.requireCleanTree = pairs["require_clean_tree"].flatMap { bool($0, "require_clean_tree") } ?? (spec.promoteFrom != nil)
        spec.freezes = pairs["freeze"].map(freezeList) ?? []
        spec.rehearseRollback = pairs["rehearse_rollback"].flatMap { bool($0, "rehearse_rollback") } ?? false
        return spec
    }

    func target(_ node: Node) -> TargetSpec? {
        guard let pairs = mapping(node, "target", hint: "e.g. `target: { docker: { proxy: nginx, listen: 127.0.0.1:8081 } }`") else {
            return nil
        }
        let kinds = ["docker", "kubernetes"]
        checkKeys(pairs, allowed: kinds, in: "target")
        let present = pairs.entries.filter { kinds.contains($0.key) }
        guard present.count == 1 else {
            if present.count > 1 {
                error(node, "a target is either docker or kubernetes, not both")
            } else if pairs.entries.isEmpty {
                error(node, "the target is empty", hint: "name a kind: docker or kubernetes")
            }
            return nil
        }
        let (_, kind, body) = present[0]
        let settings = isNull(body) ? Mapping(entries: []) : mapping(body, "the \(kind) target")
        guard let settings else { return nil }
        switch kind {
        case "docker":
            checkKeys(settings, allowed: ["proxy", "listen", "port", "ready_timeout", "host"], in: "the docker target")
            var spec = DockerTargetSpec(listen: "")
            if let proxyNode = settings["proxy"], let proxy = string(proxyNode, "proxy") {
                if proxy != "nginx" {
                    error(proxyNode, "proxy '\(proxy)' is not supported", hint: "the docker target runs nginx in front: `proxy: nginx`")
                }
                spec.proxy = proxy
            }
            if let listenNode = required(
                settings, "listen", in: body, context: "the docker target", hint: "where users reach it, e.g. `listen: 127.0.0.1:8081`"),
                let listen = string(listenNode, "listen")
            {
                let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
                if parts.count != 2 || parts[0].isEmpty || Int(parts[1]).map({ !(1...65535).contains($0) }) ?? true {
                    error(listenNode, "listen '\(listen)' is not HOST:PORT", hint: "e.g. `listen: 127.0.0.1:8081`")
                }
                spec.listen = listen
            }
            if let portNode = settings["port"], let port = integer(portNode, "port") {
                if !(1...65535).contains(port) { error(portNode, "port \(port) is not a TCP port (1 to 65535)") }
                spec.port = port
            }
            if let readyNode = settings["ready_timeout"], let ready = duration(readyNode, "ready_timeout") { spec.readyTimeout = ready }
            if let hostNode = settings["host"], let host = string(hostNode, "host") {
                let schemes = ["unix://", "tcp://", "ssh://", "npipe://", "fd://"]
                if !schemes.contains(where: { host.hasPrefix($0) && host.count > $0.count }) {
                    error(
                        hostNode, "host '\(host)' is not a docker daemon address",
                        hint: "as DOCKER_HOST takes it, e.g. `host: unix:///run/podman/podman.sock` or `host: tcp://127.0.0.1:2375`")
                }
                spec.host = host
            }
            return .docker(spec)
        default:
            checkKeys(
                settings,
                allowed: ["manifests", "context", "namespace", "kubeconfig", "router", "server_side", "url", "ready_timeout"],
                in: "the kubernetes target")
            var spec = KubernetesTargetSpec(manifests: "")
            if let manifestsNode = required(
                settings, "manifests", in: body, context: "the kubernetes target",
                hint: "a kustomize directory, a directory of YAML files or one file, e.g. `manifests: Manifests/hello/overlays/production`"),
                let manifests = string(manifestsNode, "manifests")
            {
                spec.manifests = manifests
            }
            spec.context = settings["context"].flatMap { string($0, "context") }
            spec.namespace = settings["namespace"].flatMap { string($0, "namespace") }
            spec.kubeconfig = settings["kubeconfig"].flatMap { string($0, "kubeconfig") }
            if let routerNode = settings["router"], let router = string(routerNode, "router") {
                if let known = KubernetesTargetSpec.Router(rawValue: router) {
                    spec.router = known
                } else {
                    let names = KubernetesTargetSpec.Router.allCases.map(\.rawValue)
                    let guess = suggestion(for: router, among: names)
                    error(
                        routerNode, "unknown router '\(router)'",
                        hint: guess.map { "did you mean '\($0)'?" } ?? "use one of: \(names.joined(separator: ", "))")
                }
            }
            spec.serverSide = settings["server_side"].flatMap { bool($0, "server_side") } ?? false
            if let urlNode = settings["url"], let url = string(urlNode, "url") {
                if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                    error(urlNode, "url '\(url)' is not an http(s) address", hint: "e.g. `url: https://hello.example.com`")
                }
                spec.url = url
            }
            spec.readyTimeout = settings["ready_timeout"].flatMap { duration($0, "ready_timeout") }
            return .kubernetes(spec)
        }
    }

    func strategy(_ node: Node) -> StrategySpec? {
        let names = ["rolling", "blue_green", "canary"]
        if case .scalar(let scalar) = node {
            switch scalar.string {
            case "rolling": return .rolling
            case "blue_green": return .blueGreen(previewGates: [], bake: nil)
            default:
                let guess = suggestion(for: scalar.string.replacingOccurrences(of: "-", with: "_"), among: names)
                error(
                    node, "unknown strategy '\(scalar.string)'",
                    hint: guess.map { "did you mean '\($0)'?" } ?? "use one of: \(names.joined(separator: ", "))")
                return nil
            }
        }
        guard let pairs = mapping(node, "strategy") else { return nil }
        checkKeys(pairs, allowed: names, in: "strategy")
        guard let (keyNode, kind, body) = pairs.entries.first(where: { names.contains($0.key) }) else { return nil }
        if pairs.entries.count > 1 { error(keyNode, "a strategy is one of rolling, blue_green or canary, not several") }
        let settings = isNull(body) ? Mapping(entries: []) : mapping(body, kind)
        guard let settings else { return nil }
        switch kind {
        case "rolling":
            checkKeys(settings, allowed: [], in: "rolling")
            return .rolling
        case "blue_green":
            checkKeys(settings, allowed: ["preview_gates", "bake"], in: "blue_green")
            return .blueGreen(
                previewGates: settings["preview_gates"].map { stringList($0, "preview_gates") } ?? [],
                bake: settings["bake"].flatMap { duration($0, "bake") })
        default:
            checkKeys(settings, allowed: ["steps", "pause", "analysis", "hold_limit"], in: "canary")
            var steps: [Int] = []
            if let stepsNode = settings["steps"], let items = sequence(stepsNode, "canary steps", hint: "e.g. `steps: [5, 25, 50, 100]`") {
                for item in items {
                    guard let weight = integer(item, "a canary step") else { continue }
                    if weight < 1 || weight > 100 {
                        error(item, "canary step \(weight) is not a percentage from 1 to 100")
                    } else if let last = steps.last, weight <= last {
                        error(item, "canary steps must increase: \(weight) comes after \(last)")
                    }
                    steps.append(weight)
                }
                if let last = steps.last, last != 100 {
                    error(
                        stepsNode, "canary steps end at \(last)%, so the release would never take all traffic",
                        hint: "end the list with 100")
                }
            } else if settings["steps"] == nil {
                steps = [5, 25, 50, 100]
            }
            return .canary(
                steps: steps, pause: settings["pause"].flatMap { duration($0, "pause") },
                analysis: settings["analysis"].map { stringList($0, "analysis") } ?? [],
                holdLimit: settings["hold_limit"].flatMap { duration($0, "hold_limit") } ?? .seconds(3600))
        }
    }

    func approval(_ node: Node) -> ApprovalSpec? {
        guard let pairs = mapping(node, "approval", hint: "e.g. `approval: { approvers: 1, distinct_from_trigger: true, timeout: 4h }`")
        else { return nil }
        checkKeys(pairs, allowed: ["approvers", "allowed", "distinct_from_trigger", "timeout"], in: "approval")
        let count = pairs["approvers"].flatMap { integer($0, "approvers", in: 1...100) } ?? 1
        let allowed = pairs["allowed"].map { stringList($0, "allowed") } ?? []
        if let countNode = pairs["approvers"], !allowed.isEmpty, count > Set(allowed).count {
            error(
                countNode,
                "approvers: \(count) can never be met: only \(Set(allowed).count) name\(Set(allowed).count == 1 ? " is" : "s are") allowed",
                hint: "lower approvers, or add names to `allowed:`")
        }
        return ApprovalSpec(
            approvers: count,
            allowed: allowed,
            distinctFromTrigger: pairs["distinct_from_trigger"].flatMap { bool($0, "distinct_from_trigger") } ?? false,
            timeout: pairs["timeout"].flatMap { duration($0, "timeout") })
    }
}
