/// Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply.
///
/// A field path is a list of tokens as FieldsV1 spells them: `f:spec`, `k:{"name":"web"}` for an
/// item of a keyed list, `v:"x"` for a member of a set, `.` for an item or map itself.
enum ManagedFields {
    typealias Path = [String]

    /// Metadata the server owns: never in anyone's field set.
    static let serverMetadata: Set<String> = [
        "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "name", "namespace",
        "generateName", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
    ]

    // MARK: Field sets of an object

    /// Every leaf field of `object` (apiVersion, kind, server metadata and, for the main resource, status left out).
    static func leaves(of object: JSON, includeStatus: Bool) -> Set<Path> {
        var result: Set<Path> = []
        guard case .object(let fields) = object else { return result }
        for (key, value) in fields {
            if key == "apiVersion" || key == "kind" { continue }
            if key == "status" && !includeStatus { continue }
            if key == "metadata", case .object(let meta) = value {
                for (metaKey, metaValue) in meta where !serverMetadata.contains(metaKey) {
                    collect(metaValue, path: ["f:metadata", "f:\(metaKey)"], field: metaKey, parent: "metadata", into: &result)
                }
                continue
            }
            collect(value, path: ["f:\(key)"], field: key, parent: nil, into: &result)
        }
        return result
    }

    private static func collect(_ value: JSON, path: Path, field: String, parent: String?, into result: inout Set<Path>) {
        switch value {
        case .null:
            return
        case .object(let fields) where !fields.isEmpty:
            if ["labels", "annotations", "matchLabels", "selector", "data", "nodeSelector"].contains(field) {
                result.insert(path + ["."])
            }
            for (key, child) in fields {
                collect(child, path: path + ["f:\(key)"], field: key, parent: field, into: &result)
            }
        case .array(let items) where !items.isEmpty:
            if let keys = ListKeys.keys(field: field, parent: parent) {
                for item in items {
                    let token = itemToken(item, keys: keys)
                    result.insert(path + [token, "."])
                    for (key, child) in item.object ?? [:] {
                        collect(child, path: path + [token, "f:\(key)"], field: key, parent: field, into: &result)
                    }
                }
            } else if ListKeys.isSet(field) {
                for item in items { result.insert(path + ["v:" + item.serialized()]) }
            } else {
                result.insert(path)
            }
        default:
            result.insert(path)
        }
    }

    static func itemToken(_ item: JSON, keys: [String]) -> String {
        var key: [String: JSON] = [:]
        for name in keys {
            if let value = item[name] {
                key[name] = value
            } else if name == "protocol" {
                // Keys are computed on defaulted objects: a port without a protocol is TCP.
                key[name] = "TCP"
            }
        }
        return "k:" + JSON.object(key).serialized()
    }

    /// Whether a list item has a key (a missing protocol counts as TCP, its default).
    static func matches(_ item: JSON, _ key: JSON) -> Bool {
        (key.object ?? [:]).allSatisfy { name, value in
            item[name] == value || (name == "protocol" && item[name] == nil && value == "TCP")
        }
    }

    /// The value a path names in `object`, or nil.
    static func value(in object: JSON, at path: Path) -> JSON? {
        var node: JSON? = object
        for token in path {
            guard let current = node else { return nil }
            if token == "." { continue }
            if token.hasPrefix("f:") {
                node = current[String(token.dropFirst(2))]
            } else if token.hasPrefix("k:") {
                guard let key = try? JSON.parse(String(token.dropFirst(2))), let items = current.array else { return nil }
                node = items.first { matches($0, key) }
            } else if token.hasPrefix("v:") {
                guard let member = try? JSON.parse(String(token.dropFirst(2))), let items = current.array else { return nil }
                node = items.contains(member) ? member : nil
            } else {
                return nil
            }
        }
        return node
    }

    /// Removes the field a path names (a keyed item when the path ends in its `.`).
    static func removing(_ path: Path, from object: JSON) -> JSON {
        var path = path
        if path.last == "." { path.removeLast() }
        guard let last = path.last else { return object }
        let parentPath = Array(path.dropLast())
        return transform(object, at: parentPath) { parent in
            if last.hasPrefix("f:") {
                var parent = parent
                parent[String(last.dropFirst(2))] = nil
                return parent
            }
            guard let items = parent.array else { return parent }
            if last.hasPrefix("k:"), let key = try? JSON.parse(String(last.dropFirst(2))) {
                return .array(items.filter { !matches($0, key) })
            }
            if last.hasPrefix("v:"), let member = try? JSON.parse(String(last.dropFirst(2))) {
                return .array(items.filter { $0 != member })
            }
            return parent
        }
    }

