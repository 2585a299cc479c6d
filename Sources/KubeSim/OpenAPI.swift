import Crypto
import Foundation

/// The OpenAPI v3 documents kubectl needs for `apply` (validation support and strategic-merge
/// metadata): those a 1.28 apiserver served, bundled, and small generated ones for the other groups.
actor OpenAPIDocuments {
    private var cache: [String: (body: [UInt8], hash: String)] = [:]
    private var parsed: [String: JSON] = [:]
    /// When the index last changed (a new custom resource group appears).
    private(set) var lastModified = Date()
    private var lastGroups: [String] = []

    static let bundled: [String: String] = [
        "api/v1": "api_v1", "apis/apps/v1": "apis_apps_v1", "apis/networking.k8s.io/v1": "apis_networking.k8s.io_v1",
        "apis/apiextensions.k8s.io/v1": "apis_apiextensions.k8s.io_v1",
        "apis/gateway.networking.k8s.io/v1": "apis_gateway.networking.k8s.io_v1",
    ]

    static func path(of type: ResourceType) -> String {
        type.group.isEmpty ? "api/\(type.version)" : "apis/\(type.group)/\(type.version)"
    }

    /// The group-version paths served, in index order.
    static func paths(_ catalog: ResourceCatalog) -> [String] {
        var result: [String] = []
        for type in catalog.types where !result.contains(path(of: type)) { result.append(path(of: type)) }
        return result.sorted()
    }

    func index(_ catalog: ResourceCatalog) -> (body: [UInt8], lastModified: Date) {
        let paths = Self.paths(catalog)
        if paths != lastGroups {
            lastGroups = paths
            lastModified = Date()
        }
        var entries: [String: JSON] = [:]
        for path in paths {
            let hash = document(path, catalog)?.hash ?? ""
            entries[path] = ["serverRelativeURL": .string("/openapi/v3/\(path)?hash=\(hash)")]
        }
        return (Array(JSON.object(["paths": .object(entries)]).serialized().utf8), lastModified)
    }

    func document(_ path: String, _ catalog: ResourceCatalog) -> (body: [UInt8], hash: String)? {
        let members = catalog.types.filter { Self.path(of: $0) == path }
        guard !members.isEmpty else { return nil }
        let cacheKey = path + "|" + members.map(\.resource).joined(separator: ",")
        if let cached = cache[cacheKey] { return cached }
        var body: [UInt8]
        if let file = Self.bundled[path],
            let url = Bundle.module.url(forResource: file, withExtension: "json", subdirectory: "OpenAPI"),
            let data = try? Data(contentsOf: url),
            path != "apis/gateway.networking.k8s.io/v1" || members.contains(where: { $0.kind == "HTTPRoute" })
        {
            body = [UInt8](data)
        } else {
            body = Array(Self.generated(members).serialized().utf8)
        }
        let hash = SHA512.hash(data: body).map { String(format: "%02X", $0) }.joined()
        cache[cacheKey] = (body, hash)
        return (body, hash)
    }

    /// The parsed document of a group-version (for strict field validation).
    func parsedDocument(_ path: String, _ catalog: ResourceCatalog) -> JSON? {
        if let done = parsed[path] { return done }
        guard let body = document(path, catalog)?.body, let json = try? JSON.parse(body) else { return nil }
        parsed[path] = json
        return json
    }

    /// A minimal document: each kind's PATCH carries its group-version-kind and `fieldValidation`
    /// (what kubectl checks before it validates server-side), and its schema keeps unknown fields.
    static func generated(_ types: [ResourceType]) -> JSON {
        var paths: [String: JSON] = [:]
        var schemas: [String: JSON] = [:]
        for type in types {
            let gvk: JSON = ["group": .string(type.group), "version": .string(type.version), "kind": .string(type.kind)]
            let base = type.group.isEmpty ? "/api/\(type.version)" : "/apis/\(type.group)/\(type.version)"
            let item =
                type.namespaced
                ? "\(base)/namespaces/{namespace}/\(type.resource)/{name}" : "\(base)/\(type.resource)/{name}"
            let parameters: JSON = [
                ["name": "dryRun", "in": "query", "schema": ["type": "string"]],
                ["name": "fieldManager", "in": "query", "schema": ["type": "string"]],
                ["name": "fieldValidation", "in": "query", "schema": ["type": "string"]],
                ["name": "force", "in": "query", "schema": ["type": "boolean"]],
            ]
            paths[item] = [
                "patch": [
                    "operationId": .string("patch\(type.kind)"), "parameters": parameters,
                    "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                    "responses": ["200": ["description": "OK"]],
                ],
                "get": [
                    "operationId": .string("read\(type.kind)"), "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk, "responses": ["200": ["description": "OK"]],
                ],
            ]
            let schemaName = "\(type.group.isEmpty ? "core" : type.group).\(type.version).\(type.kind)"
            schemas[schemaName] = [
                "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk],
            ]
        }
        return [
            "openapi": "3.0.0", "info": ["title": "Kubernetes", "version": "kube-sim"], "paths": .object(paths),
            "components": ["schemas": .object(schemas)],
        ]
    }
}

