import Foundation

/// Who a request comes from.
public struct User: Sendable, Equatable {
    public var name: String
    public var groups: [String]

    public var isAdmin: Bool { groups.contains("system:masters") }
    public static let admin = User(name: "kube-sim-admin", groups: ["system:masters", "system:authenticated"])
}

/// Bearer tokens from a file in kube-apiserver's `--token-auth-file` format (`token,user,uid,"g1,g2"`),
/// read again whenever it changes; and RBAC rules (Role, ClusterRole and their bindings) stored in
/// the cluster. Without a token file every request is an administrator's.
struct Authorizer: Sendable {
    let tokenFile: URL?

    func user(forAuthorization header: String?) -> User? {
        guard let tokenFile else { return .admin }
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst("Bearer ".count)).trimmingSpaces
        guard let text = try? String(contentsOf: tokenFile, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = Self.csvFields(String(line))
            guard fields.count >= 2, fields[0] == token else { continue }
            let groups = fields.count >= 4 ? fields[3].split(separator: ",").map { String($0).trimmingSpaces } : []
            return User(name: fields[1], groups: groups + ["system:authenticated"])
        }
        return nil
    }

    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        for character in line {
            if character == "\"" {
                quoted.toggle()
            } else if character == ",", !quoted {
                fields.append(current.trimmingSpaces)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current.trimmingSpaces)
        return fields
    }

    /// Whether `user` may `verb` the resource, by the RBAC objects in `store`.
    func allows(
        _ user: User, verb: String, group: String, resource: String, subresource: String?, namespace: String?, name: String?,
        store: Store
    ) async -> Bool {
        if user.isAdmin { return true }
        if group == "authorization.k8s.io", resource.hasPrefix("selfsubject") { return true }
        let rules = await rules(for: user, namespace: namespace, store: store)
        let fullResource = subresource.map { "\(resource)/\($0)" } ?? resource
        return rules.contains { rule in
            Self.matches(rule["verbs"], verb) && Self.matches(rule["apiGroups"], group)
                && Self.matches(rule["resources"], fullResource)
                && (rule["resourceNames"]?.array?.isEmpty ?? true || name.map { Self.matches(rule["resourceNames"], $0) } ?? false)
        }
    }

    /// The policy rules bound to a user in a namespace (cluster-wide bindings included).
    func rules(for user: User, namespace: String?, store: Store) async -> [JSON] {
        guard let rbac = await store.catalog.find(group: "rbac.authorization.k8s.io", resource: "rolebindings"),
            let clusterBindings = await store.catalog.find(group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"),
            let roles = await store.catalog.find(group: "rbac.authorization.k8s.io", resource: "roles"),
            let clusterRoles = await store.catalog.find(group: "rbac.authorization.k8s.io", resource: "clusterroles")
        else { return [] }
        func bound(_ binding: JSON) -> Bool {
            (binding["subjects"]?.array ?? []).contains { subject in
                (subject["kind"]?.string == "User" && subject["name"]?.string == user.name)
                    || (subject["kind"]?.string == "Group" && user.groups.contains(subject["name"]?.string ?? ""))
            }
        }
        var result: [JSON] = []
        var bindings = await store.list(clusterBindings, namespace: nil).items.filter(bound)
        if let namespace { bindings += await store.list(rbac, namespace: namespace).items.filter(bound) }
        for binding in bindings {
            let roleName = binding[path: ["roleRef", "name"]]?.string ?? ""
            let role: JSON?
            if binding[path: ["roleRef", "kind"]]?.string == "ClusterRole" {
                role = await store.find(clusterRoles, namespace: nil, name: roleName)
            } else {
                role = await store.find(roles, namespace: binding[path: ["metadata", "namespace"]]?.string, name: roleName)
            }
            result += role?["rules"]?.array ?? []
        }
        return result
    }

    static func matches(_ list: JSON?, _ value: String) -> Bool {
        let values = list?.array?.compactMap(\.string) ?? []
        return values.contains("*") || values.contains(value)
    }
}
