import Foundation
import Slipway
import SlipwayTestSupport
import Testing

/// What the kubernetes target needs of an app's manifests, said before kubectl is ever run.
@Suite("Kubernetes manifests")
struct KubernetesManifestTests {
    static func target(manifests: String) throws -> KubernetesTarget {
        let yaml = """
            app: hello
            environments:
              production:
                target: { kubernetes: { manifests: "\(manifests)", namespace: hello } }
                strategy: blue_green
            stages:
              - { name: production, deploy: production }
            """
        let pipeline = try PipelineLoader.parse(yaml: yaml, file: "p.yml").pipeline
        guard case .kubernetes(let spec) = pipeline.environment(named: "production")?.target else {
            throw DeployProcessError(message: "not a kubernetes target")
        }
        // kubectl is never reached: the manifests are refused first.
        return KubernetesTarget(
            spec,
            setting: TargetSetting(
                pipeline: pipeline, environment: "production", stateDirectory: "/nonexistent",
                processEnvironment: ["SLIPWAY_KUBECTL": "/nonexistent/kubectl", "PATH": "/usr/bin:/bin"]))
    }

    static let deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: NAME}
        spec:
          selector: {matchLabels: {app: NAME}}
          template:
            metadata: {labels: {app: NAME}}
            spec: {containers: [{name: app, image: example/app:1}]}
        """

    @Test("exactly one Deployment, and a Service whose selector picks its pods; a missing path says so")
    func refused() async throws {
        let work = try TemporaryDirectory("kubernetes-manifests")
        defer { work.remove() }
        let two = try work.write(
            "two/all.yaml",
            Self.deployment.replacingOccurrences(of: "NAME", with: "a") + "\n---\n" + Self.deployment.replacingOccurrences(of: "NAME", with: "b"))
        var error = await #expect(throws: (any Error).self) { try await Self.target(manifests: two).observe() }
        #expect("\(error!)".contains("has 2 Deployments"), "\(error!)")

        let unrelated = try work.write(
            "unrelated/all.yaml",
            Self.deployment.replacingOccurrences(of: "NAME", with: "a")
                + "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {selector: {app: other}, ports: [{port: 80}]}\n")
        error = await #expect(throws: (any Error).self) { try await Self.target(manifests: unrelated).observe() }
        #expect("\(error!)".contains("no Service whose selector picks the Deployment's pods"), "\(error!)")

        error = await #expect(throws: (any Error).self) { try await Self.target(manifests: work.file("missing")).observe() }
        #expect("\(error!)".contains("do not exist"), "\(error!)")

        let broken = try work.write("broken.yaml", "kind: Deployment\n  metadata: [\n")
        error = await #expect(throws: (any Error).self) { try await Self.target(manifests: broken).observe() }
        #expect("\(error!)".contains("is not valid YAML"), "\(error!)")
    }

    @Test("a missing kubectl is named, with how to get it")
    func missingKubectl() async throws {
        let target = try Self.target(manifests: "\(packageRoot)/Manifests/hello/base")
        let error = await #expect(throws: (any Error).self) { try await target.preflight(say: { _ in }) }
        #expect("\(error!)".contains("kubectl (`/nonexistent/kubectl`) was not found"), "\(error!)")
    }
}
