import Foundation

/// The controllers kube-controller-manager runs, for the kinds kube-sim serves: deployments (rolling
/// and recreate updates, revisions, conditions, progress deadlines), replica sets, endpoints and
/// endpoint slices, and the status of custom resource definitions.
///
/// Each pass reconciles every object; a pass runs after any write and at least every 250 ms (for
/// deadlines). Writes happen only when something changed.
public final class ControllerManager: Sendable {
    let store: Store

    public init(store: Store) { self.store = store }

    public func run() async {
        // One pass at a time: a pass reads the sets' status that the pass before it wrote (two at
        // once let a deployment shrink an old set on a count its own pass had already cut).
        // Passes are wanted after any write and every 250 ms; wishes made during a pass coalesce.
        let (wanted, wish) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let changes = await store.changes()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in changes { wish.yield() }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    wish.yield()
                }
            }
            group.addTask {
                for await _ in wanted { await self.pass() }
            }
            await group.next()
            group.cancelAll()
            wish.finish()
        }
    }

    /// One reconciliation of everything (tests call it directly).
    public func pass() async {
        let catalog = await store.catalog
        guard let deployments = catalog.find(group: "apps", resource: "deployments"),
            let replicaSets = catalog.find(group: "apps", resource: "replicasets"),
            let pods = catalog.find(group: "", resource: "pods"),
            let services = catalog.find(group: "", resource: "services"),
            let endpoints = catalog.find(group: "", resource: "endpoints"),
            let slices = catalog.find(group: "discovery.k8s.io", resource: "endpointslices"),
            let crds = catalog.find(group: "apiextensions.k8s.io", resource: "customresourcedefinitions")
        else { return }
        let kinds = Kinds(
            deployments: deployments, replicaSets: replicaSets, pods: pods, services: services, endpoints: endpoints,
            slices: slices)
        for deployment in await store.list(deployments, namespace: nil).items {
            await syncDeployment(deployment, kinds)
        }
        for replicaSet in await store.list(replicaSets, namespace: nil).items {
            await syncReplicaSet(replicaSet, kinds)
        }
        for service in await store.list(services, namespace: nil).items {
            await syncEndpoints(service, kinds)
        }
        // The scheduler: every pod goes to the one node.
        for pod in await store.list(pods, namespace: nil).items
        where pod[path: ["spec", "nodeName"]] == nil && pod[path: ["metadata", "deletionTimestamp"]] == nil {
            var bound = pod
            bound[path: ["spec", "nodeName"]] = .string(Kubelet.nodeName)
            _ = try? await update(pods, bound, writer: Writer(manager: "kube-scheduler"))
        }
        for crd in await store.list(crds, namespace: nil).items where crd[path: ["status", "conditions"]] == nil {
            await establish(crd, crds)
        }
    }

    struct Kinds {
        var deployments: ResourceType
        var replicaSets: ResourceType
        var pods: ResourceType
        var services: ResourceType
        var endpoints: ResourceType
        var slices: ResourceType
    }

    // MARK: Helpers

    static func name(_ object: JSON) -> String { object[path: ["metadata", "name"]]?.string ?? "" }
    static func namespace(_ object: JSON) -> String? { object[path: ["metadata", "namespace"]]?.string }
    static func uid(_ object: JSON) -> String { object[path: ["metadata", "uid"]]?.string ?? "" }

    static func isControlled(_ object: JSON, by owner: JSON) -> Bool {
        (object[path: ["metadata", "ownerReferences"]]?.array ?? []).contains {
            $0["controller"]?.bool == true && $0["uid"]?.string == uid(owner)
        }
    }

    static func ownerReference(_ owner: JSON) -> JSON {
        [
            "apiVersion": owner["apiVersion"] ?? "", "kind": owner["kind"] ?? "", "name": .string(name(owner)),
            "uid": .string(uid(owner)), "controller": true, "blockOwnerDeletion": true,
        ]
    }

    static func revision(_ object: JSON) -> Int {
        Int(object[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.string ?? "") ?? 0
    }

    static func isReady(_ pod: JSON) -> Bool {
        (pod[path: ["status", "conditions"]]?.array ?? []).contains {
            $0["type"]?.string == "Ready" && $0["status"]?.string == "True"
        }
    }

    static func isAvailable(_ pod: JSON, minReadySeconds: Int) -> Bool {
        guard isReady(pod) else { return false }
        guard minReadySeconds > 0 else { return true }
        let ready = (pod[path: ["status", "conditions"]]?.array ?? []).first { $0["type"]?.string == "Ready" }
        guard let since = Clock.parse(ready?["lastTransitionTime"]?.string) else { return false }
        return Date().timeIntervalSince(since) >= Double(minReadySeconds)
    }

    /// The template without the pod-template-hash label (how a ReplicaSet's template is compared).
    static func bareTemplate(_ template: JSON?) -> JSON {
        var template = template ?? [:]
        template[path: ["metadata", "labels", "pod-template-hash"]] = nil
        if template[path: ["metadata", "labels"]]?.object?.isEmpty == true { template[path: ["metadata", "labels"]] = nil }
        return template
    }

    /// `25%` of `total`, rounded up (surge) or down (unavailable); or an integer.
    static func resolve(_ value: JSON?, total: Int, roundUp: Bool, fallback: Int) -> Int {
        switch value {
        case .int(let number): return number
        case .string(let text) where text.hasSuffix("%"):
            let percent = Double(text.dropLast()) ?? 0
            let exact = percent * Double(total) / 100
            return roundUp ? Int(exact.rounded(.up)) : Int(exact.rounded(.down))
        case .string(let text): return Int(text) ?? fallback
        default: return fallback
        }
    }

    static func condition(_ object: JSON, _ type: String) -> JSON? {
        (object[path: ["status", "conditions"]]?.array ?? []).first { $0["type"]?.string == type }
    }

    // MARK: Deployments

    func syncDeployment(_ deployment: JSON, _ kinds: Kinds) async {
        let namespace = Self.namespace(deployment)
        let name = Self.name(deployment)
        let spec = deployment["spec"] ?? [:]
        let replicas = spec["replicas"]?.int ?? 1
        let template = spec["template"] ?? [:]
        let owned = await store.list(kinds.replicaSets, namespace: namespace).items.filter {
            Self.isControlled($0, by: deployment)
        }
        var newSet = owned.first { Self.bareTemplate($0[path: ["spec", "template"]]) == Self.bareTemplate(template) }
        var olds = owned.filter { Self.uid($0) != newSet.map(Self.uid) }
        let maxRevision = owned.map(Self.revision).max() ?? 0
        let paused = spec["paused"]?.bool == true
        let strategy = spec[path: ["strategy", "type"]]?.string ?? "RollingUpdate"
        let surge =
            strategy == "Recreate"
            ? 0 : Self.resolve(spec[path: ["strategy", "rollingUpdate", "maxSurge"]], total: replicas, roundUp: true, fallback: 1)
        var unavailable =
            strategy == "Recreate"
            ? 0
            : Self.resolve(
                spec[path: ["strategy", "rollingUpdate", "maxUnavailable"]], total: replicas, roundUp: false, fallback: 0)
        if strategy != "Recreate", surge == 0, unavailable == 0 { unavailable = 1 }
        var progressReason: (reason: String, message: String)?
        var deploymentAnnotations = deployment[path: ["metadata", "annotations"]]?.stringMap ?? [:]

        if !paused {
            let hash = Names.templateHash(
                Self.bareTemplate(template), collisionCount: deployment[path: ["status", "collisionCount"]]?.int ?? 0)
            if newSet == nil {
                let initial: Int
                if strategy == "Recreate" {
                    initial =
                        olds.contains {
                            ($0[path: ["spec", "replicas"]]?.int ?? 0) > 0 || ($0[path: ["status", "replicas"]]?.int ?? 0) > 0
                        } ? 0 : replicas
                } else {
                    let total = olds.reduce(0) { $0 + ($1[path: ["spec", "replicas"]]?.int ?? 0) }
                    initial = olds.isEmpty ? replicas : max(0, min(replicas, replicas + surge - total))
                }
                var set: JSON = [
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": [
                        "name": .string("\(name)-\(hash)"), "namespace": .string(namespace ?? "default"),
                        "labels": .strings(
                            (template[path: ["metadata", "labels"]]?.stringMap ?? [:]).merging(["pod-template-hash": hash]) { $1 }),
                        "annotations": .strings(
                            Self.copiedAnnotations(deploymentAnnotations).merging([
                                "deployment.kubernetes.io/revision": String(maxRevision + 1),
                                "deployment.kubernetes.io/desired-replicas": String(replicas),
                                "deployment.kubernetes.io/max-replicas": String(replicas + surge),
                            ]) { $1 }),
                        "ownerReferences": [Self.ownerReference(deployment)],
                    ],
                    "spec": [
                        "replicas": .int(initial),
                        "minReadySeconds": spec["minReadySeconds"] ?? 0,
                        "selector": spec["selector"] ?? [:],
                        "template": template,
                    ],
                ]
                set[path: ["spec", "selector", "matchLabels", "pod-template-hash"]] = .string(hash)
                set[path: ["spec", "template", "metadata", "labels", "pod-template-hash"]] = .string(hash)
                if set[path: ["spec", "minReadySeconds"]] == .int(0) { set[path: ["spec", "minReadySeconds"]] = nil }
                Admission.applyDefaults(&set, type: kinds.replicaSets)
                guard
                    let created = try? await store.create(kinds.replicaSets, namespace: namespace, object: set, writer: .controllerManager)
                else { return }
                newSet = created
                progressReason = ("NewReplicaSetCreated", "Created new replica set \"\(Self.name(created))\"")
            } else if var found = newSet, Self.revision(found) < maxRevision {
                // A rollback to an earlier template: that set becomes the newest revision again.
                var annotations = found[path: ["metadata", "annotations"]]?.stringMap ?? [:]
                let history = annotations["deployment.kubernetes.io/revision-history"].map { $0 + "," } ?? ""
                annotations["deployment.kubernetes.io/revision-history"] = history + String(Self.revision(found))
                annotations["deployment.kubernetes.io/revision"] = String(maxRevision + 1)
                annotations.merge(Self.copiedAnnotations(deploymentAnnotations)) { $1 }
                found[path: ["metadata", "annotations"]] = .strings(annotations)
                if let saved = try? await update(kinds.replicaSets, found) { newSet = saved }
                progressReason = ("FoundNewReplicaSet", "Found new replica set \"\(Self.name(found))\"")
            } else if var found = newSet {
                // Annotations the deployment carries reach its newest set.
                var annotations = found[path: ["metadata", "annotations"]]?.stringMap ?? [:]
                let copied = Self.copiedAnnotations(deploymentAnnotations)
                let merged = annotations.merging(copied) { $1 }
                if merged != annotations {
                    annotations = merged
                    found[path: ["metadata", "annotations"]] = .strings(annotations)
                    if let saved = try? await update(kinds.replicaSets, found) { newSet = saved }
                }
            }
        }
        guard var newSet = newSet ?? owned.max(by: { Self.revision($0) < Self.revision($1) }) else { return }
        if paused { olds = owned.filter { Self.uid($0) != Self.uid(newSet) } }

        // Scaling.
        if !paused {
            let newReplicas = newSet[path: ["spec", "replicas"]]?.int ?? 0
            if strategy == "Recreate" {
                for var old in olds where (old[path: ["spec", "replicas"]]?.int ?? 0) > 0 {
                    old[path: ["spec", "replicas"]] = 0
                    _ = try? await update(kinds.replicaSets, old)
                }
                let oldPods = olds.reduce(0) { $0 + ($1[path: ["status", "replicas"]]?.int ?? 0) }
                if oldPods == 0, newReplicas != replicas {
                    newSet = await scale(newSet, to: replicas, desired: replicas, max: replicas, kinds) ?? newSet
                }
            } else {
                let all = [newSet] + olds
                let total = all.reduce(0) { $0 + ($1[path: ["spec", "replicas"]]?.int ?? 0) }
                if newReplicas > replicas {
                    newSet = await scale(newSet, to: replicas, desired: replicas, max: replicas + surge, kinds) ?? newSet
                } else if newReplicas < replicas, total < replicas + surge {
                    let up = min(replicas + surge - total, replicas - newReplicas)
                    newSet = await scale(newSet, to: newReplicas + up, desired: replicas, max: replicas + surge, kinds) ?? newSet
                }
                // Old sets shrink while enough pods stay available.
                let minAvailable = replicas - unavailable
                let allSpec = ([newSet] + olds).reduce(0) { $0 + ($1[path: ["spec", "replicas"]]?.int ?? 0) }
                let newUnavailable = max(
                    0, (newSet[path: ["spec", "replicas"]]?.int ?? 0) - (newSet[path: ["status", "availableReplicas"]]?.int ?? 0))
                // As kube-controller-manager's reconcileOldReplicaSets: nothing shrinks unless the
                // sets' replicas exceed what must stay available plus the new set's unavailable
                // ones. (Without this gate, an old set's status that still counts a pod just scaled
                // away let the next pass cut it again, below minimum availability.)
                let maxScaledDown = allSpec - minAvailable - newUnavailable
                var budget = maxScaledDown
                // Unhealthy old replicas go first.
                for (index, old) in olds.enumerated() where budget > 0 {
                    let current = old[path: ["spec", "replicas"]]?.int ?? 0
                    let healthy = old[path: ["status", "availableReplicas"]]?.int ?? 0
                    let unhealthy = max(0, current - healthy)
                    let cut = min(unhealthy, budget)
                    if cut > 0 {
                        olds[index] = await scale(old, to: current - cut, desired: replicas, max: replicas + surge, kinds) ?? old
                        budget -= cut
                    }
                }
                let available = ([newSet] + olds).reduce(0) { $0 + ($1[path: ["status", "availableReplicas"]]?.int ?? 0) }
                var downBy = maxScaledDown > 0 ? available - minAvailable : 0
                for (index, old) in olds.sorted(by: { Self.revision($0) < Self.revision($1) }).enumerated() where downBy > 0 {
                    let current = old[path: ["spec", "replicas"]]?.int ?? 0
                    guard current > 0 else { continue }
                    let cut = min(current, downBy)
                    if let position = olds.firstIndex(where: { Self.uid($0) == Self.uid(old) }) {
                        olds[position] = await scale(old, to: current - cut, desired: replicas, max: replicas + surge, kinds) ?? old
                    }
                    downBy -= cut
                    _ = index
                }
            }
            // Old, empty sets beyond the history limit go.
            let limit = spec["revisionHistoryLimit"]?.int ?? 10
            let empty = olds.filter {
                ($0[path: ["spec", "replicas"]]?.int ?? 0) == 0 && ($0[path: ["status", "replicas"]]?.int ?? 0) == 0
            }.sorted { Self.revision($0) < Self.revision($1) }
            if empty.count > limit {
                for old in empty.prefix(empty.count - limit) {
                    _ = try? await store.delete(kinds.replicaSets, namespace: namespace, name: Self.name(old))
                }
            }
        } else if (newSet[path: ["spec", "replicas"]]?.int ?? 0) != replicas,
            olds.allSatisfy({ ($0[path: ["spec", "replicas"]]?.int ?? 0) == 0 })
        {
            newSet = await scale(newSet, to: replicas, desired: replicas, max: replicas + surge, kinds) ?? newSet
        }

        // Status.
        let sets = [newSet] + olds
        func sum(_ field: String) -> Int { sets.reduce(0) { $0 + ($1[path: ["status", field]]?.int ?? 0) } }
        let total = sum("replicas")
        let updated = newSet[path: ["status", "replicas"]]?.int ?? 0
        let ready = sum("readyReplicas")
        let available = sum("availableReplicas")
        var status: JSON = ["observedGeneration": deployment[path: ["metadata", "generation"]] ?? 1]
        if total > 0 { status["replicas"] = .int(total) }
        if updated > 0 { status["updatedReplicas"] = .int(updated) }
        if ready > 0 { status["readyReplicas"] = .int(ready) }
        if available > 0 { status["availableReplicas"] = .int(available) }
        // As kube-controller-manager counts it: every pod (surge included) that is not available.
        if max(total, replicas) - available > 0 { status["unavailableReplicas"] = .int(max(total, replicas) - available) }
        if let collisions = deployment[path: ["status", "collisionCount"]] { status["collisionCount"] = collisions }

        let now = Clock.timestamp()
        var conditions = deployment[path: ["status", "conditions"]]?.array ?? []
        func set(_ type: String, _ state: String, _ reason: String, _ message: String, touch: Bool) {
            if let index = conditions.firstIndex(where: { $0["type"]?.string == type }) {
                var condition = conditions[index]
                let changed = condition["status"]?.string != state
                if changed { condition["lastTransitionTime"] = .string(now) }
                if changed || touch || condition["reason"]?.string != reason { condition["lastUpdateTime"] = .string(now) }
                condition["status"] = .string(state)
                condition["reason"] = .string(reason)
                condition["message"] = .string(message)
                conditions[index] = condition
            } else {
                conditions.append(
                    [
                        "type": .string(type), "status": .string(state), "reason": .string(reason), "message": .string(message),
                        "lastUpdateTime": .string(now), "lastTransitionTime": .string(now),
                    ])
            }
        }
        if available >= replicas - unavailable {
            set("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", touch: false)
        } else {
            set("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", touch: false)
        }
        let setName = Self.name(newSet)
        let previous = deployment["status"] ?? [:]
        let progressing = Self.condition(deployment, "Progressing")
        let complete = updated == replicas && total == replicas && available == replicas
        if paused {
            set("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", touch: false)
        } else if let progressReason {
            set("Progressing", "True", progressReason.reason, progressReason.message, touch: true)
        } else if complete {
            if progressing?["reason"]?.string != "NewReplicaSetAvailable" {
                set("Progressing", "True", "NewReplicaSetAvailable", "ReplicaSet \"\(setName)\" has successfully progressed.", touch: true)
            }
        } else {
            let madeProgress =
                updated > (previous["updatedReplicas"]?.int ?? 0) || ready > (previous["readyReplicas"]?.int ?? 0)
                || available > (previous["availableReplicas"]?.int ?? 0)
                || (total - updated) < ((previous["replicas"]?.int ?? 0) - (previous["updatedReplicas"]?.int ?? 0))
                || progressing?["reason"]?.string == "DeploymentPaused" || progressing?["reason"]?.string == "NewReplicaSetAvailable"
                || progressing == nil
            let deadline = spec["progressDeadlineSeconds"]?.int ?? 600
            let lastUpdate = Clock.parse(progressing?["lastUpdateTime"]?.string) ?? Date()
            if madeProgress {
                set("Progressing", "True", "ReplicaSetUpdated", "ReplicaSet \"\(setName)\" is progressing.", touch: true)
            } else if progressing?["reason"]?.string != "ProgressDeadlineExceeded",
                Date().timeIntervalSince(lastUpdate) > Double(deadline)
            {
                set("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet \"\(setName)\" has timed out progressing.", touch: true)
            }
        }
        // Kubernetes lists Available before Progressing.
        conditions.sort { ($0["type"]?.string == "Available" ? 0 : 1) < ($1["type"]?.string == "Available" ? 0 : 1) }
        status["conditions"] = .array(conditions)

        var updatedDeployment = deployment
        updatedDeployment["status"] = status
        if !paused || deploymentAnnotations["deployment.kubernetes.io/revision"] == nil {
            let revision = String(Self.revision(newSet))
            if deploymentAnnotations["deployment.kubernetes.io/revision"] != revision {
                deploymentAnnotations["deployment.kubernetes.io/revision"] = revision
                updatedDeployment[path: ["metadata", "annotations"]] = .strings(deploymentAnnotations)
            }
        }
        if updatedDeployment != deployment {
            _ = try? await store.update(
                kinds.deployments, namespace: namespace, name: name, object: updatedDeployment, writer: .controllerStatus,
                expectedVersion: deployment[path: ["metadata", "resourceVersion"]]?.string)
        }
    }

    /// The deployment's annotations a ReplicaSet carries (not kubectl's record, not the controller's own).
    static func copiedAnnotations(_ annotations: [String: String]) -> [String: String] {
        annotations.filter { key, _ in
            key != "kubectl.kubernetes.io/last-applied-configuration" && key != "deployment.kubernetes.io/revision"
                && key != "deployment.kubernetes.io/revision-history" && key != "deployment.kubernetes.io/desired-replicas"
                && key != "deployment.kubernetes.io/max-replicas"
        }
    }

    func scale(_ set: JSON, to count: Int, desired: Int, max: Int, _ kinds: Kinds) async -> JSON? {
        var set = set
        set[path: ["spec", "replicas"]] = .int(count)
        set[path: ["metadata", "annotations", "deployment.kubernetes.io/desired-replicas"]] = .string(String(desired))
        set[path: ["metadata", "annotations", "deployment.kubernetes.io/max-replicas"]] = .string(String(max))
        return try? await update(kinds.replicaSets, set)
    }

    func update(_ type: ResourceType, _ object: JSON, writer: Writer = .controllerManager) async throws -> JSON {
        try await store.update(
            type, namespace: Self.namespace(object), name: Self.name(object), object: object, writer: writer,
            expectedVersion: object[path: ["metadata", "resourceVersion"]]?.string)
    }

    // MARK: ReplicaSets

    func syncReplicaSet(_ set: JSON, _ kinds: Kinds) async {
        let namespace = Self.namespace(set)
        let wanted = set[path: ["spec", "replicas"]]?.int ?? 1
        let all = await store.list(kinds.pods, namespace: namespace).items.filter { Self.isControlled($0, by: set) }
        let active = all.filter { $0[path: ["metadata", "deletionTimestamp"]] == nil }
        if active.count < wanted {
            for _ in active.count..<wanted {
                let template = set[path: ["spec", "template"]] ?? [:]
                var pod: JSON = [
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": [
                        "generateName": .string("\(Self.name(set))-"), "namespace": .string(namespace ?? "default"),
                        "labels": template[path: ["metadata", "labels"]] ?? [:],
                        "ownerReferences": [Self.ownerReference(set)],
                    ],
                    "spec": template["spec"] ?? [:],
                ]
                if let annotations = template[path: ["metadata", "annotations"]] { pod[path: ["metadata", "annotations"]] = annotations }
                pod[path: ["spec", "nodeName"]] = .string(Kubelet.nodeName)
                Admission.applyDefaults(&pod, type: kinds.pods)
                pod["status"] = [
                    "phase": "Pending", "qosClass": .string(Admission.qosClass(pod["spec"] ?? [:])),
                    "conditions": [
                        ["type": "PodScheduled", "status": "True", "lastProbeTime": nil, "lastTransitionTime": .string(Clock.timestamp())]
                    ],
                ]
                _ = try? await store.create(kinds.pods, namespace: namespace, object: pod, writer: .controllerManager)
            }
        } else if active.count > wanted {
            // Unready pods go first, then the newest.
            let victims = active.sorted { left, right in
                let l = Self.isReady(left)
                let r = Self.isReady(right)
                if l != r { return !l }
                return (left[path: ["metadata", "creationTimestamp"]]?.string ?? "")
                    > (right[path: ["metadata", "creationTimestamp"]]?.string ?? "")
            }.prefix(active.count - wanted)
            for pod in victims {
                let grace = pod[path: ["spec", "terminationGracePeriodSeconds"]]?.int ?? 30
                _ = try? await store.markTerminating(kinds.pods, namespace: namespace, name: Self.name(pod), gracePeriod: grace)
            }
        }
        let current = await store.list(kinds.pods, namespace: namespace).items.filter {
            Self.isControlled($0, by: set) && $0[path: ["metadata", "deletionTimestamp"]] == nil
        }
        let minReady = set[path: ["spec", "minReadySeconds"]]?.int ?? 0
        let ready = current.filter(Self.isReady).count
        let available = current.filter { Self.isAvailable($0, minReadySeconds: minReady) }.count
        var status: JSON = ["replicas": .int(current.count)]
        if !current.isEmpty { status["fullyLabeledReplicas"] = .int(current.count) }
        if ready > 0 { status["readyReplicas"] = .int(ready) }
        if available > 0 { status["availableReplicas"] = .int(available) }
        status["observedGeneration"] = set[path: ["metadata", "generation"]] ?? 1
        if set["status"] != status {
            var updated = set
            updated["status"] = status
            _ = try? await store.update(
                kinds.replicaSets, namespace: namespace, name: Self.name(set), object: updated, writer: .controllerStatus,
                expectedVersion: set[path: ["metadata", "resourceVersion"]]?.string)
        }
    }
}
