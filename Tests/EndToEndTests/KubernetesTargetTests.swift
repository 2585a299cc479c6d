import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// Real deploys of the example app to a Kubernetes target: the real kubectl against kube-sim,
/// whose pods run in podman (the suite's podman service and registry). Each test has its own
/// kube-sim (its own loopback block, state and containers), git repository and app, and stops
/// them all at the end. One after another, as the docker target's tests, for the same reason.
@Suite("deploy to a kubernetes target (kube-sim)", .timeLimit(.minutes(10)), .sharedContainerServices, .serialized)
struct KubernetesTargetTests {
    struct Project {
        let repo: GitFixture
        let cluster: KubeSimProcess
        let home: String
        let app: String
        let environment: [String: String]

        /// A repository with the example app, its manifests (kustomize base and overlays) and a
        /// pipeline whose environments are `environments` (YAML, indented under `environments:`).
        static func make(
            _ services: ContainerServices, environments: @Sendable (_ kubeconfig: String) -> String, gates: String = "",
            simArguments: [String] = [],
            namespaces: [String] = ["hello-staging", "hello-production"]
        ) async throws -> Project {
            let repo = try await GitFixture("kubernetes-target")
            let app = "hello\(UUID().uuidString.prefix(6).lowercased())"
            try ExampleApp.copy(into: repo)
            for file in [
                "base/kustomization.yaml", "base/deployment.yaml", "base/service.yaml", "base/ingress.yaml", "base/httproute.yaml",
                "overlays/staging/kustomization.yaml", "overlays/production/kustomization.yaml",
            ] {
                // As they are: a loaded CI machine has taken over 25 s to start three pods.
                let contents = try String(contentsOfFile: "\(packageRoot)/Manifests/hello/\(file)", encoding: .utf8)
                try repo.directory.write("Manifests/hello/\(file)", contents)
            }
            // Every request kube-sim receives, for the tests that check kubectl's calls against it.
            let cluster = try await KubeSimProcess(
                state: repo.directory.file(".kube-sim"),
                arguments: ["--request-log", repo.directory.file("requests.jsonl")] + simArguments, environment: services.environment)
            try repo.directory.write(
                ".gitignore", ".slipway/\n.kube-sim/\nhome/\nrequests.jsonl\nExamples/hello/busybox\nExamples/hello/app/version\n")
            try repo.directory.write(
                "slipway.yml",
                """
                app: \(app)
                image: \(services.registry)/\(app)
                environments:
                \(environments(cluster.kubeconfig))
                stages:
                  - { name: prepare, run: [Examples/hello/prepare] }
                  - { name: build, build: { context: Examples/hello, file: Containerfile, args: { VERSION: "${VERSION}" }, no_cache: true } }
                  - { name: push, push: {} }
                  - { name: staging, deploy: staging }
                  - { name: production, deploy: production }
                gates:
                  health: { http: { url: "${TARGET_URL}/health", status: 200, within: 2s }, every: 100ms, times: 3 }
                  # Fails for a release the test marks bad after the fact (a file in .slipway/).
                  marker: { command: [test, "!", -e, ".slipway/${VERSION}.bad"] }
                  readiness: { readiness: {} }
                \(gates)
                """)
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello")
            try await repo.git("tag", "v1.0.0")
            var environment = services.environment
            environment["DOCKER"] = HelloCluster.docker
            environment["CI"] = "true"
            environment["HOME"] = repo.directory.file("home")
            let project = Project(
                repo: repo, cluster: cluster, home: repo.directory.file("home"), app: app, environment: environment)
            for namespace in namespaces { _ = try await project.kubectl(["create", "namespace", namespace]) }
            return project
        }

        static func with(
            environments: @escaping @Sendable (_ kubeconfig: String) -> String, gates: String = "", simArguments: [String] = [],
            namespaces: [String] = ["hello-staging", "hello-production"], _ body: @Sendable (Project) async throws -> Void
        ) async throws {
            try await ContainerServices.shared { services in
                let project = try await Project.make(
                    services, environments: environments, gates: gates, simArguments: simArguments, namespaces: namespaces)
                do {
                    try await body(project)
                } catch {
                    await project.tearDown()
                    throw error
                }
                await project.tearDown()
            }
        }

        /// kube-sim's request log (`--request-log`).
        var requestLog: String { repo.directory.file("requests.jsonl") }

        func deploy(_ arguments: String..., environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
            try await runDeploy(arguments, in: repo.path, environment: environment.merging(extra) { $1 })
        }

        @discardableResult
        func kubectl(_ arguments: [String]) async throws -> CommandResult {
            try await SlipwayTestSupport.kubectl(arguments, kubeconfig: cluster.kubeconfig, home: home)
        }

