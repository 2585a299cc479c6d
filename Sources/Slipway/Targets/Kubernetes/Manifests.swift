import Foundation
import SlipwayCore
import SlipwayPipeline
import Yams

/// An app's manifests as the pipeline names them, rendered (`kubectl kustomize` for a kustomize
/// directory; the files themselves otherwise) and sorted into what Slipway changes: the
/// Deployment, the Service in front of it, an Ingress and an HTTPRoute, and the rest applied as
/// they are.
struct AppManifests: @unchecked Sendable {
    // Immutable after rendering; the dictionaries are only ever copied out.
    let deployment: [String: Any]
    let service: [String: Any]
    let ingress: [String: Any]?
    let httpRoute: [String: Any]?
    let others: [[String: Any]]

    var deploymentName: String { deployment.string("metadata", "name") ?? "app" }
    var serviceName: String { service.string("metadata", "name") ?? deploymentName }
    var replicas: Int { deployment.int("spec", "replicas") ?? 1 }
    var progressDeadline: Int { deployment.int("spec", "progressDeadlineSeconds") ?? 600 }
    /// The port the Service answers on (its first).
    var servicePort: Int { ((service[path: "spec", "ports"] as? [[String: Any]])?.first?.int("port")) ?? 80 }

    struct Invalid: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    static func render(_ path: String, kubectl: Kubectl) async throws -> AppManifests {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Invalid(description: "manifests '\(path)' do not exist (relative paths are from the directory deploy runs in)")
        }
        var texts: [(String, String)] = []
        if isDirectory.boolValue {
            let kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"].first {
                FileManager.default.fileExists(atPath: path + "/" + $0)
            }
            if kustomization != nil {
                // kubectl's built-in kustomize: no template engine of our own.
                let result = try await kubectl.call(["kustomize", path])
                guard result.succeeded else {
                    throw Invalid(description: "`kubectl kustomize \(path)` \(result.status): \(result.stderr)")
                }
                texts = [("kubectl kustomize \(path)", result.stdout)]
            } else {
                let files = try FileManager.default.contentsOfDirectory(atPath: path).filter {
                    $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json")
                }.sorted()
                texts = try files.map { (path + "/" + $0, try String(contentsOfFile: path + "/" + $0, encoding: .utf8)) }
            }
        } else {
            texts = [(path, try String(contentsOfFile: path, encoding: .utf8))]
        }
        var objects: [[String: Any]] = []
        for (source, text) in texts {
            do {
                // Document by document, so that a syntax error is an error (a YamlSequence keeps
                // it to itself and simply ends).
                let parser = try Parser(yaml: text)
                while let root = try parser.nextRoot() {
                    let document = root.any
                    let json = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: Self.plain(document)))
                    if let object = json as? [String: Any] {
                        if object["kind"] as? String == "List", let items = object["items"] as? [[String: Any]] {
                            objects += items
                        } else {
                            objects.append(object)
                        }
                    }
                }
            } catch {
                throw Invalid(description: "\(source) is not valid YAML: \(error)")
            }
        }
        return try sort(objects, source: path)
    }

    /// Yams' values as JSONSerialization takes them.
    static func plain(_ value: Any) -> Any {
        switch value {
        case let dictionary as [AnyHashable: Any]:
            var result: [String: Any] = [:]
            for (key, value) in dictionary { result["\(key)"] = plain(value) }
            return result
        case let array as [Any]: return array.map(plain)
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        case is NSNull: return NSNull()
        default: return value
        }
    }

    static func sort(_ objects: [[String: Any]], source: String) throws -> AppManifests {
        let deployments = objects.filter { $0["kind"] as? String == "Deployment" }
        guard deployments.count == 1, let deployment = deployments.first else {
            throw Invalid(
                description:
                    "\(source) has \(deployments.count) Deployments; Slipway deploys one app per environment, so it needs exactly one")
        }
        let templateLabels = (deployment[path: "spec", "template", "metadata", "labels"] as? [String: Any]) ?? [:]
        let services = objects.filter { $0["kind"] as? String == "Service" }
        // The Service in front of the Deployment: its selector picks the Deployment's pods.
        let service = services.first { service in
            let selector = (service[path: "spec", "selector"] as? [String: Any]) ?? [:]
            return !selector.isEmpty && selector.allSatisfy { key, value in (templateLabels[key] as? String) == (value as? String) }
        }
        guard let service else {
            throw Invalid(
                description: "\(source) has no Service whose selector picks the Deployment's pods; traffic reaches releases through one")
        }
        let ingress = objects.first { $0["kind"] as? String == "Ingress" }
        let httpRoute = objects.first { $0["kind"] as? String == "HTTPRoute" }
        let serviceName = service.string("metadata", "name")
        let others = objects.filter { object in
            let kind = object["kind"] as? String
            if kind == "Deployment" || kind == "Ingress" || kind == "HTTPRoute" { return false }
            return !(kind == "Service" && object.string("metadata", "name") == serviceName)
        }
        return AppManifests(deployment: deployment, service: service, ingress: ingress, httpRoute: httpRoute, others: others)
    }
}