    private static func transform(_ node: JSON, at path: Path, _ change: (JSON) -> JSON) -> JSON {
        guard let token = path.first else { return change(node) }
        let rest = Array(path.dropFirst())
        if token.hasPrefix("f:") {
            let name = String(token.dropFirst(2))
            guard let child = node[name] else { return node }
            var copy = node
            copy[name] = transform(child, at: rest, change)
            return copy
        }
        if token.hasPrefix("k:"), let key = try? JSON.parse(String(token.dropFirst(2))), var items = node.array {
            guard let index = items.firstIndex(where: { matches($0, key) })
            else { return node }
            items[index] = transform(items[index], at: rest, change)
            return .array(items)
        }
        return node
    }

    /// `.spec.replicas`, `.spec.template.spec.containers[name="web"].image`: how conflicts name a field.
    static func describe(_ path: Path) -> String {
        var text = ""
        for token in path where token != "." {
            if token.hasPrefix("f:") {
                text += "." + token.dropFirst(2)
            } else if token.hasPrefix("k:"), let key = try? JSON.parse(String(token.dropFirst(2))) {
                let parts = (key.object ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.serialized())" }
                text += "[" + parts.joined(separator: ",") + "]"
            } else if token.hasPrefix("v:") {
                text += "[" + token.dropFirst(2) + "]"
            }
        }
        return text
    }

    // MARK: FieldsV1

    static func encode(_ paths: Set<Path>) -> JSON {
        var root: JSON = [:]
        for path in paths { root[path: path] = root[path: path] ?? [:] }
        return root
    }

    static func decode(_ fields: JSON?) -> Set<Path> {
        var result: Set<Path> = []
        func walk(_ node: JSON, _ path: Path) {
            guard let children = node.object, !children.isEmpty else {
                if !path.isEmpty { result.insert(path) }
                return
            }
            for (key, child) in children { walk(child, path + [key]) }
        }
        if let fields { walk(fields, []) }
        return result
    }

    struct Entry {
        var manager: String
        var operation: String
        var apiVersion: String
        var time: String
        var subresource: String?
        var fields: Set<Path>

        init(manager: String, operation: String, apiVersion: String, subresource: String?, fields: Set<Path>) {
            self.manager = manager
            self.operation = operation
            self.apiVersion = apiVersion
            self.subresource = subresource
            self.fields = fields
            time = Clock.timestamp()
        }

        init(_ json: JSON) {
            manager = json["manager"]?.string ?? ""
            operation = json["operation"]?.string ?? "Update"
            apiVersion = json["apiVersion"]?.string ?? ""
            time = json["time"]?.string ?? ""
            subresource = json["subresource"]?.string
            fields = ManagedFields.decode(json["fieldsV1"])
        }

        var json: JSON {
            var entry: JSON = [
                "manager": .string(manager), "operation": .string(operation), "apiVersion": .string(apiVersion),
                "time": .string(time), "fieldsType": "FieldsV1", "fieldsV1": ManagedFields.encode(fields),
            ]
            if let subresource { entry["subresource"] = .string(subresource) }
            return entry
        }

        func sameOwner(_ writer: Writer) -> Bool {
            manager == writer.manager && operation == writer.operation && subresource == writer.subresource
        }
    }

    static func entries(_ object: JSON) -> [Entry] {
        (object[path: ["metadata", "managedFields"]]?.array ?? []).map(Entry.init)
    }

    static func withoutTimes(_ managed: JSON?) -> JSON? {
        guard let items = managed?.array else { return managed }
        return .array(
            items.map { item in
                var item = item
                item["time"] = nil
                return item
            })
    }

    static func afterCreate(_ object: JSON, writer: Writer) -> JSON {
        let fields = leaves(of: object, includeStatus: writer.subresource == "status")
        guard !fields.isEmpty else { return .array([]) }
        let entry = Entry(
            manager: writer.manager, operation: writer.operation, apiVersion: object["apiVersion"]?.string ?? "",
            subresource: writer.subresource, fields: fields)
        return .array([entry.json])
    }

    /// Moves the fields a write changed to its writer.
    static func afterUpdate(old: JSON, new: JSON, writer: Writer) -> JSON {
        let includeStatus = writer.subresource == "status"
        let before = leaves(of: old, includeStatus: includeStatus)
        let after = leaves(of: new, includeStatus: includeStatus)
        var changed: Set<Path> = []
        for path in after where value(in: old, at: path) != value(in: new, at: path) || !before.contains(path) {
            changed.insert(path)
        }
        let removed = before.subtracting(after)
        var list = entries(old)
        for index in list.indices {
            list[index].fields.subtract(removed)
            if !list[index].sameOwner(writer) { list[index].fields.subtract(changed) }
        }
        if !changed.isEmpty {
            if let index = list.firstIndex(where: { $0.sameOwner(writer) }) {
                list[index].fields.formUnion(changed)
                list[index].time = Clock.timestamp()
            } else {
                list.append(
                    Entry(
                        manager: writer.manager, operation: writer.operation, apiVersion: new["apiVersion"]?.string ?? "",
                        subresource: writer.subresource, fields: changed))
            }
        }
        return .array(list.filter { !$0.fields.isEmpty }.map(\.json))
    }

