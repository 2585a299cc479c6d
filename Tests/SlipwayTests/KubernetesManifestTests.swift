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

    static func expectError(
        containing text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation, _ body: () async throws -> some Any
    ) async {
        do {
            _ = try await body()
            Issue.record("no error; expected one saying: \(text)", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        }
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
            Self.deployment.replacingOccurrences(of: "NAME", with: "a") + "\n---\n"
                + Self.deployment.replacingOccurrences(of: "NAME", with: "b"))
        await Self.expectError(containing: "has 2 Deployments") { try await Self.target(manifests: two).observe() }

        let unrelated = try work.write(
            "unrelated/all.yaml",
            Self.deployment.replacingOccurrences(of: "NAME", with: "a")
                + "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {selector: {app: other}, ports: [{port: 80}]}\n")
        await Self.expectError(containing: "no Service whose selector picks the Deployment's pods") {
            try await Self.target(manifests: unrelated).observe()
        }

        await Self.expectError(containing: "do not exist") { try await Self.target(manifests: work.file("missing")).observe() }

        let broken = try work.write("broken.yaml", "kind: Deployment\nmetadata: {name: \"unterminated\n")
        await Self.expectError(containing: "is not valid YAML") { try await Self.target(manifests: broken).observe() }
    }

    @Test("a missing kubectl is named, with how to get it")
    func missingKubectl() async throws {
        let target = try Self.target(manifests: "\(packageRoot)/Manifests/hello/base")
        await Self.expectError(containing: "kubectl (`/nonexistent/kubectl`) was not found") { try await target.preflight(say: { _ in }) }
    }
}
