import AsyncHTTPClient
public import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// What carries requests to pods: each Service's cluster IP (and, for type LoadBalancer, its
/// load-balancer address in `status.loadBalancer.ingress`) proxies TCP connections to its ready
/// endpoints, spread evenly as kube-proxy does; one edge HTTP address per cluster serves Ingresses
/// (with ingress-nginx's canary annotations) and Gateway API HTTPRoutes (with backend weights).
public actor Traffic {
    let store: Store
    let network: Network
    /// "ip:port" → listener.
    var listeners: [String: any Channel] = [:]
    var listenerTargets: [String: (namespace: String, service: String, port: JSON)] = [:]
    var edge: (address: String, port: Int, task: Task<Void, any Error>)?
    var roundRobin: [String: Int] = [:]
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    /// Where the edge's address is written once it listens (`<state>/edge`: `ip:port`).
    let edgeFile: URL?

    public init(store: Store, network: Network, edgeFile: URL? = nil) {
        self.store = store
        self.network = network
        self.edgeFile = edgeFile
    }

    public func run() async {
        while !Task.isCancelled {
            await pass()
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Where the edge (ingress and HTTPRoute) listener is, once something needs it.
    public var edgeAddress: (address: String, port: Int)? { edge.map { ($0.address, $0.port) } }

    public func pass() async {
        let catalog = await store.catalog
        guard let services = catalog.find(group: "", resource: "services") else { return }
        var wanted: [String: (namespace: String, service: String, port: JSON)] = [:]
        for service in await store.list(services, namespace: nil).items {
            let namespace = ControllerManager.namespace(service) ?? "default"
            let name = ControllerManager.name(service)
            var addresses = (service[path: ["spec", "clusterIPs"]]?.array ?? []).compactMap(\.string)
            if service[path: ["spec", "type"]]?.string == "LoadBalancer" {
                var ingress = (service[path: ["status", "loadBalancer", "ingress"]]?.array ?? []).compactMap { $0["ip"]?.string }
                if ingress.isEmpty {
                    let address = await network.loadBalancerAddress()
                    var updated = service
                    updated[path: ["status", "loadBalancer"]] = ["ingress": [["ip": .string(address), "ipMode": "VIP"]]]
                    _ = try? await store.update(
                        services, namespace: namespace, name: name, object: updated,
                        writer: Writer(manager: "kube-sim-load-balancer", subresource: "status"))
                    ingress = [address]
                }
                addresses += ingress
            }
            for address in addresses where address.hasPrefix("127.") {
                for port in service[path: ["spec", "ports"]]?.array ?? [] {
                    guard let number = port["port"]?.int, port["protocol"]?.string ?? "TCP" == "TCP" else { continue }
                    wanted["\(address):\(number)"] = (namespace, name, port)
                }
            }
        }
        for (key, channel) in listeners where wanted[key] == nil {
            try? await channel.close()
            listeners[key] = nil
            listenerTargets[key] = nil
        }
        for (key, target) in wanted {
            listenerTargets[key] = target
            if listeners[key] == nil, let channel = await listen(key) { listeners[key] = channel }
        }
        await syncEdge(catalog)
    }

    // MARK: TCP proxy

    private func listen(_ key: String) async -> (any Channel)? {
        let parts = key.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { return nil }
        let host = String(parts[0])
        do {
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let channel = server.channel
            Task {
                try? await server.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in inbound {
                            group.addTask { await self.forward(connection, key: key) }
                        }
                    }
                }
            }
            return channel
        } catch {
            return nil
        }
    }

    /// The ready endpoints of a service port: `ip:port` strings.
    func endpoints(namespace: String, service: String, port: JSON) async -> [(String, Int)] {
        guard let type = await store.catalog.find(group: "", resource: "endpoints"),
            let endpoints = await store.find(type, namespace: namespace, name: service)
        else { return [] }
        var result: [(String, Int)] = []
        for subset in endpoints["subsets"]?.array ?? [] {
            let ports = subset["ports"]?.array ?? []
            let match = ports.first { $0["name"] == port["name"] } ?? ports.first
            guard let number = match?["port"]?.int else { continue }
            for address in subset["addresses"]?.array ?? [] {
                if let ip = address["ip"]?.string { result.append((ip, number)) }
            }
        }
        return result
    }

    private func pick(_ choices: [(String, Int)], key: String) -> (String, Int)? {
        guard !choices.isEmpty else { return nil }
        let next = (roundRobin[key] ?? Int.random(in: 0..<choices.count)) % choices.count
        roundRobin[key] = next + 1
        return choices[next]
    }

    private func forward(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, key: String) async {
        guard let target = listenerTargets[key] else {
            try? await connection.channel.close()
            return
        }
        let choices = await endpoints(namespace: target.namespace, service: target.service, port: target.port)
        guard let (host, port) = pick(choices, key: key) else {
            // No ready endpoint: the connection is refused, as kube-proxy's REJECT rule does.
            try? await connection.channel.close()
            return
        }
        do {
            let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            try await connection.executeThenClose { clientIn, clientOut in
                try await upstream.executeThenClose { serverIn, serverOut in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await chunk in clientIn { try await serverOut.write(chunk) }
                            serverOut.finish()
                        }
                        group.addTask {
                            for try await chunk in serverIn { try await clientOut.write(chunk) }
                            clientOut.finish()
                        }
                        try await group.waitForAll()
                    }
                }
            }
        } catch {
            try? await connection.channel.close()
        }
    }

    // MARK: Edge: Ingress and HTTPRoute

    private func syncEdge(_ catalog: ResourceCatalog) async {
        let ingressType = catalog.find(group: "networking.k8s.io", resource: "ingresses")
        let routeType = catalog.types.first { $0.group == "gateway.networking.k8s.io" && $0.kind == "HTTPRoute" }
        let ingresses = ingressType == nil ? [] : await store.list(ingressType!, namespace: nil).items
        let routes = routeType == nil ? [] : await store.list(routeType!, namespace: nil).items
        guard !ingresses.isEmpty || !routes.isEmpty else { return }
        if edge == nil { await startEdge() }
        guard let edge, let ingressType else { return }
        for ingress in ingresses {
            let current = (ingress[path: ["status", "loadBalancer", "ingress"]]?.array ?? []).compactMap { $0["ip"]?.string }
            guard current != [edge.address] else { continue }
            var updated = ingress
            var entry: JSON = ["ip": .string(edge.address)]
            if edge.port != 80 { entry["ports"] = [["port": .int(edge.port), "protocol": "TCP"]] }
            updated[path: ["status", "loadBalancer"]] = ["ingress": [entry]]
            _ = try? await store.update(
                ingressType, namespace: ControllerManager.namespace(ingress), name: ControllerManager.name(ingress),
                object: updated, writer: Writer(manager: "kube-sim-ingress-controller", subresource: "status"))
        }
    }

    private func startEdge() async {
        let address = network.edgeAddress
        var logger = Logger(label: "kube-sim-edge")
        logger.logLevel = .error
        for port in [80, 0] {
            let started = AsyncStream<Int>.makeStream()
            let app = Application(
                responder: CallbackResponder { (request: Request, _: BasicRequestContext) in try await self.route(request) },
                configuration: ApplicationConfiguration(address: .hostname(address, port: port), serverName: nil),
                onServerRunning: { channel in
                    started.continuation.yield(channel.localAddress?.port ?? 0)
                    started.continuation.finish()
                },
                logger: logger)
            let task = Task {
                defer { started.continuation.finish() }
                try await app.runService(gracefulShutdownSignals: [])
            }
            var iterator = started.stream.makeAsyncIterator()
            if let bound = await iterator.next() {
                edge = (address, bound, task)
                if let edgeFile { try? "\(address):\(bound)\n".write(to: edgeFile, atomically: true, encoding: .utf8) }
                return
            }
            task.cancel()
        }
    }

    /// Picks the backend service for a request: the matching Ingress (or its canary), or an HTTPRoute rule.
    func backend(host: String, path: String, headers: HTTPFields) async -> (namespace: String, service: String, port: JSON)? {
        let catalog = await store.catalog
        let hostOnly = String(host.split(separator: ":").first ?? "")
        var candidates: [(ingress: JSON, prefix: String, service: String, port: JSON)] = []
        if let ingressType = catalog.find(group: "networking.k8s.io", resource: "ingresses") {
            for ingress in await store.list(ingressType, namespace: nil).items {
                for rule in ingress[path: ["spec", "rules"]]?.array ?? [] {
                    if let ruleHost = rule["host"]?.string, ruleHost != hostOnly { continue }
                    for entry in rule[path: ["http", "paths"]]?.array ?? [] {
                        let prefix = entry["path"]?.string ?? "/"
                        let exact = entry["pathType"]?.string == "Exact"
                        guard exact ? path == prefix : Self.hasPathPrefix(path, prefix) else { continue }
                        guard let service = entry[path: ["backend", "service", "name"]]?.string else { continue }
                        let port = entry[path: ["backend", "service", "port"]] ?? [:]
                        candidates.append((ingress, prefix, service, port))
                    }
                }
            }
        }
        if !candidates.isEmpty {
            let longest = candidates.map(\.prefix.count).max() ?? 0
            let matching = candidates.filter { $0.prefix.count == longest }
            let isCanary = { (ingress: JSON) in
                ingress[path: ["metadata", "annotations", "nginx.ingress.kubernetes.io/canary"]]?.string == "true"
            }
            guard let primary = matching.first(where: { !isCanary($0.ingress) }) ?? matching.first else { return nil }
            var chosen = primary
            if let canary = matching.first(where: { isCanary($0.ingress) }), isCanary(canary.ingress) != isCanary(primary.ingress) {
                if Self.routesToCanary(canary.ingress, headers: headers) { chosen = canary }
            }
            let namespace = ControllerManager.namespace(chosen.ingress) ?? "default"
            return (namespace, chosen.service, Self.servicePort(chosen.port))
        }
        if let routeType = catalog.types.first(where: { $0.group == "gateway.networking.k8s.io" && $0.kind == "HTTPRoute" }) {
            for route in await store.list(routeType, namespace: nil).items {
                let hostnames = route[path: ["spec", "hostnames"]]?.array?.compactMap(\.string) ?? []
                if !hostnames.isEmpty, !hostnames.contains(hostOnly) { continue }
                for rule in route[path: ["spec", "rules"]]?.array ?? [] {
                    let matches = rule["matches"]?.array ?? [["path": ["type": "PathPrefix", "value": "/"]]]
                    let hit = matches.contains { match in
                        let value = match[path: ["path", "value"]]?.string ?? "/"
                        return match[path: ["path", "type"]]?.string == "Exact" ? path == value : Self.hasPathPrefix(path, value)
                    }
                    guard hit else { continue }
                    let refs = rule["backendRefs"]?.array ?? []
                    let total = refs.reduce(0) { $0 + ($1["weight"]?.int ?? 1) }
                    guard total > 0 else { continue }
                    var draw = Int.random(in: 0..<total)
                    for ref in refs {
                        let weight = ref["weight"]?.int ?? 1
                        if draw < weight {
                            return (
                                ref["namespace"]?.string ?? ControllerManager.namespace(route) ?? "default",
                                ref["name"]?.string ?? "", ["port": ref["port"] ?? 80]
                            )
                        }
                        draw -= weight
                    }
                }
            }
        }
        return nil
    }

    static func hasPathPrefix(_ path: String, _ prefix: String) -> Bool {
        if prefix == "/" || prefix.isEmpty { return true }
        let trimmed = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        return path == trimmed || path.hasPrefix(trimmed + "/")
    }

    static func servicePort(_ port: JSON) -> JSON {
        if let number = port["number"] { return ["port": number] }
        if let name = port["name"] { return ["name": name] }
        return ["port": 80]
    }

    /// ingress-nginx's canary rules: by header (`always`/`never`, or a value), then by weight.
    static func routesToCanary(_ canary: JSON, headers: HTTPFields) -> Bool {
        let annotations = canary[path: ["metadata", "annotations"]]?.stringMap ?? [:]
        if let header = annotations["nginx.ingress.kubernetes.io/canary-by-header"], let name = HTTPField.Name(header),
            let value = headers[name]
        {
            if let wanted = annotations["nginx.ingress.kubernetes.io/canary-by-header-value"] {
                if value == wanted { return true }
            } else if value == "always" {
                return true
            } else if value == "never" {
                return false
            }
        }
        if let cookie = annotations["nginx.ingress.kubernetes.io/canary-by-cookie"], let cookies = headers[.cookie] {
            for part in cookies.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
                if pair.count == 2, pair[0] == cookie {
                    if pair[1] == "always" { return true }
                    if pair[1] == "never" { return false }
                }
            }
        }
        let weight = Int(annotations["nginx.ingress.kubernetes.io/canary-weight"] ?? "") ?? 0
        let total = Int(annotations["nginx.ingress.kubernetes.io/canary-weight-total"] ?? "") ?? 100
        guard weight > 0, total > 0 else { return false }
        return Int.random(in: 0..<total) < weight
    }

    private func route(_ request: Request) async throws -> Response {
        let host = request.head.authority ?? ""
        guard let target = await backend(host: host, path: request.uri.path, headers: request.headers) else {
            return Self.plain(404, "404 page not found (kube-sim: no Ingress or HTTPRoute matches \(host)\(request.uri.path))\n")
        }
        let choices = await endpoints(namespace: target.namespace, service: target.service, port: await resolvePort(target))
        guard let (ip, port) = pick(choices, key: "edge/\(target.namespace)/\(target.service)") else {
            return Self.plain(
                503, "503 Service Temporarily Unavailable (kube-sim: \(target.namespace)/\(target.service) has no ready endpoint)\n")
        }
        var outgoing = HTTPClientRequest(url: "http://\(ip):\(port)\(request.uri.path)\(request.uri.query.map { "?\($0)" } ?? "")")
        outgoing.method = .init(rawValue: request.method.rawValue)
        for field in request.headers where field.name != .connection {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        outgoing.headers.add(name: "Host", value: host)
        outgoing.headers.add(name: "X-Forwarded-For", value: "127.0.0.1")
        var request = request
        let body = try await request.collectBody(upTo: 64 << 20)
        outgoing.body = .bytes(body)
        let answer = try await client.execute(outgoing, timeout: .seconds(60))
        var fields = HTTPFields()
        for header in answer.headers where header.name.lowercased() != "transfer-encoding" && header.name.lowercased() != "connection" {
            if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
        }
        let bytes = try await answer.body.collect(upTo: 64 << 20)
        fields[.contentLength] = nil
        return Response(status: .init(code: Int(answer.status.code)), headers: fields, body: ResponseBody(byteBuffer: bytes))
    }

    /// A service port given by name or number, as the Service declares it.
    private func resolvePort(_ target: (namespace: String, service: String, port: JSON)) async -> JSON {
        guard let type = await store.catalog.find(group: "", resource: "services"),
            let service = await store.find(type, namespace: target.namespace, name: target.service)
        else { return target.port }
        let ports = service[path: ["spec", "ports"]]?.array ?? []
        let match = ports.first { port in
            (target.port["port"] != nil && port["port"] == target.port["port"])
                || (target.port["name"] != nil && port["name"] == target.port["name"])
        }
        return match ?? ports.first ?? target.port
    }

    static func plain(_ status: Int, _ text: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    public func stopAll() async {
        for (_, channel) in listeners { try? await channel.close() }
        listeners = [:]
        edge?.task.cancel()
        edge = nil
        try? await client.shutdown()
    }
}