    // MARK: Server-side apply

    /// Merges an applied configuration into the live object (or creates it), as server-side apply does:
    /// conflicts with other managers' differing values fail unless forced; fields this manager applied
    /// before and no longer applies are removed when nobody else owns them.
    static func apply(live: JSON?, applied: JSON, manager: String, force: Bool, apiVersion: String) throws(APIError)
        -> (object: JSON, managedFields: JSON)
    {
        let appliedFields = leaves(of: applied, includeStatus: false)
        var list = live.map(entries) ?? []
        let writer = Writer(manager: manager, operation: "Apply")
        if let live {
            var conflicts: [(manager: String, apiVersion: String, operation: String, path: Path)] = []
            for entry in list where !entry.sameOwner(writer) && entry.subresource == nil {
                for path in appliedFields.intersection(entry.fields)
                where path.last != "." && value(in: live, at: path) != value(in: applied, at: path) {
                    conflicts.append((entry.manager, entry.apiVersion, entry.operation, path))
                }
            }
            if !conflicts.isEmpty {
                if !force {
                    throw conflictError(conflicts.sorted { describe($0.path) < describe($1.path) })
                }
                for index in list.indices where !list[index].sameOwner(writer) {
                    list[index].fields.subtract(appliedFields)
                }
            }
        }
        var merged = live ?? [:]
        let body = applied
        for (key, value) in body.object ?? [:] where key != "metadata" && key != "status" {
            merged[key] = Patch.strategic(merged[key], value, field: key)
        }
        for (key, value) in body["metadata"]?.object ?? [:] where !serverMetadata.contains(key) || key == "name" || key == "namespace" {
            merged[path: ["metadata", key]] = Patch.strategic(merged[path: ["metadata", key]], value, field: key)
        }
        if let previous = list.first(where: { $0.sameOwner(writer) }) {
            let others = list.filter { !$0.sameOwner(writer) }.reduce(into: Set<Path>()) { $0.formUnion($1.fields) }
            for path in previous.fields.subtracting(appliedFields).subtracting(others)
            where !others.contains(where: { $0.starts(with: path.last == "." ? path.dropLast() : path) }) {
                merged = removing(path, from: merged)
            }
            if merged[path: ["metadata", "annotations"]]?.object?.isEmpty == true { merged[path: ["metadata", "annotations"]] = nil }
        }
        list.removeAll { $0.sameOwner(writer) }
        list.insert(Entry(manager: manager, operation: "Apply", apiVersion: apiVersion, subresource: nil, fields: appliedFields), at: 0)
        return (merged, .array(list.filter { !$0.fields.isEmpty }.map(\.json)))
    }

    static func conflictError(_ conflicts: [(manager: String, apiVersion: String, operation: String, path: Path)]) -> APIError {
        func owner(_ conflict: (manager: String, apiVersion: String, operation: String, path: Path)) -> String {
            let version = ResourceCatalog.split(apiVersion: conflict.apiVersion).version
            return conflict.operation == "Apply" ? "\"\(conflict.manager)\"" : "\"\(conflict.manager)\" using \(version)"
        }
        let message: String
        if conflicts.count == 1 {
            message = "Apply failed with 1 conflict: conflict with \(owner(conflicts[0])): \(describe(conflicts[0].path))"
        } else {
            var lines: [String] = []
            var byOwner: [(String, [String])] = []
            for conflict in conflicts {
                let name = owner(conflict)
                if let index = byOwner.firstIndex(where: { $0.0 == name }) {
                    byOwner[index].1.append(describe(conflict.path))
                } else {
                    byOwner.append((name, [describe(conflict.path)]))
                }
            }
            for (name, paths) in byOwner {
                lines.append("conflicts with \(name):\n" + paths.map { "- \($0)" }.joined(separator: "\n"))
            }
            message = "Apply failed with \(conflicts.count) conflicts: " + lines.joined(separator: "\n")
        }
        let causes: [JSON] = conflicts.map { conflict in
            [
                "reason": "FieldManagerConflict", "message": .string("conflict with \(owner(conflict))"),
                "field": .string(describe(conflict.path)),
            ]
        }
        return APIError(code: 409, reason: "Conflict", message: message, details: ["causes": .array(causes)])
    }
}
