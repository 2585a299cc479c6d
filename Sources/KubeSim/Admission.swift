/// Defaulting and validation on create and update, for the fields kubectl and the controllers read.
enum Admission {
    // MARK: Defaults

    static func applyDefaults(_ object: inout JSON, type: ResourceType) {
        switch type.storeKey {
        case "apps/deployments":
            if object[path: ["spec", "replicas"]] == nil { object[path: ["spec", "replicas"]] = 1 }
            if object[path: ["spec", "revisionHistoryLimit"]] == nil { object[path: ["spec", "revisionHistoryLimit"]] = 10 }
            if object[path: ["spec", "progressDeadlineSeconds"]] == nil {
                object[path: ["spec", "progressDeadlineSeconds"]] = 600
            }
            if object[path: ["spec", "strategy", "type"]] == nil { object[path: ["spec", "strategy", "type"]] = "RollingUpdate" }
            if object[path: ["spec", "strategy", "type"]]?.string == "RollingUpdate" {
                if object[path: ["spec", "strategy", "rollingUpdate", "maxSurge"]] == nil {
                    object[path: ["spec", "strategy", "rollingUpdate", "maxSurge"]] = "25%"
                }
                if object[path: ["spec", "strategy", "rollingUpdate", "maxUnavailable"]] == nil {
                    object[path: ["spec", "strategy", "rollingUpdate", "maxUnavailable"]] = "25%"
                }
            }
            defaultTemplate(&object, at: ["spec", "template"])
        case "apps/replicasets":
            if object[path: ["spec", "replicas"]] == nil { object[path: ["spec", "replicas"]] = 1 }
            defaultTemplate(&object, at: ["spec", "template"])
        case "/pods":
            if var spec = object["spec"] {
                defaultPodSpec(&spec)
                if spec["serviceAccountName"] == nil { spec["serviceAccountName"] = "default" }
                if spec["serviceAccount"] == nil { spec["serviceAccount"] = spec["serviceAccountName"] }
                if spec["enableServiceLinks"] == nil { spec["enableServiceLinks"] = true }
                if spec["priority"] == nil { spec["priority"] = 0 }
                if spec["preemptionPolicy"] == nil { spec["preemptionPolicy"] = "PreemptLowerPriority" }
                addServiceAccountVolume(&spec)
                addDefaultTolerations(&spec)
                object["spec"] = spec
            }
            if object[path: ["status", "phase"]] == nil {
                object["status"] = ["phase": "Pending", "qosClass": .string(qosClass(object["spec"] ?? [:]))]
            }
        case "/services":
            if object[path: ["spec", "type"]] == nil { object[path: ["spec", "type"]] = "ClusterIP" }
            if object[path: ["spec", "sessionAffinity"]] == nil { object[path: ["spec", "sessionAffinity"]] = "None" }
            if object[path: ["spec", "ipFamilies"]] == nil { object[path: ["spec", "ipFamilies"]] = ["IPv4"] }
            if object[path: ["spec", "ipFamilyPolicy"]] == nil { object[path: ["spec", "ipFamilyPolicy"]] = "SingleStack" }
            if object[path: ["spec", "internalTrafficPolicy"]] == nil {
                object[path: ["spec", "internalTrafficPolicy"]] = "Cluster"
            }
            let serviceType = object[path: ["spec", "type"]]?.string
            if serviceType == "LoadBalancer" || serviceType == "NodePort" {
                if object[path: ["spec", "externalTrafficPolicy"]] == nil {
                    object[path: ["spec", "externalTrafficPolicy"]] = "Cluster"
                }
            }
            if serviceType == "LoadBalancer", object[path: ["spec", "allocateLoadBalancerNodePorts"]] == nil {
                object[path: ["spec", "allocateLoadBalancerNodePorts"]] = true
            }
            if let ports = object[path: ["spec", "ports"]]?.array {
                object[path: ["spec", "ports"]] = .array(
                    ports.map { port in
                        var port = port
                        if port["protocol"] == nil { port["protocol"] = "TCP" }
                        if port["targetPort"] == nil { port["targetPort"] = port["port"] }
                        return port
                    })
            }
            if object["status"] == nil { object["status"] = ["loadBalancer": [:]] }
        case "/namespaces":
            if object[path: ["spec", "finalizers"]] == nil { object[path: ["spec", "finalizers"]] = ["kubernetes"] }
            if object["status"] == nil { object["status"] = ["phase": "Active"] }
            if let name = object[path: ["metadata", "name"]]?.string {
                object[path: ["metadata", "labels", "kubernetes.io/metadata.name"]] = .string(name)
            }
        case "networking.k8s.io/ingresses":
            if object["status"] == nil { object["status"] = ["loadBalancer": [:]] }
        default:
            break
        }
    }