/// The labels and annotations Slipway puts on what it applies.
enum KubernetesLabel {
    static let managedBy = "app.kubernetes.io/managed-by"
    static let app = "slipway.dev/app"
    static let environment = "slipway.dev/environment"
    static let colour = "slipway.dev/colour"
    static let run = "slipway.dev/run"
    static let version = "slipway.dev/version"
    static let sha = "slipway.dev/sha"
    static let image = "slipway.dev/image"
    static let history = "slipway.dev/good-history"
    static let startedBy = "slipway.dev/started-by"
}

extension ReleaseReference {
    /// A release as annotations say it (nil when they name none).
    init?(annotations: [String: Any]) {
        guard let run = (annotations[KubernetesLabel.run] as? String).flatMap({ Int64($0) }),
            let image = annotations[KubernetesLabel.image] as? String
        else { return nil }
        self.init(
            run: run, version: annotations[KubernetesLabel.version] as? String, sha: annotations[KubernetesLabel.sha] as? String,
            image: image)
    }

    static func history(annotations: [String: Any]) -> [ReleaseReference] {
        guard let text = annotations[KubernetesLabel.history] as? String else { return [] }
        return (try? JSONDecoder().decode([ReleaseReference].self, from: Data(text.utf8))) ?? []
    }
}

/// Changing rendered objects: names, labels, selectors, annotations, the image.
enum ManifestEdit {
    static func setting(_ object: [String: Any], _ path: [String], _ value: Any) -> [String: Any] {
        guard let first = path.first else { return object }
        var copy = object
        if path.count == 1 {
            copy[first] = value
        } else {
            copy[first] = setting((object[first] as? [String: Any]) ?? [:], Array(path.dropFirst()), value)
        }
        return copy
    }

    static func merging(_ object: [String: Any], _ path: [String], _ values: [String: String]) -> [String: Any] {
        var map = (object[path: path] as? [String: Any]) ?? [:]
        for (key, value) in values { map[key] = value }
        return setting(object, path, map)
    }

    /// The annotations naming a release on the object that runs it.
    static func releaseAnnotations(_ release: ReleaseReference, history: [ReleaseReference], startedBy: String?) -> [String: String] {
        var annotations = [KubernetesLabel.run: String(release.run), KubernetesLabel.image: release.image]
        if let version = release.version { annotations[KubernetesLabel.version] = version }
        if let sha = release.sha { annotations[KubernetesLabel.sha] = sha }
        if let startedBy { annotations[KubernetesLabel.startedBy] = startedBy }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        if let data = try? encoder.encode(history), let text = String(data: data, encoding: .utf8) {
            annotations[KubernetesLabel.history] = text
        }
        return annotations
    }

    /// The Deployment running `release`: image by digest (the container whose image is the
    /// pipeline's, else the first), the release on the Deployment and on its pod template (so each
    /// ReplicaSet, each revision, names its own release).
    /// The container that runs the release: the one whose image is the pipeline's image (any tag
    /// or digest), else the first.
    static func appContainerIndex(_ containers: [[String: Any]], pipelineImage: String?) -> Int {
        let repository = pipelineImage.map { String($0.split(separator: "@").first ?? "") }
        return containers.firstIndex { container in
            guard let repository, let image = container["image"] as? String else { return false }
            return image.hasPrefix(repository + ":") || image.hasPrefix(repository + "@") || image == repository
        } ?? 0
    }

    static func deployment(
        _ base: [String: Any], name: String, labels: [String: String], selectorLabels: [String: String], release: ReleaseReference,
        annotations: [String: String], pipelineImage: String?
    ) -> [String: Any] {
        var object = setting(base, ["metadata", "name"], name)
        object = merging(object, ["metadata", "labels"], labels)
        object = merging(object, ["metadata", "annotations"], annotations)
        object = merging(object, ["spec", "selector", "matchLabels"], selectorLabels)
        object = merging(object, ["spec", "template", "metadata", "labels"], labels.merging(selectorLabels) { $1 })
        object = merging(object, ["spec", "template", "metadata", "annotations"], annotations)
        var containers = (object[path: "spec", "template", "spec", "containers"] as? [[String: Any]]) ?? []
        let index = appContainerIndex(containers, pipelineImage: pipelineImage)
        if containers.indices.contains(index) { containers[index]["image"] = release.image }
        return setting(object, ["spec", "template", "spec", "containers"], containers)
    }
}
