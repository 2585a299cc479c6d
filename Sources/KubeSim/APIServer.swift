public import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore

/// The Kubernetes version kube-sim reports (`/version`); the kubectl dispatcher picks its client by it.
public struct KubeVersion: Sendable {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init?(_ text: String) {
        let parts = text.trimmingPrefix("v").split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2, parts[0] == 1, (27...33).contains(parts[1]) else { return nil }
        major = parts[0]
        minor = parts[1]
        patch = parts.count > 2 ? parts[2] : Self.defaultPatch[parts[1]] ?? 0
    }

    /// The patch releases of the kubectl clients installed beside the dispatcher.
    static let defaultPatch = [27: 16, 28: 7, 29: 15, 30: 14, 31: 10, 32: 5, 33: 1]

    public var gitVersion: String { "v\(major).\(minor).\(patch)" }

    var document: JSON {
        [
            "major": .string(String(major)), "minor": .string(String(minor)), "gitVersion": .string(gitVersion),
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-12-02T00:00:00Z", "goVersion": "kube-sim", "compiler": "gc", "platform": "linux/amd64",
        ]
    }
}

/// One request as kube-sim received it (the replay test compares these with the transcripts).
public struct ReceivedRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
    public var accept: String
    public var contentType: String
    public var userAgent: String
    public var status: Int

    public var json: JSON {
        [
            "method": .string(method), "path": .string(path), "query": .string(query), "accept": .string(accept),
            "contentType": .string(contentType), "userAgent": .string(userAgent), "status": .int(status),
        ]
    }
}

/// The HTTP face of the cluster: discovery, OpenAPI, and every verb on every served kind.
public final class APIServer: Sendable {
    /// Ways to behave as a differently configured apiserver did in the transcripts' experiments.
    public enum Experiment: String, Sendable, CaseIterable {
        /// Protobuf request bodies are refused with 415 (experiment 17).
        case jsonOnly = "json-only"
        /// No OpenAPI documents (experiment 18).
        case noOpenAPI = "no-openapi"
        /// Only legacy discovery (APIVersions, APIGroupList, per group-version lists; experiment 19).
        case legacyDiscovery = "legacy-discovery"
    }

    public let store: Store
    let experiment: Experiment?
    let openAPI = OpenAPIDocuments()
    let authorizer: Authorizer
    public let version: KubeVersion
    let network: Network
    let requestLog: FileHandle?
    let logLock = NSLock()
    let flowSchema = UUID().uuidString.lowercased()
    let priorityLevel = UUID().uuidString.lowercased()

    public init(
        store: Store, version: KubeVersion, tokenFile: URL?, network: Network, requestLog: URL?, experiment: Experiment? = nil
    ) throws {
        self.store = store
        self.experiment = experiment
        self.version = version
        self.network = network
        authorizer = Authorizer(tokenFile: tokenFile)
        if let requestLog {
            _ = FileManager.default.createFile(atPath: requestLog.path, contents: nil)
            self.requestLog = try FileHandle(forWritingTo: requestLog)
            self.requestLog?.seekToEndOfFile()
        } else {
            self.requestLog = nil
        }
    }

    // MARK: Entry

