/// One kind of object the API server serves: where it lives in the URL space and what it may do.
public struct ResourceType: Sendable, Hashable {
    public var group: String
    public var version: String
    /// Plural, lower case: `deployments`.
    public var resource: String
    public var kind: String
    public var namespaced: Bool
    public var shortNames: [String] = []
    public var categories: [String] = []
    /// Subresources served: `status`, `scale`.
    public var subresources: [String] = []
    public var verbs: [String] = ResourceType.allVerbs
    /// Custom resources accept no strategic merge patch.
    public var isCustom = false
    /// Table columns beyond Name and Age come from the kind's printer.
    public var listKind: String { kind + "List" }
    public var singular: String { kind.lowercased() }
    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `deployments.apps`, `configmaps`: how error messages name the resource.
    public var qualifiedName: String { group.isEmpty ? resource : "\(resource).\(group)" }
    /// The key the store files objects under.
    public var storeKey: String { "\(group)/\(resource)" }
    /// Review resources are created and answered, never stored.
    public var isVirtual: Bool { group == "authorization.k8s.io" }

    public static let allVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
}

/// The kinds kube-sim serves, and those custom resource definitions add.
public struct ResourceCatalog: Sendable {
    public private(set) var types: [ResourceType]

    public static let builtIn: [ResourceType] = [
        ResourceType(group: "", version: "v1", resource: "configmaps", kind: "ConfigMap", namespaced: true, shortNames: ["cm"]),
        ResourceType(
            group: "", version: "v1", resource: "endpoints", kind: "Endpoints", namespaced: true, shortNames: ["ep"]),
        ResourceType(
            group: "", version: "v1", resource: "events", kind: "Event", namespaced: true, shortNames: ["ev"]),
        ResourceType(
            group: "", version: "v1", resource: "namespaces", kind: "Namespace", namespaced: false, shortNames: ["ns"],
            subresources: ["status"], verbs: ["create", "delete", "get", "list", "patch", "update", "watch"]),
        ResourceType(
            group: "", version: "v1", resource: "nodes", kind: "Node", namespaced: false, shortNames: ["no"],
            subresources: ["status"]),
        ResourceType(
            group: "", version: "v1", resource: "pods", kind: "Pod", namespaced: true, shortNames: ["po"],
            categories: ["all"], subresources: ["status"]),
        ResourceType(group: "", version: "v1", resource: "secrets", kind: "Secret", namespaced: true),
        ResourceType(
            group: "", version: "v1", resource: "serviceaccounts", kind: "ServiceAccount", namespaced: true,
            shortNames: ["sa"]),
        ResourceType(
            group: "", version: "v1", resource: "services", kind: "Service", namespaced: true, shortNames: ["svc"],
            categories: ["all"], subresources: ["status"],
            verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
        ResourceType(
            group: "apps", version: "v1", resource: "deployments", kind: "Deployment", namespaced: true,
            shortNames: ["deploy"], categories: ["all"], subresources: ["scale", "status"]),
        ResourceType(
            group: "apps", version: "v1", resource: "replicasets", kind: "ReplicaSet", namespaced: true,
            shortNames: ["rs"], categories: ["all"], subresources: ["scale", "status"]),
        ResourceType(
            group: "discovery.k8s.io", version: "v1", resource: "endpointslices", kind: "EndpointSlice",
            namespaced: true),
        ResourceType(
            group: "networking.k8s.io", version: "v1", resource: "ingresses", kind: "Ingress", namespaced: true,
            shortNames: ["ing"], subresources: ["status"]),
        ResourceType(
            group: "networking.k8s.io", version: "v1", resource: "ingressclasses", kind: "IngressClass",
            namespaced: false),
        ResourceType(
            group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions",
            kind: "CustomResourceDefinition", namespaced: false, shortNames: ["crd", "crds"], categories: ["api-extensions"],
            subresources: ["status"]),
        ResourceType(
            group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterrolebindings",
            kind: "ClusterRoleBinding", namespaced: false),
        ResourceType(
            group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles", kind: "ClusterRole",
            namespaced: false),
        ResourceType(
            group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings", kind: "RoleBinding",
            namespaced: true),
        ResourceType(
            group: "rbac.authorization.k8s.io", version: "v1", resource: "roles", kind: "Role", namespaced: true),
        ResourceType(
            group: "authorization.k8s.io", version: "v1", resource: "selfsubjectaccessreviews",
            kind: "SelfSubjectAccessReview", namespaced: false, verbs: ["create"]),
        ResourceType(
            group: "authorization.k8s.io", version: "v1", resource: "selfsubjectrulesreviews",
            kind: "SelfSubjectRulesReview", namespaced: false, verbs: ["create"]),
    ]

    public init(customResources: [ResourceType] = []) {
        types = Self.builtIn + customResources
    }

    /// Group order as a 1.28 apiserver lists them (those kube-sim serves), then custom groups by name.
    static let groupOrder = [
        "apps", "authorization.k8s.io", "networking.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io",
        "discovery.k8s.io",
    ]

    public var groups: [String] {
        var seen: [String] = []
        for type in types where !type.group.isEmpty && !seen.contains(type.group) { seen.append(type.group) }
        return seen.sorted { left, right in
            let l = Self.groupOrder.firstIndex(of: left) ?? Int.max
            let r = Self.groupOrder.firstIndex(of: right) ?? Int.max
            return l == r ? left < right : l < r
        }
    }

    public func find(group: String, version: String, resource: String) -> ResourceType? {
        types.first { $0.group == group && $0.version == version && $0.resource == resource }
    }

    public func find(apiVersion: String, kind: String) -> ResourceType? {
        let (group, version) = Self.split(apiVersion: apiVersion)
        return types.first { $0.group == group && $0.version == version && $0.kind == kind }
    }

    public func find(group: String, resource: String) -> ResourceType? {
        types.first { $0.group == group && $0.resource == resource }
    }

    public static func split(apiVersion: String) -> (group: String, version: String) {
        guard let slash = apiVersion.firstIndex(of: "/") else { return ("", apiVersion) }
        return (String(apiVersion[..<slash]), String(apiVersion[apiVersion.index(after: slash)...]))
    }

    /// Replaces the custom resources with those the established definitions declare.
    public mutating func setCustomResources(_ custom: [ResourceType]) {
        types = Self.builtIn + custom
    }

    /// The resource a CustomResourceDefinition declares (its first served version), if well formed.
    public static func customResource(from crd: JSON) -> [ResourceType] {
        guard let group = crd[path: ["spec", "group"]]?.string,
            let plural = crd[path: ["spec", "names", "plural"]]?.string,
            let kind = crd[path: ["spec", "names", "kind"]]?.string
        else { return [] }
        let namespaced = crd[path: ["spec", "scope"]]?.string != "Cluster"
        let shortNames = crd[path: ["spec", "names", "shortNames"]]?.array?.compactMap(\.string) ?? []
        let categories = crd[path: ["spec", "names", "categories"]]?.array?.compactMap(\.string) ?? []
        return (crd[path: ["spec", "versions"]]?.array ?? []).compactMap { version in
            guard version["served"]?.bool != false, let name = version["name"]?.string else { return nil }
            var subresources: [String] = []
            if version[path: ["subresources", "status"]] != nil { subresources.append("status") }
            if version[path: ["subresources", "scale"]] != nil { subresources.append("scale") }
            return ResourceType(
                group: group, version: name, resource: plural, kind: kind, namespaced: namespaced,
                shortNames: shortNames, categories: categories, subresources: subresources, isCustom: true)
        }
    }
}

// MARK: - Discovery documents

extension ResourceCatalog {
    private func discoveryResource(_ type: ResourceType) -> JSON {
        var entry: JSON = [
            "resource": .string(type.resource),
            "responseKind": ["group": "", "version": "", "kind": .string(type.kind)],
            "scope": type.namespaced ? "Namespaced" : "Cluster",
            "singularResource": .string(type.singular),
            "verbs": .array(type.verbs.map { .string($0) }),
        ]
        if !type.shortNames.isEmpty { entry["shortNames"] = .array(type.shortNames.map { .string($0) }) }
        if !type.categories.isEmpty { entry["categories"] = .array(type.categories.map { .string($0) }) }
        if !type.subresources.isEmpty {
            entry["subresources"] = .array(
                type.subresources.map { name in
                    let kind: JSON =
                        name == "scale"
                        ? ["group": "autoscaling", "version": "v1", "kind": "Scale"]
                        : ["group": "", "version": "", "kind": .string(type.kind)]
                    return ["subresource": .string(name), "responseKind": kind, "verbs": ["get", "patch", "update"]]
                })
        }
        return entry
    }