        func json(_ arguments: [String]) async throws -> [String: Any] {
            let result = try await kubectl(arguments + ["-o", "json"])
            guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            else { throw DeployProcessError(message: "kubectl \(arguments.joined(separator: " ")): \(result.stderr)") }
            return object
        }

        func release(_ version: String, broken: Bool = false) async throws {
            try await ExampleApp.release(repo, version, broken: broken)
        }

        /// kube-sim stopped (it removes its containers), then the repository.
        func tearDown() async {
            _ = try? await cluster.stop()
            repo.remove()
        }

        /// The address of a Service's load balancer.
        func address(service: String, namespace: String) async throws -> String {
            let object = try await json(["get", "service", service, "-n", namespace])
            let ingress = ((object["status"] as? [String: Any])?["loadBalancer"] as? [String: Any])?["ingress"] as? [[String: Any]]
            return try #require(ingress?.first?["ip"] as? String)
        }
    }

    static func get(_ url: String) async -> (status: Int, body: String)? { await ExampleApp.get(url) }

    /// The end of a command's output, where a failure says why (a whole deploy's output is longer
    /// than a test report keeps).
    static func tail(_ output: String, lines: Int = 60) -> String {
        output.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    static func target(_ kubeconfig: String, namespace: String, overlay: String, router: String = "service", extra: String = "") -> String {
        "{ kubernetes: { manifests: Manifests/hello/overlays/\(overlay), kubeconfig: \"\(kubeconfig)\", context: kube-sim, "
            + "namespace: \(namespace), router: \(router)\(extra) } }"
    }
}

/// The docker CLI the kubelet of kube-sim and the build stage use.
enum HelloCluster {
    static var docker: String {
        FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker")
            || FileManager.default.isExecutableFile(atPath: "/usr/bin/docker")
            ? "docker" : "podman"
    }
}

/// kube-sim's request log (`--request-log`), and the kubectl command lines a deploy recorded
/// checked against it: each verb Slipway uses must have reached the API server as the method,
/// path and patch type that verb means, so a change in Slipway's calls or in kube-sim shows.
struct RequestLog {
    let requests: [[String: Any]]

    init(_ path: String) throws {
        requests = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }

    func asked(_ method: String, _ pathSuffix: String, contentType: String? = nil) -> Bool {
        requests.contains { request in
            request["method"] as? String == method && (request["path"] as? String)?.hasSuffix(pathSuffix) == true
                && (contentType.map { (request["contentType"] as? String)?.hasPrefix($0) == true } ?? true)
        }
    }

    /// The recorded `$ kubectl …` lines of `output`, each checked; returns the verbs seen.
    func check(_ output: String, namespace: String, sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
        let commands = output.split(separator: "\n").compactMap { line -> [String]? in
            guard let start = line.range(of: "$ kubectl ") else { return nil }
            return line[start.upperBound...].split(separator: " ").map(String.init)
        }
        let path = "/namespaces/\(namespace)"
        var verbs = Set<String>()
        for command in commands {
            // After the global flags (--kubeconfig F --context C --namespace N).
            var words = command[...]
            while let first = words.first, first.hasPrefix("--") {
                words = words.dropFirst(first.contains("=") ? 1 : 2)
            }
            let verb = words.first ?? ""
            let object = words.first { $0.hasPrefix("deployment/") }.map { String($0.dropFirst("deployment/".count)) } ?? "?"
            switch verb {
            case "patch":
                #expect(command.contains("--type=merge"), sourceLocation: sourceLocation)
                #expect(
                    asked("PATCH", "\(path)/services/hello", contentType: "application/merge-patch+json"), "\(command)",
                    sourceLocation: sourceLocation)
            case "scale":
                #expect(asked("PATCH", "\(path)/deployments/\(object)/scale"), "\(command)", sourceLocation: sourceLocation)
            case "apply":
                // Client-side: a strategic merge patch of what exists, a create of what does not;
                // server-side: an apply patch.
                let sent =
                    command.contains("--server-side")
                    ? asked("PATCH", "", contentType: "application/apply-patch+yaml")
                    : asked("PATCH", "", contentType: "application/strategic-merge-patch+json") || asked("POST", "\(path)/deployments")
                #expect(sent, "\(command)", sourceLocation: sourceLocation)
            case "rollout":
                if words.dropFirst().first == "undo" {
                    #expect(
                        asked("PATCH", "\(path)/deployments/\(object)", contentType: "application/strategic-merge-patch+json"),
                        "\(command)", sourceLocation: sourceLocation)
                } else {
                    #expect(asked("GET", "\(path)/deployments"), "\(command)", sourceLocation: sourceLocation)
                }
            case "get", "version", "config", "auth", "kustomize":
                break
            default:
                Issue.record("a kubectl command the test does not know: \(command)", sourceLocation: sourceLocation)
            }
            verbs.insert(verb + (verb == "rollout" ? " " + (words.dropFirst().first ?? "") : ""))
        }
        return verbs
    }
}
