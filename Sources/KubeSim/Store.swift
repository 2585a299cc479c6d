public import Foundation

/// One change to an object, as a watch stream carries it.
public struct WatchEvent: Sendable {
    public var type: String
    public var object: JSON
    public var resourceVersion: Int
    public var storeKey: String
    /// For MODIFIED, the object before the change (a watch with a selector turns leaving it into DELETED).
    public var previous: JSON?
}

/// Who makes a write, as `managedFields` records it.
public struct Writer: Sendable {
    public var manager: String
    public var operation: String
    public var subresource: String?

    public init(manager: String, operation: String = "Update", subresource: String? = nil) {
        self.manager = manager
        self.operation = operation
        self.subresource = subresource
    }

    public static let controllerManager = Writer(manager: "kube-controller-manager")
    public static let controllerStatus = Writer(manager: "kube-controller-manager", subresource: "status")
    public static let kubelet = Writer(manager: "kubelet", subresource: "status")
}

/// Every object, the resource version counter, recent history for watches, and the state file.
///
/// One actor so that each write gets the next resource version and reaches watchers in order.
public actor Store {
    public private(set) var catalog = ResourceCatalog()
    var objects: [String: [String: JSON]] = [:]
    public private(set) var resourceVersion = 1
    var history: [WatchEvent] = []
    let historyLimit: Int
    /// The first resource version history still holds events after (a watch from before it gets 410).
    var historyStart = 1
    var watchers: [UUID: (filter: WatchFilter, continuation: AsyncStream<WatchEvent>.Continuation)] = [:]
    let stateFile: URL?
    var saveScheduled = false
    var changeContinuations: [UUID: AsyncStream<Void>.Continuation] = [:]
    /// When the state file could not be written, why (reported by `kube-sim status`-like callers and logs).
    public internal(set) var lastSaveError: String?

    public init(stateDirectory: URL?, historyLimit: Int = 4096) async throws {
        self.historyLimit = historyLimit
        stateFile = stateDirectory?.appendingPathComponent("objects.json")
        if let stateFile, FileManager.default.fileExists(atPath: stateFile.path) {
            let bytes = try [UInt8](Data(contentsOf: stateFile))
            let saved = try JSON.parse(bytes)
            resourceVersion = saved["resourceVersion"]?.int ?? 1
            historyStart = resourceVersion
            for entry in saved["objects"]?.array ?? [] {
                guard let key = entry["store"]?.string, let object = entry["object"] else { continue }
                objects[key, default: [:]][Self.objectKey(object)] = object
            }
            var custom: [ResourceType] = []
            for crd in (objects["apiextensions.k8s.io/customresourcedefinitions"] ?? [:]).values {
                custom += ResourceCatalog.customResource(from: crd)
            }
            catalog.setCustomResources(custom)
        }
        if objects.isEmpty { seed() }
    }

    static func objectKey(_ object: JSON) -> String {
        "\(object[path: ["metadata", "namespace"]]?.string ?? "")/\(object[path: ["metadata", "name"]]?.string ?? "")"
    }

    static func key(_ namespace: String?, _ name: String) -> String { "\(namespace ?? "")/\(name)" }

    /// The namespaces and the node a new cluster starts with.
    func seed() {
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace: JSON = [
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": ["name": .string(name), "labels": ["kubernetes.io/metadata.name": .string(name)]],
                "spec": ["finalizers": ["kubernetes"]], "status": ["phase": "Active"],
            ]
            insertNew(storeKey: "/namespaces", object: namespace, writer: Writer(manager: "kube-apiserver"))
        }
        let node: JSON = [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(Kubelet.nodeName),
                "labels": ["kubernetes.io/hostname": .string(Kubelet.nodeName), "kubernetes.io/os": "linux"],
            ],
            "status": [
                "conditions": [
                    [
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    ]
                ],
                "addresses": [["type": "InternalIP", "address": "127.0.0.1"]],
            ],
        ]
        insertNew(storeKey: "/nodes", object: node, writer: Writer(manager: "kubelet"))
    }

    // MARK: Reading

    public func get(_ type: ResourceType, namespace: String?, name: String) throws(APIError) -> JSON {
        guard let object = objects[type.storeKey]?[Self.key(type.namespaced ? namespace : nil, name)] else {
            throw APIError.notFound(type, name)
        }
        return object
    }

    public func find(_ type: ResourceType, namespace: String?, name: String) -> JSON? {
        objects[type.storeKey]?[Self.key(type.namespaced ? namespace : nil, name)]
    }

    public func list(
        _ type: ResourceType, namespace: String?, labels: LabelSelector = .everything, fields: FieldSelector? = nil
    ) -> (items: [JSON], resourceVersion: Int) {
        let items = (objects[type.storeKey] ?? [:]).values.filter { object in
            (namespace == nil || object[path: ["metadata", "namespace"]]?.string == namespace)
                && labels.matches(object[path: ["metadata", "labels"]]?.stringMap ?? [:])
                && (fields?.matches(object) ?? true)
        }
        .sorted { Self.objectKey($0) < Self.objectKey($1) }
        return (items, resourceVersion)
    }

    public func namespaceExists(_ name: String) -> Bool {
        objects["/namespaces"]?[Self.key(nil, name)] != nil
    }

    // MARK: Writing

    /// Stores a new object: names it (generateName), stamps uid, times, generation, managedFields.
    public func create(_ type: ResourceType, namespace: String?, object: JSON, writer: Writer) throws(APIError) -> JSON {
        var object = object
        let namespace = type.namespaced ? (namespace ?? "default") : nil
        if let namespace {
            guard namespaceExists(namespace) else { throw APIError.namespaceNotFound(namespace) }
            if objects["/namespaces"]?[Self.key(nil, namespace)]?[path: ["status", "phase"]]?.string == "Terminating" {
                throw APIError(
                    code: 403, reason: "Forbidden",
                    message:
                        "\(type.resource) \"\(object[path: ["metadata", "name"]]?.string ?? "")\" is forbidden: unable to create new content in namespace \(namespace) because it is being terminated",
                    details: APIError.details(type, name: object[path: ["metadata", "name"]]?.string))
            }
            object[path: ["metadata", "namespace"]] = .string(namespace)
        }
        if object[path: ["metadata", "name"]]?.string?.isEmpty ?? true {
            guard let prefix = object[path: ["metadata", "generateName"]]?.string, !prefix.isEmpty else {
                throw APIError.invalid(
                    type, "", causes: [("FieldValueRequired", "Required value: name or generateName is required", "metadata.name")])
            }
            var name: String
            repeat { name = prefix + Names.randomSuffix(5) } while find(type, namespace: namespace, name: name) != nil
            object[path: ["metadata", "name"]] = .string(name)
        }
        let name = object[path: ["metadata", "name"]]!.string!
        guard find(type, namespace: namespace, name: name) == nil else { throw APIError.alreadyExists(type, name) }
        object["apiVersion"] = .string(type.groupVersion)
        object["kind"] = .string(type.kind)
        return insertNew(storeKey: type.storeKey, object: object, writer: writer, type: type)
    }

    @discardableResult
    func insertNew(storeKey: String, object: JSON, writer: Writer, type: ResourceType? = nil) -> JSON {
        var object = object
        resourceVersion += 1
        object[path: ["metadata", "uid"]] = .string(UUID().uuidString.lowercased())
        object[path: ["metadata", "resourceVersion"]] = .string(String(resourceVersion))
        object[path: ["metadata", "creationTimestamp"]] = .string(Clock.timestamp())
        object[path: ["metadata", "deletionTimestamp"]] = nil
        if Self.hasGeneration(storeKey) { object[path: ["metadata", "generation"]] = 1 }
        object[path: ["metadata", "managedFields"]] = nil
        object[path: ["metadata", "managedFields"]] = ManagedFields.afterCreate(object, writer: writer)
        if object[path: ["metadata", "managedFields"]] == .array([]) { object[path: ["metadata", "managedFields"]] = nil }
        objects[storeKey, default: [:]][Self.objectKey(object)] = object
        record(WatchEvent(type: "ADDED", object: object, resourceVersion: resourceVersion, storeKey: storeKey))
        if storeKey == "apiextensions.k8s.io/customresourcedefinitions" { refreshCustomResources() }
        return object
    }

    /// Workloads, ingresses, definitions and custom resources count spec changes in `metadata.generation`.
    static func hasGeneration(_ storeKey: String) -> Bool {
        if storeKey.hasPrefix("apps/") || storeKey.hasPrefix("networking.k8s.io/")
            || storeKey.hasPrefix("apiextensions.k8s.io/") || storeKey.hasPrefix("discovery.k8s.io/")
        {
            return true
        }
        return !ResourceCatalog.builtIn.contains { $0.storeKey == storeKey }
    }

    /// Replaces an object. `expectedVersion` (from the request body) must match, as an update's does.
    /// A write that changes nothing is not a write: no new resource version, no event.
    public func update(
        _ type: ResourceType, namespace: String?, name: String, object newObject: JSON, writer: Writer,
        expectedVersion: String? = nil, managedFieldsOverride: JSON? = nil
    ) throws(APIError) -> JSON {
        let namespace = type.namespaced ? namespace : nil
        let key = Self.key(namespace, name)
        guard let old = objects[type.storeKey]?[key] else { throw APIError.notFound(type, name) }
        if let expectedVersion, !expectedVersion.isEmpty,
            expectedVersion != old[path: ["metadata", "resourceVersion"]]?.string
        {
            throw APIError.conflict(type, name)
        }
        var object = newObject
        object["apiVersion"] = old["apiVersion"]
        object["kind"] = old["kind"]
        // What the client may not change.
        for field in ["uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp"] {
            object[path: ["metadata", field]] = old[path: ["metadata", field]]
        }
        let hasStatusSubresource = type.subresources.contains("status")
        if writer.subresource == "status" {
            var kept = old
            kept["status"] = object["status"]
            // The status subresource may also write annotations (the deployment controller's revision).
            if writer.manager == Writer.controllerManager.manager {
                kept[path: ["metadata", "annotations"]] = object[path: ["metadata", "annotations"]]
            }
            object = kept
        } else if hasStatusSubresource, writer.subresource == nil {
            object["status"] = old["status"]
        }
        if Self.hasGeneration(type.storeKey) {
            var generation = old[path: ["metadata", "generation"]]?.int ?? 1
            let specChanged = object["spec"] != old["spec"]
            let annotationsChanged =
                type.storeKey == "apps/deployments"
                && object[path: ["metadata", "annotations"]] != old[path: ["metadata", "annotations"]]
            let mainResource = writer.subresource == nil
            // Kinds without a spec (custom resources without a status subresource, endpoint slices)
            // count every change.
            let countsEveryChange = (type.isCustom && !hasStatusSubresource) || type.storeKey.hasPrefix("discovery.k8s.io/")
            if mainResource && (specChanged || annotationsChanged || (countsEveryChange && !Self.sameContent(object, old))) {
                generation += 1
            }
            object[path: ["metadata", "generation"]] = .int(generation)
        }
        object[path: ["metadata", "resourceVersion"]] = old[path: ["metadata", "resourceVersion"]]
        if let managedFieldsOverride {
            object[path: ["metadata", "managedFields"]] = managedFieldsOverride
        } else {
            object[path: ["metadata", "managedFields"]] = old[path: ["metadata", "managedFields"]]
        }
        if Self.sameContent(object, old) { return old }
        if managedFieldsOverride == nil {
            object[path: ["metadata", "managedFields"]] = ManagedFields.afterUpdate(old: old, new: object, writer: writer)
        }
        resourceVersion += 1
        object[path: ["metadata", "resourceVersion"]] = .string(String(resourceVersion))
        objects[type.storeKey]![key] = object
        record(
            WatchEvent(type: "MODIFIED", object: object, resourceVersion: resourceVersion, storeKey: type.storeKey, previous: old))
        if type.storeKey == "apiextensions.k8s.io/customresourcedefinitions" { refreshCustomResources() }
        return object
    }

    /// Equal apart from managedFields times.
    static func sameContent(_ left: JSON, _ right: JSON) -> Bool {
        var left = left
        var right = right
        left[path: ["metadata", "managedFields"]] = ManagedFields.withoutTimes(left[path: ["metadata", "managedFields"]])
        right[path: ["metadata", "managedFields"]] = ManagedFields.withoutTimes(right[path: ["metadata", "managedFields"]])
        return left == right
    }

    /// Removes an object now. Dependents go too (background or foreground), or lose their owner (orphan).
    @discardableResult
    public func delete(_ type: ResourceType, namespace: String?, name: String, propagation: String = "Background")
        throws(APIError) -> JSON
    {
        let namespace = type.namespaced ? namespace : nil
        let key = Self.key(namespace, name)
        guard let old = objects[type.storeKey]?[key] else { throw APIError.notFound(type, name) }
        objects[type.storeKey]![key] = nil
        resourceVersion += 1
        var gone = old
        gone[path: ["metadata", "resourceVersion"]] = .string(String(resourceVersion))
        record(WatchEvent(type: "DELETED", object: gone, resourceVersion: resourceVersion, storeKey: type.storeKey))
        if type.storeKey == "apiextensions.k8s.io/customresourcedefinitions" {
            for custom in ResourceCatalog.customResource(from: old) { objects[custom.storeKey] = nil }
            refreshCustomResources()
        }
        if let uid = old[path: ["metadata", "uid"]]?.string { collectDependents(of: uid, propagation: propagation) }
        if type.storeKey == "/namespaces" { deleteContents(of: name) }
        return gone
    }

    /// Marks a pod as terminating (the kubelet stops its containers, then calls `delete`).
    public func markTerminating(_ type: ResourceType, namespace: String?, name: String, gracePeriod: Int) throws(APIError)
        -> JSON
    {
        var object = try get(type, namespace: namespace, name: name)
        if object[path: ["metadata", "deletionTimestamp"]] != nil { return object }
        let key = Self.key(namespace, name)
        resourceVersion += 1
        object[path: ["metadata", "deletionTimestamp"]] = .string(Clock.timestamp(secondsFromNow: gracePeriod))
        object[path: ["metadata", "deletionGracePeriodSeconds"]] = .int(gracePeriod)
        object[path: ["metadata", "resourceVersion"]] = .string(String(resourceVersion))
        let old = objects[type.storeKey]![key]
        objects[type.storeKey]![key] = object
        record(
            WatchEvent(type: "MODIFIED", object: object, resourceVersion: resourceVersion, storeKey: type.storeKey, previous: old))
        return object
    }

    func collectDependents(of uid: String, propagation: String) {
        for (storeKey, members) in objects {
            for (key, object) in members {
                let owners = object[path: ["metadata", "ownerReferences"]]?.array ?? []
                guard owners.contains(where: { $0["uid"]?.string == uid }) else { continue }
                if propagation == "Orphan" {
                    var kept = object
                    let remaining = owners.filter { $0["uid"]?.string != uid }
                    kept[path: ["metadata", "ownerReferences"]] = remaining.isEmpty ? nil : .array(remaining)
                    resourceVersion += 1
                    kept[path: ["metadata", "resourceVersion"]] = .string(String(resourceVersion))
                    objects[storeKey]![key] = kept
                    record(
                        WatchEvent(
                            type: "MODIFIED", object: kept, resourceVersion: resourceVersion, storeKey: storeKey,
                            previous: object))
                } else if let type = catalog.types.first(where: { $0.storeKey == storeKey }) {
                    let name = object[path: ["metadata", "name"]]?.string ?? ""
                    let namespace = object[path: ["metadata", "namespace"]]?.string
                    if storeKey == "/pods" {
                        _ = try? markTerminating(type, namespace: namespace, name: name, gracePeriod: 30)
                    } else {
                        _ = try? delete(type, namespace: namespace, name: name, propagation: propagation)
                    }
                }
            }
        }
    }

    func deleteContents(of namespace: String) {
        for type in catalog.types where type.namespaced {
            for object in list(type, namespace: namespace).items {
                let name = object[path: ["metadata", "name"]]?.string ?? ""
                if type.storeKey == "/pods" {
                    _ = try? markTerminating(type, namespace: namespace, name: name, gracePeriod: 0)
                } else {
                    _ = try? delete(type, namespace: namespace, name: name)
                }
            }
        }
    }

    func refreshCustomResources() {
        var custom: [ResourceType] = []
        for crd in (objects["apiextensions.k8s.io/customresourcedefinitions"] ?? [:]).values {
            custom += ResourceCatalog.customResource(from: crd)
        }
        catalog.setCustomResources(custom)
    }
}

/// Random name suffixes, from the alphabet Kubernetes uses (no vowels, no look-alikes).
enum Names {
    static let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")

    static func randomSuffix(_ count: Int) -> String {
        String((0..<count).map { _ in alphabet.randomElement()! })
    }

    /// `SafeEncodeString(fmt.Sprint(fnv32a))`: the pod-template-hash of a template.
    static func templateHash(_ template: JSON, collisionCount: Int = 0) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in Array(template.serialized().utf8) + Array(String(collisionCount).utf8) {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return String(String(hash).utf8.map { alphabet[Int($0) % alphabet.count] })
    }
}

enum Clock {
    static func timestamp(secondsFromNow: Int = 0) -> String {
        Date(timeIntervalSinceNow: TimeInterval(secondsFromNow)).formatted(.iso8601)
    }

    static func parse(_ text: String?) -> Date? {
        guard let text else { return nil }
        return try? Date(text, strategy: .iso8601)
    }
}