    private func discoveryGroup(name: String?) -> JSON {
        let members = types.filter { $0.group == (name ?? "") }
        var versions: [String] = []
        for type in members where !versions.contains(type.version) { versions.append(type.version) }
        var metadata: JSON = ["creationTimestamp": nil]
        if let name { metadata["name"] = .string(name) }
        return [
            "metadata": metadata,
            "versions": .array(
                versions.map { version in
                    [
                        "version": .string(version),
                        "resources": .array(
                            members.filter { $0.version == version }.sorted { $0.resource < $1.resource }
                                .map(discoveryResource)),
                        "freshness": "Current",
                    ]
                }),
        ]
    }

    /// `GET /api` or `/apis` in aggregated form (apidiscovery.k8s.io/v2beta1, as a 1.28 apiserver answers).
    public func aggregatedDiscovery(core: Bool) -> JSON {
        [
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2beta1",
            "metadata": [:],
            "items": .array(core ? [discoveryGroup(name: nil)] : groups.map { discoveryGroup(name: $0) }),
        ]
    }

    /// `GET /api` in legacy form (APIVersions).
    public func legacyCoreVersions() -> JSON {
        [
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"]],
        ]
    }

    /// `GET /apis` in legacy form (APIGroupList).
    public func legacyGroups() -> JSON {
        [
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": .array(
                groups.map { group in
                    var versions: [String] = []
                    for type in types where type.group == group && !versions.contains(type.version) {
                        versions.append(type.version)
                    }
                    let entries: [JSON] = versions.map { ["groupVersion": .string("\(group)/\($0)"), "version": .string($0)] }
                    return [
                        "name": .string(group), "versions": .array(entries), "preferredVersion": entries.first ?? nil,
                    ]
                }),
        ]
    }

