import Foundation
import SlipwayPipeline

/// The Kubernetes manifests a checklist reads, rendered once per checklist (`kubectl kustomize`
/// for a kustomize directory).
enum ManifestLoad: Sendable {
    /// The checklist reads none.
    case none
    case loaded(AppManifests, source: String)
    case failed(String)

    static func load(_ path: String?, inputs: ChecklistInputs) async -> ManifestLoad {
        guard let path else { return .none }
        let kubectl = Kubectl(
            spec: KubernetesTargetSpec(manifests: path), environment: inputs.processEnvironment, launcher: inputs.launcher)
        do {
            return .loaded(try await AppManifests.render(inputs.file(path), kubectl: kubectl), source: path)
        } catch {
            return .failed("\(path) does not render: \(error)")
        }
    }
}

/// Checks of the manifests: probes, resources, images, replicas.
enum ManifestChecks {
    /// A container of a workload, named `Deployment/hello: container hello` in explanations.
    struct Container {
        var workload: String
        var name: String
        var spec: [String: Any]
        var isApp: Bool
        var where_: String { "\(workload) container \(name)" }
    }

    static func containers(_ manifests: AppManifests, appImage: String? = nil) -> [Container] {
        var result: [Container] = []
        let workloads =
            [manifests.deployment]
            + manifests.others.filter {
                ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"].contains($0["kind"] as? String ?? "")
            }
        for (index, workload) in workloads.enumerated() {
            let kind = workload["kind"] as? String ?? "Object"
            let name = workload.string("metadata", "name") ?? "?"
            let podSpec: [String: Any]? =
                switch kind {
                case "Pod": workload["spec"] as? [String: Any]
                case "CronJob": workload[path: "spec", "jobTemplate", "spec", "template", "spec"] as? [String: Any]
                default: workload[path: "spec", "template", "spec"] as? [String: Any]
                }
            let list = (podSpec?["containers"] as? [[String: Any]]) ?? []
            // Slipway gives the release's image to one container of the app's Deployment.
            let appIndex = index == 0 ? ManifestEdit.appContainerIndex(list, pipelineImage: appImage) : -1
            for (position, container) in list.enumerated() {
                result.append(
                    Container(
                        workload: "\(kind)/\(name)", name: container["name"] as? String ?? "#\(position + 1)", spec: container,
                        isApp: position == appIndex))
            }
        }
        return result
    }

    /// `body` over the manifests, or why there are none to read.
    static func reading(_ load: ManifestLoad, _ body: (AppManifests, String) -> CheckVerdict) -> CheckVerdict {
        switch load {
        case .loaded(let manifests, let source): body(manifests, source)
        case .failed(let why): .fail(why)
        case .none: .fail("no manifests to read: give the checklist `manifests:`")
        }
    }

    static func probes(_ load: ManifestLoad, startup: Bool) -> CheckVerdict {
        reading(load) { manifests, source in
            var missing: [String] = []
            let all = containers(manifests)
            for container in all {
                var lacks: [String] = []
                if container.spec["livenessProbe"] == nil { lacks.append("livenessProbe") }
                if container.spec["readinessProbe"] == nil { lacks.append("readinessProbe") }
                if startup && container.spec["startupProbe"] == nil { lacks.append("startupProbe") }
                if !lacks.isEmpty { missing.append("\(container.where_) has no \(lacks.joined(separator: " or "))") }
            }
            if all.isEmpty { return .fail("\(source): no containers found in its workloads") }
            guard missing.isEmpty else { return .fail("\(source): \(missing.joined(separator: "; ")): add them to the container spec") }
            return .pass(
                "\(all.count) container\(all.count == 1 ? "" : "s") in \(source) have liveness and readiness\(startup ? " and startup" : "") probes"
            )
        }
    }

    static func resources(_ load: ManifestLoad) -> CheckVerdict {
        reading(load) { manifests, source in
            var missing: [String] = []
            let all = containers(manifests)
            for container in all {
                var lacks: [String] = []
                for kind in ["requests", "limits"] {
                    let values = (container.spec[path: "resources", kind] as? [String: Any]) ?? [:]
                    for resource in ["cpu", "memory"] where values[resource] == nil { lacks.append("\(kind).\(resource)") }
                }
                if !lacks.isEmpty { missing.append("\(container.where_) sets no \(lacks.joined(separator: ", "))") }
            }
            if all.isEmpty { return .fail("\(source): no containers found in its workloads") }
            guard missing.isEmpty else { return .fail("\(source): \(missing.joined(separator: "; ")): add them under `resources:`") }
            return .pass("\(all.count) container\(all.count == 1 ? "" : "s") in \(source) request and limit CPU and memory")
        }
    }

    static func render(_ load: ManifestLoad) -> CheckVerdict {
        reading(load) { manifests, source in
            var parts = ["Deployment \(manifests.deploymentName) (\(manifests.replicas) replicas)", "Service \(manifests.serviceName)"]
            if manifests.ingress != nil { parts.append("an Ingress") }
            if manifests.httpRoute != nil { parts.append("an HTTPRoute") }
            if !manifests.others.isEmpty { parts.append("\(manifests.others.count) other object\(manifests.others.count == 1 ? "" : "s")") }
            return .pass("\(source) renders: " + parts.joined(separator: ", "))
        }
    }

    static func replicas(_ load: ManifestLoad, minimum: Int) -> CheckVerdict {
        reading(load) { manifests, source in
            let replicas = manifests.replicas
            guard replicas >= minimum else {
                return .fail(
                    "\(source): Deployment \(manifests.deploymentName) runs \(replicas) replica\(replicas == 1 ? "" : "s"), fewer than \(minimum): raise spec.replicas"
                )
            }
            return .pass("Deployment \(manifests.deploymentName) runs \(replicas) replicas (at least \(minimum))")
        }
    }

    static func pinnedImages(_ load: ManifestLoad, inputs: ChecklistInputs) async -> CheckVerdict {
        var problems: [String] = []
        var checked: [String] = []
        func judge(_ image: String, _ what: String) {
            checked.append(image)
            if image.contains("@sha256:") { return }
            let afterSlash = image.split(separator: "/").last.map(String.init) ?? image
            if afterSlash.hasSuffix(":latest") {
                problems.append("\(what) runs \(image), the moving :latest tag")
            } else if !afterSlash.contains(":") {
                problems.append("\(what) runs \(image), with no tag (that is :latest)")
            } else {
                problems.append("\(what) runs \(image), a tag, not a digest")
            }
        }
        if let image = inputs.image {
            judge(image, "the release")
        } else {
            problems.append("this run has no image yet (built and pushed images are pinned by digest): run the build and push stages first")
        }
        var source: String?
        switch load {
        case .failed(let why): return .fail(why)
        case .loaded(let manifests, let from):
            source = from
            // The release's container gets the release's image by digest; every other container is judged as written.
            for container in containers(manifests, appImage: inputs.pipeline.image) where !container.isApp {
                judge(container.spec["image"] as? String ?? "", container.where_)
            }
        case .none: break
        }
        guard problems.isEmpty else {
            return .fail(
                problems.joined(separator: "; ") + ": pin each image by digest (image@sha256:…)" + (source.map { " in \($0)" } ?? ""))
        }
        return .pass("\(checked.count) image\(checked.count == 1 ? "" : "s") pinned by digest: \(checked.joined(separator: ", "))")
    }
}