    @Sendable public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = (try? await request.collectBody(upTo: 64 << 20)).map { Array($0.readableBytesView) } ?? []
        let incoming = Incoming(request: request, body: body)
        let response: Response
        do {
            response = try await handle(incoming)
        } catch let error as APIError {
            response = reply(error.code, error.status)
        } catch {
            response = reply(500, APIError(code: 500, reason: "InternalError", message: "\(error)").status)
        }
        log(incoming, status: Int(response.status.code))
        return response
    }

    func log(_ incoming: Incoming, status: Int) {
        guard let requestLog else { return }
        let entry = ReceivedRequest(
            method: incoming.method, path: incoming.path, query: incoming.rawQuery, accept: incoming.header("Accept") ?? "",
            contentType: incoming.header("Content-Type") ?? "", userAgent: incoming.header("User-Agent") ?? "", status: status)
        let line = Data((entry.json.serialized() + "\n").utf8)
        logLock.withLock { requestLog.write(line) }
    }

    struct Incoming {
        var method: String
        var path: String
        var rawQuery: String
        var query: [String: String]
        var headers: HTTPFields
        var body: [UInt8]

        init(request: Request, body: [UInt8]) {
            method = request.method.rawValue
            path = request.uri.path
            rawQuery = request.uri.query ?? ""
            var query: [String: String] = [:]
            for pair in rawQuery.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[0])
                let value =
                    parts.count > 1
                    ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
                query[key] = value
            }
            self.query = query
            headers = request.headers
            self.body = body
        }

        func header(_ name: String) -> String? {
            HTTPField.Name(name).flatMap { headers[$0] }
        }

        var contentType: String {
            (header("Content-Type") ?? "application/json").split(separator: ";").first.map { String($0).trimmingSpaces }
                ?? "application/json"
        }

        var wantsTable: Bool { (header("Accept") ?? "").contains("as=Table") }
    }

    // MARK: Responses

    func headers(_ contentType: String, extra: [(String, String)] = []) -> HTTPFields {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("Audit-Id")!, value: UUID().uuidString.lowercased()))
        fields.append(HTTPField(name: .cacheControl, value: "no-cache, private"))
        fields.append(HTTPField(name: .contentType, value: contentType))
        fields.append(HTTPField(name: HTTPField.Name("X-Kubernetes-Pf-Flowschema-Uid")!, value: flowSchema))
        fields.append(HTTPField(name: HTTPField.Name("X-Kubernetes-Pf-Prioritylevel-Uid")!, value: priorityLevel))
        fields.append(HTTPField(name: .date, value: Date().httpDate))
        for (name, value) in extra {
            if let name = HTTPField.Name(name) {
                fields[name] = value
            }
        }
        return fields
    }

    func reply(_ status: Int, _ body: JSON, contentType: String = "application/json", extra: [(String, String)] = [])
        -> Response
    {
        reply(status, bytes: Array((body.serialized() + "\n").utf8), contentType: contentType, extra: extra)
    }

    func reply(_ status: Int, bytes: [UInt8], contentType: String, extra: [(String, String)] = []) -> Response {
        Response(
            status: HTTPResponse.Status(code: status), headers: headers(contentType, extra: extra),
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    // MARK: Routing

    func handle(_ incoming: Incoming) async throws -> Response {
        let segments = incoming.path.split(separator: "/").map(String.init)
        guard let user = authorizer.user(forAuthorization: incoming.header("Authorization")) else {
            return reply(401, APIError(code: 401, reason: "Unauthorized", message: "Unauthorized").status)
        }
        switch segments.first {
        case "version" where segments.count == 1:
            return reply(200, version.document)
        case "healthz", "livez", "readyz":
            return reply(200, bytes: Array("ok".utf8), contentType: "text/plain; charset=utf-8")
        case "openapi":
            return try await serveOpenAPI(segments, incoming)
        case "api" where segments.count == 1:
            return await discovery(core: true, incoming)
        case "apis" where segments.count == 1:
            return await discovery(core: false, incoming)
        case "api" where segments.count >= 2:
            return try await resourceRequest(group: "", version: segments[1], rest: Array(segments.dropFirst(2)), incoming, user)
        case "apis" where segments.count == 2:
            let catalog = await store.catalog
            let versions = catalog.types.filter { $0.group == segments[1] }.map(\.version)
            guard let preferred = versions.first else { throw APIError.notFoundPath() }
            let entries: [JSON] = versions.map { ["groupVersion": .string("\(segments[1])/\($0)"), "version": .string($0)] }
            return reply(
                200,
                [
                    "kind": "APIGroup", "apiVersion": "v1", "name": .string(segments[1]), "versions": .array(entries),
                    "preferredVersion": ["groupVersion": .string("\(segments[1])/\(preferred)"), "version": .string(preferred)],
                ])
        case "apis" where segments.count >= 3:
            return try await resourceRequest(
                group: segments[1], version: segments[2], rest: Array(segments.dropFirst(3)), incoming, user)
        default:
            return reply(404, bytes: Array("404 page not found\n".utf8), contentType: "text/plain; charset=utf-8")
        }
    }

    func discovery(core: Bool, _ incoming: Incoming) async -> Response {
        let catalog = await store.catalog
        let accept = incoming.header("Accept") ?? ""
        let body: JSON
        let contentType: String
        if accept.contains("as=APIGroupDiscoveryList"), experiment != .legacyDiscovery {
            body = catalog.aggregatedDiscovery(core: core)
            contentType = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        } else {
            body = core ? catalog.legacyCoreVersions() : catalog.legacyGroups()
            contentType = "application/json"
        }
        let bytes = Array((body.serialized() + "\n").utf8)
        let etag = "\"" + String(format: "%016llX", UInt64(bitPattern: Int64(bytes.hashValue))) + "\""
        if incoming.header("If-None-Match") == etag {
            return Response(status: .notModified, headers: headers(contentType, extra: [("Etag", etag)]))
        }
        var response = reply(200, bytes: bytes, contentType: contentType, extra: [("Etag", etag), ("Vary", "Accept")])
        response.headers[.cacheControl] = "public"
        return response
    }

    func serveOpenAPI(_ segments: [String], _ incoming: Incoming) async throws -> Response {
        let catalog = await store.catalog
        if segments.count == 2, segments[1] == "v2" {
            // kubectl 1.28 fetches the v2 document before apply; a minimal one (no definitions: kubectl
            // then relies on OpenAPI v3 and its compiled-in patch metadata) is enough.
            guard experiment != .noOpenAPI else {
                return reply(404, bytes: Array("404 page not found\n".utf8), contentType: "text/plain; charset=utf-8")
            }
            return reply(200, bytes: Self.openAPIv2, contentType: "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        }
        guard segments.count >= 2, segments[1] == "v3", experiment != .noOpenAPI else {
            return reply(404, bytes: Array("404 page not found\n".utf8), contentType: "text/plain; charset=utf-8")
        }
        if segments.count == 2 {
            let (body, modified) = await openAPI.index(catalog)
            let lastModified = modified.httpDate
            var response = reply(200, bytes: body, contentType: "text/plain; charset=utf-8", extra: [("Last-Modified", lastModified)])
            if let since = incoming.header("If-Modified-Since"), since == lastModified {
                response = Response(status: .notModified, headers: headers("text/plain; charset=utf-8"))
            }
            return response
        }
        let path = segments.dropFirst(2).joined(separator: "/")
        guard let document = await openAPI.document(path, catalog) else {
            return reply(404, bytes: Array("404 page not found\n".utf8), contentType: "text/plain; charset=utf-8")
        }
        let etag = "\"\(document.hash)\""
        if incoming.header("If-None-Match") == etag {
            return Response(status: .notModified, headers: headers("application/json"))
        }
        var response = reply(
            200, bytes: document.body, contentType: "application/json",
            extra: [
                ("Etag", etag), ("Expires", Date(timeIntervalSinceNow: 31_536_000).httpDate),
                ("Vary", "Accept"),
            ])
        response.headers[.cacheControl] = "public, immutable"
        return response
    }

    /// A gnostic `openapi_v2.Document` with only `swagger: "2.0"` and `info {title, version}`.
    static let openAPIv2: [UInt8] = {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let info = field(1, Array("Kubernetes".utf8)) + field(2, Array("kube-sim".utf8))
        return field(1, Array("2.0".utf8)) + field(2, info)
    }()

    // MARK: Resources

    struct Target {
        var type: ResourceType
        var namespace: String?
        var name: String?
        var subresource: String?
    }

    func resourceRequest(group: String, version: String, rest: [String], _ incoming: Incoming, _ user: User)
        async throws -> Response
    {
        let catalog = await store.catalog
        if rest.isEmpty {
            guard let list = catalog.resourceList(group: group, version: version) else { throw APIError.notFoundPath() }
            return reply(200, list)
        }
        var namespace: String?
        var parts = rest
        if parts.count >= 3, parts[0] == "namespaces", !(parts.count == 3 && ["status", "finalize"].contains(parts[2])) {
            namespace = parts[1]
            parts.removeFirst(2)
        }
        guard let type = catalog.find(group: group, version: version, resource: parts[0]) else {
            throw APIError.notFoundPath()
        }
        let target = Target(
            type: type, namespace: type.namespaced ? namespace : nil, name: parts.count > 1 ? parts[1] : nil,
            subresource: parts.count > 2 ? parts[2] : nil)
        if let subresource = target.subresource, !type.subresources.contains(subresource) { throw APIError.notFoundPath() }
        let verb: String
        switch (incoming.method, target.name) {
        case ("GET", nil): verb = ["true", "1"].contains(incoming.query["watch"] ?? "") ? "watch" : "list"
        case ("GET", _): verb = "get"
        case ("POST", nil): verb = "create"
        case ("PUT", _?): verb = "update"
        case ("PATCH", _?): verb = "patch"
        case ("DELETE", _?): verb = "delete"
        case ("DELETE", nil): verb = "deletecollection"
        default: throw APIError.methodNotAllowed()
        }
        guard type.verbs.contains(verb) else { throw APIError.methodNotAllowed() }
        let allowed = await authorizer.allows(
            user, verb: verb, group: group, resource: type.resource, subresource: target.subresource,
            namespace: target.namespace, name: target.name, store: store)
        guard allowed else {
            var subject = "\(type.qualifiedName)"
            if let name = target.name { subject += " \"\(name)\"" }
            let scope = target.namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
            let resourceText = target.subresource.map { "\(type.resource)/\($0)" } ?? type.resource
            throw APIError(
                code: 403, reason: "Forbidden",
                message:
                    "\(subject) is forbidden: User \"\(user.name)\" cannot \(verb) resource \"\(resourceText)\" in API group \"\(group)\"\(scope)",
                details: APIError.details(type, name: target.name))
        }
        switch verb {
        case "get": return try await get(target, incoming)
        case "list": return try await list(target, incoming)
        case "watch": return try await watch(target, incoming)
        case "create": return try await create(target, incoming, user)
        case "update": return try await update(target, incoming)
        case "patch": return try await patch(target, incoming)
        case "delete": return try await delete(target, incoming)
        default: return try await deleteCollection(target, incoming)
        }
    }

    func decodeBody(_ incoming: Incoming) throws -> JSON {
        if incoming.contentType == "application/vnd.kubernetes.protobuf" {
            guard experiment != .jsonOnly, let object = try? Protobuf.decode(incoming.body) else {
                throw APIError.unsupportedMediaType(
                    incoming.contentType, accepted: ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"])
            }
            return object
        }
        do {
            return try JSON.parse(incoming.body)
        } catch {
            throw APIError.badRequest("couldn't get version/kind; json parse error: \(error)")
        }
    }

    func manager(_ incoming: Incoming) -> String {
        if let manager = incoming.query["fieldManager"], !manager.isEmpty { return manager }
        let agent = incoming.header("User-Agent") ?? "unknown"
        return String(agent.split(separator: "/").first ?? "unknown")
    }

    // MARK: Reading verbs

    func get(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let object = try await store.get(target.type, namespace: target.namespace, name: target.name!)
        if target.subresource == "scale" { return reply(200, Self.scale(of: object)) }
        if incoming.wantsTable {
            return reply(
                200, Tables.table([object], target.type, resourceVersion: object[path: ["metadata", "resourceVersion"]]?.string ?? ""))
        }
        return reply(200, object)
    }

    func selectors(_ incoming: Incoming) throws -> (LabelSelector, FieldSelector?) {
        let labels = try LabelSelector(parsing: incoming.query["labelSelector"] ?? "")
        let fields = try incoming.query["fieldSelector"].flatMap { $0.isEmpty ? nil : try FieldSelector(parsing: $0) }
        return (labels, fields)
    }

    func list(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let (labels, fields) = try selectors(incoming)
        let (items, resourceVersion) = await store.list(
            target.type, namespace: target.namespace, labels: labels, fields: fields)
        if incoming.wantsTable {
            return reply(200, Tables.table(items, target.type, resourceVersion: String(resourceVersion)))
        }
        let body: JSON = [
            "kind": .string(target.type.listKind), "apiVersion": .string(target.type.groupVersion),
            "metadata": ["resourceVersion": .string(String(resourceVersion))], "items": .array(items),
        ]
        return reply(200, body)
    }

    func watch(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let (labels, fields) = try selectors(incoming)
        let since = incoming.query["resourceVersion"].flatMap { Int($0) }
        let timeout = min(Int(incoming.query["timeoutSeconds"] ?? "") ?? 1800, 3600)
        let bookmarks = incoming.query["allowWatchBookmarks"] == "true"
        let store = self.store
        let type = target.type
        let watched: (id: UUID, events: AsyncStream<WatchEvent>)
        do {
            watched = try await store.watch(
                type, namespace: target.namespace, labels: labels, fields: fields, since: since)
        } catch {
            // Too old: the stream opens, carries one ERROR event, and ends.
            let event: JSON = ["type": "ERROR", "object": error.status]
            return reply(200, bytes: Array((event.serialized() + "\n").utf8), contentType: "application/json")
        }
        let id = watched.id
        let timer = Task {
            var elapsed = 0
            while elapsed < timeout {
                try await Task.sleep(for: .seconds(1))
                elapsed += 1
                if bookmarks, elapsed % 60 == 0 { await store.bookmark(id, type: type) }
            }
            await store.stopWatching(id)
        }
        let body = ResponseBody { writer in
            defer { timer.cancel() }
            do {
                for await event in watched.events {
                    let line: JSON = ["type": .string(event.type), "object": event.object]
                    try await writer.write(ByteBuffer(string: line.serialized() + "\n"))
                }
            } catch {
                await store.stopWatching(id)
                throw error
            }
            await store.stopWatching(id)
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers("application/json"), body: body)
    }

    static func scale(of object: JSON) -> JSON {
        let selector = LabelSelector(object: object[path: ["spec", "selector"]])
        _ = selector
        let matchLabels = object[path: ["spec", "selector", "matchLabels"]]?.stringMap ?? [:]
        let selectorText = matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        var metadata: JSON = [:]
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            metadata[key] = object[path: ["metadata", key]]
        }
        var status: JSON = ["selector": .string(selectorText)]
        if let replicas = object[path: ["status", "replicas"]]?.int, replicas > 0 { status["replicas"] = .int(replicas) }
        return [
            "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
            "spec": ["replicas": .int(object[path: ["spec", "replicas"]]?.int ?? 0)], "status": status,
        ]
    }
}

extension Date {
    /// `Sun, 22 Nov 2026 02:01:27 GMT` (RFC 9110's IMF-fixdate).
    var httpDate: String {
        var seconds = time_t(timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