/// Strict field validation against an OpenAPI v3 schema: the unknown fields of an object, named as
/// the apiserver names them (`spec.replicass`, `spec.template.spec.containers[0].portz`).
enum SchemaCheck {
    static func unknownFields(_ object: JSON, kind: String, group: String, version: String, document: JSON) -> [String] {
        guard let schemas = document[path: ["components", "schemas"]]?.object else { return [] }
        let match = schemas.first { _, schema in
            (schema["x-kubernetes-group-version-kind"]?.array ?? []).contains {
                $0["kind"]?.string == kind && $0["group"]?.string == group && $0["version"]?.string == version
            }
        }
        guard let (_, schema) = match else { return [] }
        var unknown: [String] = []
        walk(object, schema: schema, schemas: schemas, path: "", into: &unknown, depth: 0)
        return unknown.sorted()
    }

    private static func resolve(_ schema: JSON, _ schemas: [String: JSON]) -> JSON {
        var schema = schema
        for _ in 0..<8 {
            if let ref = schema["$ref"]?.string {
                schema = schemas[String(ref.split(separator: "/").last ?? "")] ?? [:]
            } else if let all = schema["allOf"]?.array, all.count == 1 {
                schema = all[0]
            } else {
                break
            }
        }
        return schema
    }

    private static func walk(
        _ value: JSON, schema: JSON, schemas: [String: JSON], path: String, into unknown: inout [String], depth: Int
    ) {
        guard depth < 40 else { return }
        let schema = resolve(schema, schemas)
        if schema["x-kubernetes-preserve-unknown-fields"]?.bool == true { return }
        switch value {
        case .object(let fields):
            if let properties = schema["properties"]?.object {
                for (key, child) in fields {
                    let childPath = path.isEmpty ? key : "\(path).\(key)"
                    if let childSchema = properties[key] {
                        walk(child, schema: childSchema, schemas: schemas, path: childPath, into: &unknown, depth: depth + 1)
                    } else if key != "apiVersion" && key != "kind" || depth > 0 {
                        unknown.append(childPath)
                    }
                }
            } else if let additional = schema["additionalProperties"], case .object = additional {
                for (key, child) in fields {
                    walk(
                        child, schema: additional, schemas: schemas, path: path.isEmpty ? key : "\(path).\(key)",
                        into: &unknown, depth: depth + 1)
                }
            }
        case .array(let items):
            guard let itemSchema = schema["items"] else { return }
            for (index, item) in items.enumerated() {
                walk(item, schema: itemSchema, schemas: schemas, path: "\(path)[\(index)]", into: &unknown, depth: depth + 1)
            }
        default:
            return
        }
    }
}
