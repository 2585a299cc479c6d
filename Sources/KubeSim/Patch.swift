import Foundation

/// Lists whose items are merged by a key (strategic merge patch, server-side apply, managedFields),
/// as the Kubernetes types declare them (`patchMergeKey`, `listMapKeys`).
enum ListKeys {
    /// The key fields of the list `field`, found under `parent` (the enclosing field's name), or nil
    /// for an atomic list.
    static func keys(field: String, parent: String?) -> [String]? {
        switch field {
        case "containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets":
            return ["name"]
        case "hostAliases": return ["ip"]
        case "volumeMounts": return ["mountPath"]
        case "conditions": return ["type"]
        case "ownerReferences": return ["uid"]
        case "ports":
            return parent == "containers" ? ["containerPort", "protocol"] : ["port", "protocol"]
        default: return nil
        }
    }

    /// Lists of strings merged as sets.
    static func isSet(_ field: String) -> Bool { field == "finalizers" }

    /// The strategic-merge-patch key (a single field).
    static func mergeKey(field: String, parent: String?) -> String? {
        switch field {
        case "ports": parent == "containers" ? "containerPort" : "port"
        default: keys(field: field, parent: parent)?.first
        }
    }
}

enum Patch {
    // MARK: JSON merge patch (RFC 7386)

    static func merge(_ original: JSON?, _ patch: JSON) -> JSON {
        guard case .object(let fields) = patch else { return patch }
        var result = original?.object ?? [:]
        for (key, value) in fields {
            if value == .null {
                result[key] = nil
            } else {
                result[key] = merge(result[key], value)
            }
        }
        return .object(result)
    }

    // MARK: Strategic merge patch

