import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension APIServer {
    // MARK: Writing verbs

    /// Strict, warn or ignore: unknown fields against the group's OpenAPI schema.
    func checkFields(_ object: JSON, _ type: ResourceType, _ incoming: Incoming) async throws -> [String] {
        let mode = incoming.query["fieldValidation"] ?? "Warn"
        guard mode != "Ignore", !type.isCustom || type.group == "gateway.networking.k8s.io" else { return [] }
        let catalog = await store.catalog
        guard let document = await openAPI.parsedDocument(OpenAPIDocuments.path(of: type), catalog) else { return [] }
        let unknown = SchemaCheck.unknownFields(
            object, kind: type.kind, group: type.group, version: type.version, document: document)
        guard !unknown.isEmpty else { return [] }
        let list = unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", ")
        if mode == "Strict" {
            throw APIError.badRequest(
                "\(type.kind) in version \"\(type.version)\" cannot be handled as a \(type.kind): strict decoding error: \(list)")
        }
        return unknown.map { "unknown field \"\($0)\"" }
    }

    func warnings(_ messages: [String]) -> [(String, String)] {
        messages.map { ("Warning", "299 - \"\($0)\"") }
    }

    func create(_ target: Target, _ incoming: Incoming, _ user: User) async throws -> Response {
        var object = try decodeBody(incoming)
        if target.type.isVirtual { return try await review(target.type, object, user) }
        if let kind = object["kind"]?.string, kind != target.type.kind {
            throw APIError.badRequest(
                "the API version in the data (\(object["apiVersion"]?.string ?? "")) does not match the expected API version (\(target.type.groupVersion))"
            )
        }
        if let namespace = object[path: ["metadata", "namespace"]]?.string, !namespace.isEmpty, let requested = target.namespace,
            namespace != requested
        {
            throw APIError.badRequest(
                "the namespace of the provided object does not match the namespace sent on the request")
        }
        let warned = try await checkFields(object, target.type, incoming)
        object[path: ["metadata", "resourceVersion"]] = nil
        Admission.applyDefaults(&object, type: target.type)
        try Admission.validate(object, old: nil, type: target.type)
        if target.type.storeKey == "/services" { object = await network.allocate(service: object) }
        if incoming.query["dryRun"] == "All" { return reply(201, object, extra: warnings(warned)) }
        let created = try await store.create(
            target.type, namespace: target.namespace, object: object, writer: Writer(manager: manager(incoming)))
        return reply(201, created, extra: warnings(warned))
    }

    func update(_ target: Target, _ incoming: Incoming) async throws -> Response {
        var object = try decodeBody(incoming)
        let name = target.name!
        let old = try await store.get(target.type, namespace: target.namespace, name: name)
        if target.subresource == "scale" {
            var updated = old
            updated[path: ["spec", "replicas"]] = object[path: ["spec", "replicas"]]
            let saved = try await store.update(
                target.type, namespace: target.namespace, name: name, object: updated,
                writer: Writer(manager: manager(incoming)))
            return reply(200, Self.scale(of: saved))
        }
        let warned = try await checkFields(object, target.type, incoming)
        Admission.applyDefaults(&object, type: target.type)
        try Admission.validate(object, old: old, type: target.type)
        let saved = try await store.update(
            target.type, namespace: target.namespace, name: name, object: object,
            writer: Writer(manager: manager(incoming), subresource: target.subresource),
            expectedVersion: object[path: ["metadata", "resourceVersion"]]?.string)
        return reply(200, saved, extra: warnings(warned))
    }

    func patch(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let type = target.type
        let name = target.name!
        let patchBody = try decodeBody(incoming)
        let contentType = incoming.contentType
        if contentType == "application/apply-patch+yaml" {
            return try await serverSideApply(target, patchBody, incoming)
        }
        let accepted = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        guard
            ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]
                .contains(contentType)
        else {
            throw APIError.unsupportedMediaType(contentType, accepted: accepted + ["application/strategic-merge-patch+json"])
        }
        if contentType == "application/strategic-merge-patch+json", type.isCustom {
            throw APIError.unsupportedMediaType(contentType, accepted: accepted)
        }
        var lastError: APIError?
        for _ in 0..<8 {
            let live = try await store.get(type, namespace: target.namespace, name: name)
            let base = target.subresource == "scale" ? Self.scale(of: live) : live
            var patched: JSON
            switch contentType {
            case "application/json-patch+json": patched = try Patch.jsonPatch(base, patchBody)
            case "application/merge-patch+json": patched = Patch.merge(base, patchBody)
            default: patched = Patch.strategic(base, patchBody) ?? base
            }
            if target.subresource == "scale" {
                var updated = live
                updated[path: ["spec", "replicas"]] = patched[path: ["spec", "replicas"]]
                patched = updated
            }
            let warned = try await checkFields(patched, type, incoming)
            Admission.applyDefaults(&patched, type: type)
            try Admission.validate(patched, old: live, type: type)
            // A patch that names a resourceVersion makes it a precondition.
            let expected = patched[path: ["metadata", "resourceVersion"]]?.string
            let managedChanged =
                patched[path: ["metadata", "managedFields"]] != live[path: ["metadata", "managedFields"]]
                ? patched[path: ["metadata", "managedFields"]] : nil
            do {
                let saved = try await store.update(
                    type, namespace: target.namespace, name: name, object: patched,
                    writer: Writer(
                        manager: manager(incoming), subresource: target.subresource == "status" ? "status" : nil),
                    expectedVersion: expected ?? live[path: ["metadata", "resourceVersion"]]?.string,
                    managedFieldsOverride: managedChanged)
                return reply(200, target.subresource == "scale" ? Self.scale(of: saved) : saved, extra: warnings(warned))
            } catch {
                let retry =
                    error.reason == "Conflict" && patchBody[path: ["metadata", "resourceVersion"]] == nil
                    && !Self.patchNamesVersion(patchBody)
                guard retry else { throw error }
                lastError = error
                continue
            }
        }
        throw lastError ?? APIError.conflict(type, name)
    }

    static func patchNamesVersion(_ patch: JSON) -> Bool {
        (patch.array ?? []).contains { $0["path"]?.string == "/metadata/resourceVersion" }
    }

    func serverSideApply(_ target: Target, _ applied: JSON, _ incoming: Incoming) async throws -> Response {
        let type = target.type
        let name = target.name!
        guard let manager = incoming.query["fieldManager"], !manager.isEmpty else {
            throw APIError.badRequest("PATCH /apply requires fieldManager to be set")
        }
        let force = incoming.query["force"] == "true"
        let warned = try await checkFields(applied, type, incoming)
        for _ in 0..<8 {
            let live = await store.find(type, namespace: target.namespace, name: name)
            var (object, managed) = try ManagedFields.apply(
                live: live, applied: applied, manager: manager, force: force, apiVersion: type.groupVersion)
            Admission.applyDefaults(&object, type: type)
            try Admission.validate(object, old: live, type: type)
            if live == nil {
                if type.storeKey == "/services" { object = await network.allocate(service: object) }
                object[path: ["metadata", "name"]] = .string(name)
                var created = try await store.create(
                    type, namespace: target.namespace, object: object, writer: Writer(manager: manager, operation: "Apply"))
                created = try await store.update(
                    type, namespace: target.namespace, name: name, object: created,
                    writer: Writer(manager: manager, operation: "Apply"), managedFieldsOverride: managed)
                return reply(201, created, extra: warnings(warned))
            }
            do {
                let saved = try await store.update(
                    type, namespace: target.namespace, name: name, object: object,
                    writer: Writer(manager: manager, operation: "Apply"),
                    expectedVersion: live?[path: ["metadata", "resourceVersion"]]?.string, managedFieldsOverride: managed)
                return reply(200, saved, extra: warnings(warned))
            } catch {
                guard error.reason == "Conflict", error.details?["causes"] == nil else { throw error }
                continue
            }
        }
        throw APIError.conflict(type, name)
    }

    func delete(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let options = (try? JSON.parse(incoming.body)) ?? [:]
        let propagation = options["propagationPolicy"]?.string ?? incoming.query["propagationPolicy"] ?? "Background"
        let name = target.name!
        let type = target.type
        if let uid = options[path: ["preconditions", "uid"]]?.string {
            let live = try await store.get(type, namespace: target.namespace, name: name)
            guard live[path: ["metadata", "uid"]]?.string == uid else {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message:
                        "Operation cannot be fulfilled on \(type.qualifiedName) \"\(name)\": Precondition failed: UID in precondition: \(uid), UID in object meta: \(live[path: ["metadata", "uid"]]?.string ?? "")"
                )
            }
        }
        if type.storeKey == "/pods" {
            let grace = options["gracePeriodSeconds"]?.int ?? incoming.query["gracePeriodSeconds"].flatMap { Int($0) } ?? 30
            let pod = try await store.markTerminating(type, namespace: target.namespace, name: name, gracePeriod: grace)
            return reply(200, pod)
        }
        let deleted = try await store.delete(type, namespace: target.namespace, name: name, propagation: propagation)
        if type.storeKey == "/services" { return reply(200, deleted) }
        if type.storeKey == "/namespaces" {
            var terminating = deleted
            terminating[path: ["status", "phase"]] = "Terminating"
            terminating[path: ["metadata", "deletionTimestamp"]] = .string(Clock.timestamp())
            return reply(200, terminating)
        }
        var details = APIError.details(type, name: name)
        details["uid"] = deleted[path: ["metadata", "uid"]]
        return reply(200, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "details": details])
    }

    func deleteCollection(_ target: Target, _ incoming: Incoming) async throws -> Response {
        let (labels, fields) = try selectors(incoming)
        let (items, _) = await store.list(target.type, namespace: target.namespace, labels: labels, fields: fields)
        var deleted: [JSON] = []
        for item in items {
            let name = item[path: ["metadata", "name"]]?.string ?? ""
            if let gone = try? await store.delete(target.type, namespace: target.namespace, name: name) { deleted.append(gone) }
        }
        return reply(
            200,
            [
                "kind": .string(target.type.listKind), "apiVersion": .string(target.type.groupVersion), "metadata": [:],
                "items": .array(deleted),
            ])
    }

    // MARK: Reviews

    func review(_ type: ResourceType, _ object: JSON, _ user: User) async throws -> Response {
        var answer = object
        answer["apiVersion"] = "authorization.k8s.io/v1"
        answer["kind"] = .string(type.kind)
        if answer["metadata"] == nil { answer["metadata"] = ["creationTimestamp": nil] }
        if type.kind == "SelfSubjectAccessReview" {
            let attributes = object[path: ["spec", "resourceAttributes"]] ?? [:]
            let allowed: Bool
            if let nonResource = object[path: ["spec", "nonResourceAttributes"]] {
                allowed = user.isAdmin || (nonResource["verb"]?.string == "get")
            } else {
                allowed = await authorizer.allows(
                    user, verb: attributes["verb"]?.string ?? "", group: attributes["group"]?.string ?? "",
                    resource: attributes["resource"]?.string ?? "",
                    subresource: attributes["subresource"]?.string.flatMap { $0.isEmpty ? nil : $0 },
                    namespace: attributes["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 },
                    name: attributes["name"]?.string.flatMap { $0.isEmpty ? nil : $0 }, store: store)
            }
            answer["status"] = ["allowed": .bool(allowed)]
        } else {
            let namespace = object[path: ["spec", "namespace"]]?.string
            // What system:basic-user, system:discovery and system:public-info-viewer grant everyone.
            var resourceRules: [JSON] = [
                ["verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]],
                [
                    "verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ],
            ]
            var nonResourceRules: [JSON] = [
                [
                    "verbs": ["get"],
                    "nonResourceURLs": [
                        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                        "/openapi/*", "/readyz", "/version", "/version/",
                    ],
                ],
                ["verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]],
            ]
            if user.isAdmin {
                resourceRules.insert(["verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]], at: 0)
                nonResourceRules.insert(["verbs": ["*"], "nonResourceURLs": ["*"]], at: 0)
            } else {
                for rule in await authorizer.rules(for: user, namespace: namespace, store: store) {
                    var entry: JSON = [
                        "verbs": rule["verbs"] ?? [], "apiGroups": rule["apiGroups"] ?? [""], "resources": rule["resources"] ?? [],
                    ]
                    if let names = rule["resourceNames"] { entry["resourceNames"] = names }
                    resourceRules.append(entry)
                }
            }
            answer["status"] = ["resourceRules": .array(resourceRules), "nonResourceRules": .array(nonResourceRules), "incomplete": false]
        }
        return reply(201, answer)
    }
}
