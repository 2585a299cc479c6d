import Foundation
import Testing

@testable import KubeSim

/// The deployment controller's rolling update, pass by pass, in process (no API server, no kubelet).
@Suite("kube-sim's deployment controller")
struct KubeSimControllerTests {
    let catalog = ResourceCatalog.builtIn
    var deployments: ResourceType { catalog.first { $0.resource == "deployments" }! }
    var replicaSets: ResourceType { catalog.first { $0.resource == "replicasets" }! }
    var pods: ResourceType { catalog.first { $0.resource == "pods" }! }

    /// A deployment as the API server stores it (defaults applied, as admission does).
    func deployment(replicas: Int, image: String) -> JSON {
        var object: JSON = [
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
            "spec": [
                "replicas": .int(replicas), "selector": ["matchLabels": ["app": "web"]],
                "template": [
                    "metadata": ["labels": ["app": "web"]],
                    "spec": ["containers": [["name": "web", "image": .string(image)]]],
                ],
            ],
        ]
        Admission.applyDefaults(&object, type: deployments)
        return object
    }

    func sets(_ store: Store) async -> [String: JSON] {
        let items = await store.list(replicaSets, namespace: "default").items
        return Dictionary(
            uniqueKeysWithValues: items.map {
                ($0[path: ["spec", "template", "spec", "containers"]]?.array?.first?["image"]?.string ?? "", $0)
            })
    }

    /// Marks every pod of the namespace Ready, as the kubelet would.
    func markReady(_ store: Store) async throws {
        for var pod in await store.list(pods, namespace: "default").items {
            pod["status"] = [
                "phase": "Running",
                "conditions": [["type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"]],
            ]
            _ = try await store.update(
                pods, namespace: "default", name: pod[path: ["metadata", "name"]]?.string ?? "", object: pod, writer: .kubelet)
        }
    }

    @Test("an old set is not cut below availability on a status that still counts a pod already scaled away")
    func staleStatusDoesNotShrinkTwice() async throws {
        let store = try await Store(stateDirectory: nil)
        let controllers = ControllerManager(store: store)
        let writer = Writer(manager: "kubectl-client-side-apply")
        _ = try await store.create(deployments, namespace: "default", object: deployment(replicas: 3, image: "web:1"), writer: writer)
        await controllers.pass()
        try await markReady(store)
        await controllers.pass()
        #expect(await sets(store)["web:1"]?[path: ["status", "availableReplicas"]]?.int == 3)

        // The release that never becomes ready, at 2 replicas: maxSurge 1, maxUnavailable 0.
        var changed = try await store.get(deployments, namespace: "default", name: "web")
        changed["spec"] = deployment(replicas: 2, image: "web:2-bad")["spec"]
        _ = try await store.update(deployments, namespace: "default", name: "web", object: changed, writer: writer)
        await controllers.pass()
        var old = try #require(await sets(store)["web:1"])
        #expect(old[path: ["spec", "replicas"]]?.int == 2)

        // A status written before the cut (three available) read by the next pass.
        old["status"] = ["replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 2]
        _ = try await store.update(
            replicaSets, namespace: "default", name: old[path: ["metadata", "name"]]?.string ?? "", object: old,
            writer: .controllerStatus)
        await controllers.pass()
        let after = await sets(store)
        #expect(after["web:2-bad"]?[path: ["spec", "replicas"]]?.int == 1)
        #expect(after["web:1"]?[path: ["spec", "replicas"]]?.int == 2, "two must stay available while the new pod is not")
        await controllers.pass()
        let settled = try await store.get(deployments, namespace: "default", name: "web")
        #expect(settled[path: ["status", "availableReplicas"]]?.int == 2)
        #expect(settled[path: ["status", "updatedReplicas"]]?.int == 1)
    }
}
