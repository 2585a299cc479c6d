import Foundation
import NIOCore
import NIOPosix
import SlipwayProcess

extension Kubelet {
    // MARK: Status

    /// `fake://IMAGE` for a simulated container (as the transcripts' lab reported), the image for a real one.
    func imageID(_ container: ContainerState) -> String {
        if case .simulated = runtime { return "fake://\(container.image)" }
        return container.containerID == nil ? "" : container.image
    }

    func report(_ state: PodState, pod: JSON, podType: ResourceType) async {
        let old = pod["status"] ?? [:]
        func previousTime(_ type: String, _ value: String) -> JSON {
            let condition = (old["conditions"]?.array ?? []).first { $0["type"]?.string == type }
            if condition?["status"]?.string == value, let time = condition?["lastTransitionTime"] { return time }
            return .string(Clock.timestamp())
        }
        let allReady = !state.containers.isEmpty && state.containers.allSatisfy(\.ready)
        let anyRunning = state.containers.contains { $0.containerID != nil || ($0.startedAt != nil && $0.waitingReason == nil) }
        let readyText = allReady ? "True" : "False"
        var conditions: [JSON] = [
            ["type": "PodScheduled", "status": "True", "lastProbeTime": nil, "lastTransitionTime": previousTime("PodScheduled", "True")],
            ["type": "Initialized", "status": "True", "lastProbeTime": nil, "lastTransitionTime": previousTime("Initialized", "True")],
            [
                "type": "ContainersReady", "status": .string(readyText), "lastProbeTime": nil,
                "lastTransitionTime": previousTime("ContainersReady", readyText),
            ],
            ["type": "Ready", "status": .string(readyText), "lastProbeTime": nil, "lastTransitionTime": previousTime("Ready", readyText)],
        ]
        if !allReady {
            let names = state.containers.filter { !$0.ready }.map(\.name).joined(separator: " ")
            for index in 2...3 {
                conditions[index]["reason"] = "ContainersNotReady"
                conditions[index]["message"] = .string("containers with unready status: [\(names)]")
            }
        }
        let statuses: [JSON] = state.containers.map { container in
            var entry: JSON = [
                "name": .string(container.name), "image": .string(container.image),
                "imageID": .string(imageID(container)),
                "ready": .bool(container.ready), "restartCount": .int(container.restartCount),
                "started": .bool(container.waitingReason == nil && container.startedAt != nil),
                "lastState": container.lastTerminated.map { ["terminated": $0] } ?? [:],
            ]
            if let id = container.containerID { entry["containerID"] = .string("docker://\(id)") }
            if let reason = container.waitingReason {
                var waiting: JSON = ["reason": .string(reason)]
                if let message = container.waitingMessage { waiting["message"] = .string(message) }
                entry["state"] = ["waiting": waiting]
            } else if let started = container.startedAt {
                entry["state"] = ["running": ["startedAt": .string(started)]]
            } else {
                entry["state"] = ["waiting": ["reason": "ContainerCreating"]]
            }
            return entry
        }
        let phase = anyRunning || state.containers.contains { $0.startedAt != nil } ? "Running" : "Pending"
        let status: JSON = [
            "phase": .string(phase), "conditions": .array(conditions), "hostIP": "127.0.0.1",
            "podIP": .string(state.address), "podIPs": [["ip": .string(state.address)]],
            "startTime": .string(state.startTime), "containerStatuses": .array(statuses),
            "qosClass": .string(Admission.qosClass(pod["spec"] ?? [:])),
        ]
        guard status != old else { return }
        var updated = pod
        updated["status"] = status
        _ = try? await store.update(
            podType, namespace: state.namespace, name: state.name, object: updated, writer: .kubelet,
            expectedVersion: pod[path: ["metadata", "resourceVersion"]]?.string)
    }
}