    /// `GET /api/v1` or `/apis/GROUP/VERSION`: an APIResourceList, or nil for a group-version not served.
    public func resourceList(group: String, version: String) -> JSON? {
        let members = types.filter { $0.group == group && $0.version == version }
        guard !members.isEmpty else { return nil }
        var resources: [JSON] = []
        for type in members.sorted(by: { $0.resource < $1.resource }) {
            var entry: JSON = [
                "name": .string(type.resource), "singularName": .string(type.singular),
                "namespaced": .bool(type.namespaced), "kind": .string(type.kind),
                "verbs": .array(type.verbs.map { .string($0) }),
            ]
            if !type.shortNames.isEmpty { entry["shortNames"] = .array(type.shortNames.map { .string($0) }) }
            if !type.categories.isEmpty { entry["categories"] = .array(type.categories.map { .string($0) }) }
            resources.append(entry)
            for sub in type.subresources {
                var subEntry: JSON = [
                    "name": .string("\(type.resource)/\(sub)"), "singularName": "", "namespaced": .bool(type.namespaced),
                    "kind": .string(sub == "scale" ? "Scale" : type.kind), "verbs": ["get", "patch", "update"],
                ]
                if sub == "scale" {
                    subEntry["group"] = "autoscaling"
                    subEntry["version"] = "v1"
                }
                resources.append(subEntry)
            }
        }
        return [
            "kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"), "resources": .array(resources),
        ]
    }
}