    /// The ServiceAccount admission plugin's projected token volume, mounted in every container.
    static func addServiceAccountVolume(_ spec: inout JSON) {
        if spec["automountServiceAccountToken"]?.bool == false { return }
        let volumes = spec["volumes"]?.array ?? []
        if volumes.contains(where: { $0["name"]?.string?.hasPrefix("kube-api-access-") == true }) { return }
        let name = "kube-api-access-" + Names.randomSuffix(5)
        let volume: JSON = [
            "name": .string(name),
            "projected": [
                "defaultMode": 420,
                "sources": [
                    ["serviceAccountToken": ["expirationSeconds": 3607, "path": "token"]],
                    ["configMap": ["items": [["key": "ca.crt", "path": "ca.crt"]], "name": "kube-root-ca.crt"]],
                    [
                        "downwardAPI": [
                            "items": [["fieldRef": ["apiVersion": "v1", "fieldPath": "metadata.namespace"], "path": "namespace"]]
                        ]
                    ],
                ],
            ],
        ]
        spec["volumes"] = .array(volumes + [volume])
        if let containers = spec["containers"]?.array {
            spec["containers"] = .array(
                containers.map { container in
                    var container = container
                    let mounts = container["volumeMounts"]?.array ?? []
                    container["volumeMounts"] = .array(
                        mounts + [
                            [
                                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": .string(name),
                                "readOnly": true,
                            ]
                        ])
                    return container
                })
        }
    }

    /// The DefaultTolerationSeconds admission plugin's tolerations.
    static func addDefaultTolerations(_ spec: inout JSON) {
        var tolerations = spec["tolerations"]?.array ?? []
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
        where !tolerations.contains(where: { $0["key"]?.string == key }) {
            tolerations.append(["effect": "NoExecute", "key": .string(key), "operator": "Exists", "tolerationSeconds": 300])
        }
        spec["tolerations"] = .array(tolerations)
    }

    /// BestEffort without requests or limits, Guaranteed when every container's limits equal its
    /// requests (cpu and memory), Burstable otherwise.
    static func qosClass(_ spec: JSON) -> String {
        let containers = spec["containers"]?.array ?? []
        let resources = containers.map { $0["resources"] ?? [:] }
        if resources.allSatisfy({ ($0["requests"]?.object?.isEmpty ?? true) && ($0["limits"]?.object?.isEmpty ?? true) }) {
            return "BestEffort"
        }
        let guaranteed = resources.allSatisfy { resource in
            guard let limits = resource["limits"]?.object, limits["cpu"] != nil, limits["memory"] != nil else { return false }
            let requests = resource["requests"]?.object ?? limits
            return requests["cpu"] == limits["cpu"] && requests["memory"] == limits["memory"]
        }
        return guaranteed ? "Guaranteed" : "Burstable"
    }

    private static func defaultTemplate(_ object: inout JSON, at path: [String]) {
        guard var template = object[path: path] else { return }
        if template[path: ["metadata", "creationTimestamp"]] == nil { template[path: ["metadata", "creationTimestamp"]] = .null }
        if var spec = template["spec"] {
            defaultPodSpec(&spec)
            template["spec"] = spec
        }
        object[path: path] = template
    }

    static func defaultPodSpec(_ spec: inout JSON) {
        if spec["restartPolicy"] == nil { spec["restartPolicy"] = "Always" }
        if spec["terminationGracePeriodSeconds"] == nil { spec["terminationGracePeriodSeconds"] = 30 }
        if spec["dnsPolicy"] == nil { spec["dnsPolicy"] = "ClusterFirst" }
        if spec["securityContext"] == nil { spec["securityContext"] = [:] }
        if spec["schedulerName"] == nil { spec["schedulerName"] = "default-scheduler" }
        for field in ["containers", "initContainers"] {
            guard let containers = spec[field]?.array else { continue }
            spec[field] = .array(containers.map(defaultContainer))
        }
    }

