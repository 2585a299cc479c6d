import Foundation

extension ControllerManager {
    // MARK: Endpoints

    func syncEndpoints(_ service: JSON, _ kinds: Kinds) async {
        guard let selectorMap = service[path: ["spec", "selector"]]?.stringMap, !selectorMap.isEmpty else { return }
        let namespace = Self.namespace(service)
        let name = Self.name(service)
        let selector = LabelSelector(equalities: selectorMap)
        let pods = await store.list(kinds.pods, namespace: namespace, labels: selector).items.filter {
            $0[path: ["status", "podIP"]]?.string != nil
        }
        .sorted { ($0[path: ["status", "podIP"]]?.string ?? "") < ($1[path: ["status", "podIP"]]?.string ?? "") }
        func address(_ pod: JSON) -> JSON {
            [
                "ip": pod[path: ["status", "podIP"]] ?? "", "nodeName": .string(Kubelet.nodeName),
                "targetRef": [
                    "kind": "Pod", "namespace": .string(namespace ?? "default"), "name": .string(Self.name(pod)),
                    "uid": .string(Self.uid(pod)),
                ],
            ]
        }
        let serving = pods.filter { $0[path: ["metadata", "deletionTimestamp"]] == nil }
        let ready = serving.filter(Self.isReady)
        let notReady = serving.filter { !Self.isReady($0) }
        let ports: [JSON] = (service[path: ["spec", "ports"]]?.array ?? []).map { port in
            var entry: JSON = [
                "port": .int(Self.targetPort(port, pods: serving)), "protocol": port["protocol"] ?? "TCP",
            ]
            if let portName = port["name"] { entry["name"] = portName }
            return entry
        }
        var subset: JSON = ["ports": .array(ports)]
        if !ready.isEmpty { subset["addresses"] = .array(ready.map(address)) }
        if !notReady.isEmpty { subset["notReadyAddresses"] = .array(notReady.map(address)) }
        let subsets: JSON = serving.isEmpty ? .null : .array([subset])
        let labels = service[path: ["metadata", "labels"]] ?? [:]
        if let existing = await store.find(kinds.endpoints, namespace: namespace, name: name) {
            if existing["subsets"] ?? .null != subsets {
                var updated = existing
                updated["subsets"] = subsets == .null ? nil : subsets
                updated[path: ["metadata", "annotations", "endpoints.kubernetes.io/last-change-trigger-time"]] = .string(
                    Clock.timestamp())
                _ = try? await update(kinds.endpoints, updated)
            }
        } else {
            var endpoints: JSON = [
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": [
                    "name": .string(name), "namespace": .string(namespace ?? "default"), "labels": labels,
                    "annotations": ["endpoints.kubernetes.io/last-change-trigger-time": .string(Clock.timestamp())],
                ],
            ]
            if subsets != .null { endpoints["subsets"] = subsets }
            _ = try? await store.create(kinds.endpoints, namespace: namespace, object: endpoints, writer: .controllerManager)
        }
        // The EndpointSlice: one per Service, every serving pod with its conditions.
        let endpointsList: [JSON] = pods.map { pod in
            let terminating = pod[path: ["metadata", "deletionTimestamp"]] != nil
            let isReady = Self.isReady(pod) && !terminating
            return [
                "addresses": [pod[path: ["status", "podIP"]] ?? ""],
                "conditions": ["ready": .bool(isReady), "serving": .bool(Self.isReady(pod)), "terminating": .bool(terminating)],
                "nodeName": .string(Kubelet.nodeName),
                "targetRef": [
                    "kind": "Pod", "namespace": .string(namespace ?? "default"), "name": .string(Self.name(pod)),
                    "uid": .string(Self.uid(pod)),
                ],
            ]
        }
        let sliceSelector = try? LabelSelector(parsing: "kubernetes.io/service-name=\(name)")
        let existingSlice = await store.list(kinds.slices, namespace: namespace, labels: sliceSelector ?? .everything).items.first
        let endpointsValue: JSON = endpointsList.isEmpty ? .null : .array(endpointsList)
        if var slice = existingSlice {
            if (slice["endpoints"] ?? .null) != endpointsValue || slice["ports"] != .array(ports) {
                slice["endpoints"] = endpointsValue == .null ? nil : endpointsValue
                slice[path: ["metadata", "annotations", "endpoints.kubernetes.io/last-change-trigger-time"]] = .string(
                    Clock.timestamp())
                slice["ports"] = .array(ports)
                _ = try? await update(kinds.slices, slice)
            }
        } else {
            var sliceLabels = labels.object ?? [:]
            sliceLabels["kubernetes.io/service-name"] = .string(name)
            sliceLabels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
            var slice: JSON = [
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": [
                    "generateName": .string("\(name)-"), "namespace": .string(namespace ?? "default"),
                    "labels": .object(sliceLabels), "ownerReferences": [Self.ownerReference(service)],
                    "annotations": ["endpoints.kubernetes.io/last-change-trigger-time": .string(Clock.timestamp())],
                ],
                "ports": .array(ports),
            ]
            if endpointsValue != .null { slice["endpoints"] = endpointsValue }
            _ = try? await store.create(kinds.slices, namespace: namespace, object: slice, writer: .controllerManager)
        }
    }

    /// A Service port's target: a number, or a container port's name looked up in the pods.
    static func targetPort(_ port: JSON, pods: [JSON]) -> Int {
        switch port["targetPort"] {
        case .int(let number): return number
        case .string(let name):
            if let number = Int(name) { return number }
            for pod in pods {
                for container in pod[path: ["spec", "containers"]]?.array ?? [] {
                    for containerPort in container["ports"]?.array ?? [] where containerPort["name"]?.string == name {
                        return containerPort["containerPort"]?.int ?? 0
                    }
                }
            }
            return port["port"]?.int ?? 0
        default: return port["port"]?.int ?? 0
        }
    }

    // MARK: Custom resource definitions

    func establish(_ crd: JSON, _ type: ResourceType) async {
        var updated = crd
        let now = Clock.timestamp()
        var conditions: [JSON] = []
        if crd[path: ["metadata", "annotations", "api-approved.kubernetes.io"]]?.string?.hasPrefix("unapproved") == true {
            conditions.append(
                [
                    "type": "KubernetesAPIApprovalPolicyConformant", "status": "False", "reason": "UnapprovedAnnotation",
                    "message": .string(
                        "protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
                    ), "lastTransitionTime": .string(now),
                ])
        }
        conditions.append(
            [
                "type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
                "lastTransitionTime": .string(now),
            ])
        conditions.append(
            [
                "type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted", "lastTransitionTime": .string(now),
            ])
        updated["status"] = [
            "conditions": .array(conditions), "acceptedNames": crd[path: ["spec", "names"]] ?? [:],
            "storedVersions": .array((crd[path: ["spec", "versions"]]?.array ?? []).compactMap { $0["name"] }),
        ]
        _ = try? await store.update(
            type, namespace: nil, name: Self.name(crd), object: updated, writer: .controllerStatus,
            expectedVersion: crd[path: ["metadata", "resourceVersion"]]?.string)
    }
}