    /// Applies a strategic merge patch: keyed lists merge item by item, `$patch`, `$setElementOrder`,
    /// `$retainKeys` and `$deleteFromPrimitiveList` directives are honoured.
    static func strategic(_ original: JSON?, _ patch: JSON, field: String? = nil) -> JSON? {
        guard case .object(var fields) = patch else { return patch }
        if let directive = fields["$patch"]?.string {
            fields["$patch"] = nil
            switch directive {
            case "replace": return .object(fields)
            case "delete": return nil
            default: break
            }
        }
        var result = original?.object ?? [:]
        if let retain = fields["$retainKeys"]?.array?.compactMap(\.string) {
            result = result.filter { retain.contains($0.key) || fields[$0.key] != nil }
            fields["$retainKeys"] = nil
        }
        var orders: [String: [JSON]] = [:]
        for (key, value) in fields {
            if key.hasPrefix("$setElementOrder/") {
                orders[String(key.dropFirst("$setElementOrder/".count))] = value.array ?? []
                continue
            }
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let name = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                let removed = value.array ?? []
                if let list = result[name]?.array { result[name] = .array(list.filter { !removed.contains($0) }) }
                continue
            }
            if value == .null {
                result[key] = nil
                continue
            }
            switch value {
            case .object:
                result[key] = strategic(result[key], value, field: key)
            case .array(let items):
                if let mergeKey = ListKeys.mergeKey(field: key, parent: field) {
                    result[key] = .array(mergeList(result[key]?.array ?? [], items, key: mergeKey, field: key))
                } else if ListKeys.isSet(key) {
                    var merged = result[key]?.array ?? []
                    for item in items where !merged.contains(item) { merged.append(item) }
                    result[key] = .array(merged)
                } else {
                    result[key] = value
                }
            default:
                result[key] = value
            }
        }
        for (name, order) in orders {
            guard let list = result[name]?.array, let mergeKey = ListKeys.mergeKey(field: name, parent: field) else {
                continue
            }
            let ordered = order.compactMap { entry in list.first { $0[mergeKey] == entry[mergeKey] } }
            let rest = list.filter { item in !order.contains { $0[mergeKey] == item[mergeKey] } }
            result[name] = .array(ordered + rest)
        }
        return .object(result)
    }

    private static func mergeList(_ original: [JSON], _ patch: [JSON], key: String, field: String) -> [JSON] {
        var result = original
        for item in patch {
            let directive = item["$patch"]?.string
            guard let keyValue = item[key] else {
                if directive == "replace" { return patch.filter { $0["$patch"] == nil } }
                result.append(item)
                continue
            }
            if let index = result.firstIndex(where: { $0[key] == keyValue }) {
                if directive == "delete" {
                    result.remove(at: index)
                } else if let merged = strategic(result[index], item, field: field) {
                    result[index] = merged
                }
            } else if directive != "delete" {
                var added = item
                added["$patch"] = nil
                result.append(strategic(nil, added, field: field) ?? added)
            }
        }
        return result
    }

    // MARK: JSON patch (RFC 6902)

    static func jsonPatch(_ document: JSON, _ operations: JSON) throws(APIError) -> JSON {
        guard let list = operations.array else {
            throw APIError.badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        }
        var document = document
        for operation in list {
            guard let op = operation["op"]?.string, let path = operation["path"]?.string else {
                throw APIError(code: 422, reason: "Invalid", message: "the server rejected our request due to an error in our request")
            }
            let pointer = try pointerTokens(path)
            switch op {
            case "add":
                document = try add(document, pointer, operation["value"] ?? .null)
            case "remove":
                document = try remove(document, pointer)
            case "replace":
                _ = try value(document, pointer)
                document = try set(document, pointer, operation["value"] ?? .null)
            case "move":
                let from = try pointerTokens(operation["from"]?.string ?? "")
                let moved = try value(document, from)
                document = try add(try remove(document, from), pointer, moved)
            case "copy":
                let from = try pointerTokens(operation["from"]?.string ?? "")
                document = try add(document, pointer, try value(document, from))
            case "test":
                guard try value(document, pointer) == operation["value"] ?? .null else {
                    throw APIError(
                        code: 422, reason: "Invalid", message: "the server rejected our request due to an error in our request")
                }
            default:
                throw APIError(code: 422, reason: "Invalid", message: "Unexpected kind: \(op)")
            }
        }
        return document
    }

    static func pointerTokens(_ path: String) throws(APIError) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw APIError.badRequest("invalid JSON pointer: \(path)") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func missing(_ tokens: [String]) -> APIError {
        APIError(
            code: 422, reason: "Invalid",
            message: "the server rejected our request due to an error in our request",
            details: ["causes": [["message": .string("jsonpatch: path /\(tokens.joined(separator: "/")) does not exist")]]])
    }

    static func value(_ document: JSON, _ tokens: [String]) throws(APIError) -> JSON {
        var node = document
        for token in tokens {
            switch node {
            case .object(let fields):
                guard let next = fields[token] else { throw missing(tokens) }
                node = next
            case .array(let items):
                guard let index = Int(token), items.indices.contains(index) else { throw missing(tokens) }
                node = items[index]
            default:
                throw missing(tokens)
            }
        }
        return node
    }

    private static func set(_ document: JSON, _ tokens: [String], _ newValue: JSON) throws(APIError) -> JSON {
        guard let first = tokens.first else { return newValue }
        let rest = Array(tokens.dropFirst())
        switch document {
        case .object(var fields):
            if rest.isEmpty {
                fields[first] = newValue
            } else {
                guard let child = fields[first] else { throw missing(tokens) }
                fields[first] = try set(child, rest, newValue)
            }
            return .object(fields)
        case .array(var items):
            guard let index = Int(first), items.indices.contains(index) else { throw missing(tokens) }
            items[index] = rest.isEmpty ? newValue : try set(items[index], rest, newValue)
            return .array(items)
        default:
            throw missing(tokens)
        }
    }

    private static func add(_ document: JSON, _ tokens: [String], _ newValue: JSON) throws(APIError) -> JSON {
        guard let first = tokens.first else { return newValue }
        let rest = Array(tokens.dropFirst())
        switch document {
        case .object(var fields):
            if rest.isEmpty {
                fields[first] = newValue
            } else {
                guard let child = fields[first] else { throw missing(tokens) }
                fields[first] = try add(child, rest, newValue)
            }
            return .object(fields)
        case .array(var items):
            if rest.isEmpty {
                if first == "-" {
                    items.append(newValue)
                } else {
                    guard let index = Int(first), index >= 0, index <= items.count else { throw missing(tokens) }
                    items.insert(newValue, at: index)
                }
            } else {
                guard let index = Int(first), items.indices.contains(index) else { throw missing(tokens) }
                items[index] = try add(items[index], rest, newValue)
            }
            return .array(items)
        default:
            throw missing(tokens)
        }
    }

    private static func remove(_ document: JSON, _ tokens: [String]) throws(APIError) -> JSON {
        guard let first = tokens.first else { return .null }
        let rest = Array(tokens.dropFirst())
        switch document {
        case .object(var fields):
            guard let child = fields[first] else { throw missing(tokens) }
            fields[first] = rest.isEmpty ? nil : try remove(child, rest)
            return .object(fields)
        case .array(var items):
            guard let index = Int(first), items.indices.contains(index) else { throw missing(tokens) }
            if rest.isEmpty { items.remove(at: index) } else { items[index] = try remove(items[index], rest) }
            return .array(items)
        default:
            throw missing(tokens)
        }
    }
}