    private static func defaultContainer(_ container: JSON) -> JSON {
        var container = container
        if container["terminationMessagePath"] == nil { container["terminationMessagePath"] = "/dev/termination-log" }
        if container["terminationMessagePolicy"] == nil { container["terminationMessagePolicy"] = "File" }
        if container["resources"] == nil { container["resources"] = [:] }
        if container["imagePullPolicy"] == nil {
            let image = container["image"]?.string ?? ""
            let lastPart = image.split(separator: "/").last.map(String.init) ?? image
            let tagged = lastPart.contains(":") || image.contains("@")
            container["imagePullPolicy"] = (!tagged || lastPart.hasSuffix(":latest")) ? "Always" : "IfNotPresent"
        }
        if let ports = container["ports"]?.array {
            container["ports"] = .array(
                ports.map { port in
                    var port = port
                    if port["protocol"] == nil { port["protocol"] = "TCP" }
                    return port
                })
        }
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            guard var spec = container[probe] else { continue }
            if spec["timeoutSeconds"] == nil { spec["timeoutSeconds"] = 1 }
            if spec["periodSeconds"] == nil { spec["periodSeconds"] = 10 }
            if spec["successThreshold"] == nil { spec["successThreshold"] = 1 }
            if spec["failureThreshold"] == nil { spec["failureThreshold"] = 3 }
            if spec["httpGet"] != nil, spec[path: ["httpGet", "scheme"]] == nil { spec[path: ["httpGet", "scheme"]] = "HTTP" }
            container[probe] = spec
        }
        return container
    }

    // MARK: Validation

    typealias Cause = (reason: String, message: String, field: String)

    static func validate(_ object: JSON, old: JSON?, type: ResourceType) throws(APIError) {
        let name = object[path: ["metadata", "name"]]?.string ?? ""
        var causes: [Cause] = []
        if old == nil, !name.isEmpty, !isSubdomain(name) {
            causes.append(
                (
                    "FieldValueInvalid",
                    "Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "metadata.name"
                ))
        }
        switch type.storeKey {
        case "apps/deployments", "apps/replicasets":
            let selector = object[path: ["spec", "selector"]]
            if selector == nil || selector == .emptyObject {
                causes.append(("FieldValueRequired", "Required value", "spec.selector"))
            } else if let parsed = LabelSelector(object: selector),
                !parsed.matches(object[path: ["spec", "template", "metadata", "labels"]]?.stringMap ?? [:])
            {
                let labels = object[path: ["spec", "template", "metadata", "labels"]]?.stringMap ?? [:]
                let shown = labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ", ")
                causes.append(
                    (
                        "FieldValueInvalid",
                        "Invalid value: map[string]string{\(shown)}: `selector` does not match template `labels`",
                        "spec.template.metadata.labels"
                    ))
            }
            if let old, let oldSelector = old[path: ["spec", "selector"]], oldSelector != selector {
                causes.append(
                    (
                        "FieldValueInvalid",
                        "Invalid value: \(describeSelector(selector)): field is immutable", "spec.selector"
                    ))
            }
            if let replicas = object[path: ["spec", "replicas"]]?.int, replicas < 0 {
                causes.append(
                    ("FieldValueInvalid", "Invalid value: \(replicas): must be greater than or equal to 0", "spec.replicas"))
            }
            causes += validateContainers(object[path: ["spec", "template", "spec", "containers"]], field: "spec.template.spec.containers")
        case "/pods":
            causes += validateContainers(object[path: ["spec", "containers"]], field: "spec.containers")
        case "/services":
            for (index, port) in (object[path: ["spec", "ports"]]?.array ?? []).enumerated() {
                if port["port"]?.int == nil {
                    causes.append(("FieldValueRequired", "Required value", "spec.ports[\(index)].port"))
                }
            }
        case "apiextensions.k8s.io/customresourcedefinitions":
            let group = object[path: ["spec", "group"]]?.string ?? ""
            if group.hasSuffix(".k8s.io") || group == "k8s.io" || group.hasSuffix(".kubernetes.io") {
                if object[path: ["metadata", "annotations", "api-approved.kubernetes.io"]] == nil {
                    causes.append(
                        (
                            "FieldValueRequired",
                            "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
                            "metadata.annotations[api-approved.kubernetes.io]"
                        ))
                }
            }
            let plural = object[path: ["spec", "names", "plural"]]?.string ?? ""
            if !name.isEmpty, name != "\(plural).\(group)" {
                causes.append(
                    ("FieldValueInvalid", "Invalid value: \"\(name)\": must be spec.names.plural+\".\"+spec.group", "metadata.name"))
            }
        default:
            break
        }
        if !causes.isEmpty { throw APIError.invalid(type, name, causes: causes) }
    }

    private static func validateContainers(_ containers: JSON?, field: String) -> [Cause] {
        guard let list = containers?.array, !list.isEmpty else {
            return [("FieldValueRequired", "Required value", field)]
        }
        var causes: [Cause] = []
        for (index, container) in list.enumerated() {
            if container["name"]?.string?.isEmpty ?? true {
                causes.append(("FieldValueRequired", "Required value", "\(field)[\(index)].name"))
            }
            if container["image"]?.string?.isEmpty ?? true {
                causes.append(("FieldValueRequired", "Required value", "\(field)[\(index)].image"))
            }
        }
        return causes
    }

    private static func describeSelector(_ selector: JSON?) -> String {
        let labels = selector?["matchLabels"]?.stringMap ?? [:]
        let shown = labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ", ")
        return "v1.LabelSelector{MatchLabels:map[string]string{\(shown)}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    }

    static func isSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last else { return false }
            return label.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
                && first != "-" && last != "-"
        }
    }
}
