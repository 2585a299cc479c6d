import Foundation

/// Server-side printing: the `meta.k8s.io/v1` Table `kubectl get` asks for, with the columns the
/// apiserver's printers give each kind.
enum Tables {
    typealias Column = (name: String, type: String, priority: Int)

    static func columns(_ type: ResourceType) -> [Column] {
        switch type.storeKey {
        case "apps/deployments":
            [
                ("Ready", "string", 0), ("Up-to-date", "string", 0), ("Available", "string", 0), ("Age", "string", 0),
                ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1),
            ]
        case "apps/replicasets":
            [
                ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0), ("Age", "string", 0),
                ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1),
            ]
        case "/pods":
            [
                ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), ("Age", "string", 0),
                ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1), ("Readiness Gates", "string", 1),
            ]
        case "/services":
            [
                ("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0), ("Port(s)", "string", 0),
                ("Age", "string", 0), ("Selector", "string", 1),
            ]
        case "/namespaces": [("Status", "string", 0), ("Age", "string", 0)]
        case "/configmaps": [("Data", "integer", 0), ("Age", "string", 0)]
        case "/secrets": [("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)]
        case "/endpoints": [("Endpoints", "string", 0), ("Age", "string", 0)]
        case "networking.k8s.io/ingresses":
            [("Class", "string", 0), ("Hosts", "string", 0), ("Address", "string", 0), ("Ports", "string", 0), ("Age", "string", 0)]
        default: [("Age", "string", 0)]
        }
    }

    static func cells(_ object: JSON, _ type: ResourceType) -> [JSON] {
        let name = JSON.string(object[path: ["metadata", "name"]]?.string ?? "")
        let age = JSON.string(age(object[path: ["metadata", "creationTimestamp"]]?.string))
        let spec = object["spec"] ?? [:]
        let status = object["status"] ?? [:]
        func count(_ value: JSON?) -> Int { value?.int ?? 0 }
        func containers(_ podSpec: JSON?) -> (names: String, images: String) {
            let list = podSpec?["containers"]?.array ?? []
            return (
                list.compactMap { $0["name"]?.string }.joined(separator: ","),
                list.compactMap { $0["image"]?.string }.joined(separator: ",")
            )
        }
        func selector(_ value: JSON?) -> String {
            let labels = value?["matchLabels"]?.stringMap ?? value?.stringMap ?? [:]
            return labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        switch type.storeKey {
        case "apps/deployments":
            let (names, images) = containers(spec[path: ["template", "spec"]])
            return [
                name, .string("\(count(status["readyReplicas"]))/\(count(spec["replicas"]))"),
                .int(count(status["updatedReplicas"])), .int(count(status["availableReplicas"])), age, .string(names),
                .string(images), .string(selector(spec["selector"])),
            ]
        case "apps/replicasets":
            let (names, images) = containers(spec[path: ["template", "spec"]])
            return [
                name, .int(count(spec["replicas"])), .int(count(status["replicas"])), .int(count(status["readyReplicas"])), age,
                .string(names), .string(images), .string(selector(spec["selector"])),
            ]
        case "/pods":
            let statuses = status["containerStatuses"]?.array ?? []
            let ready = statuses.filter { $0["ready"]?.bool == true }.count
            let total = spec["containers"]?.array?.count ?? 0
            var phase = status["phase"]?.string ?? "Pending"
            for container in statuses {
                if let reason = container[path: ["state", "waiting", "reason"]]?.string { phase = reason }
                if let reason = container[path: ["state", "terminated", "reason"]]?.string { phase = reason }
            }
            if object[path: ["metadata", "deletionTimestamp"]] != nil { phase = "Terminating" }
            let restarts = statuses.reduce(0) { $0 + count($1["restartCount"]) }
            return [
                name, .string("\(ready)/\(total)"), .string(phase), .string(String(restarts)), age,
                .string(status["podIP"]?.string ?? "<none>"), .string(spec["nodeName"]?.string ?? "<none>"), "<none>", "<none>",
            ]
        case "/services":
            let serviceType = spec["type"]?.string ?? "ClusterIP"
            let external =
                (status[path: ["loadBalancer", "ingress"]]?.array ?? []).compactMap { $0["ip"]?.string }.joined(separator: ",")
            let ports = (spec["ports"]?.array ?? []).map { port -> String in
                let node = port["nodePort"]?.int.map { ":\($0)" } ?? ""
                return "\(count(port["port"]))\(node)/\(port["protocol"]?.string ?? "TCP")"
            }
            return [
                name, .string(serviceType), .string(spec["clusterIP"]?.string ?? "<none>"),
                .string(external.isEmpty ? (serviceType == "LoadBalancer" ? "<pending>" : "<none>") : external),
                .string(ports.isEmpty ? "<none>" : ports.joined(separator: ",")), age,
                .string(spec["selector"].map { selector($0) } ?? "<none>"),
            ]
        case "/namespaces":
            return [name, .string(status["phase"]?.string ?? "Active"), age]
        case "/configmaps":
            return [name, .int((object["data"]?.object?.count ?? 0) + (object["binaryData"]?.object?.count ?? 0)), age]
        case "/secrets":
            return [name, .string(object["type"]?.string ?? "Opaque"), .int(object["data"]?.object?.count ?? 0), age]
        case "/endpoints":
            var addresses: [String] = []
            for subset in object["subsets"]?.array ?? [] {
                for address in subset["addresses"]?.array ?? [] {
                    for port in subset["ports"]?.array ?? [] {
                        addresses.append("\(address["ip"]?.string ?? ""):\(count(port["port"]))")
                    }
                }
            }
            return [name, .string(addresses.isEmpty ? "<none>" : addresses.joined(separator: ",")), age]
        case "networking.k8s.io/ingresses":
            let hosts = (spec["rules"]?.array ?? []).compactMap { $0["host"]?.string }
            let address =
                (status[path: ["loadBalancer", "ingress"]]?.array ?? []).compactMap { $0["ip"]?.string }.joined(separator: ",")
            return [
                name, .string(spec["ingressClassName"]?.string ?? "<none>"),
                .string(hosts.isEmpty ? "*" : hosts.joined(separator: ",")), .string(address), "80", age,
            ]
        default:
            return [name, age]
        }
    }

    static func table(_ objects: [JSON], _ type: ResourceType, resourceVersion: String) -> JSON {
        var definitions: [JSON] = [
            [
                "name": "Name", "type": "string", "format": "name",
                "description": "Name must be unique within a namespace.", "priority": 0,
            ]
        ]
        for column in columns(type) {
            definitions.append(
                [
                    "name": .string(column.name), "type": .string(column.type), "format": "", "description": "",
                    "priority": .int(column.priority),
                ])
        }
        let rows: [JSON] = objects.map { object in
            var metadata = object["metadata"] ?? [:]
            metadata["managedFields"] = nil
            return [
                "cells": .array(cells(object, type)),
                "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata],
            ]
        }
        return [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": ["resourceVersion": .string(resourceVersion)],
            "columnDefinitions": .array(definitions), "rows": .array(rows),
        ]
    }

    /// kubectl's short ages: `58s`, `4m10s`, `25m`, `5h3m`, `3d`.
    static func age(_ timestamp: String?) -> String {
        guard let created = Clock.parse(timestamp) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(created)))
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        return "\(hours / 24)d"
    }
}
