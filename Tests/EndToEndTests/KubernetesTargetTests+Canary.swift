import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

extension KubernetesTargetTests {
    @Test(
        "canary through each router: requests through the router never fail while weights move; the kubectl command lines match kube-sim's request log",
        arguments: ["service", "ingress-nginx", "httproute"])
    func canary(router: String) async throws {
        try await Project.with(
            environments: { kubeconfig in
                // The edge (Ingresses, HTTPRoutes) is 127.B.1.254 of the cluster's block.
                let block =
                    (try? String(
                        contentsOfFile: URL(fileURLWithPath: kubeconfig).deletingLastPathComponent().path + "/network", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
                let url = router == "httproute" ? ", url: \"http://127.\(block).1.254\"" : ""
                return """
                      staging:
                        target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                        strategy: rolling
                      production:
                        target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production", router: router, extra: url))
                        strategy: { canary: { steps: [25, 50, 100] } }
                        require_clean_tree: false
                        gates: [health]
                    """
            }
        ) { project in
            if router == "httproute" {
                try #require(
                    try await project.kubectl(["apply", "-f", "\(packageRoot)/Manifests/gateway-api/httproute-crd.yaml"]).status == 0)
            }
            let result = try await project.deploy("production")
            try #require(result.status == 0, "\(Self.tail(result.output))")
            let status = try await project.deploy("status", "production", "--json")
            let url = try #require(Self.serviceURL(status.output), "\(Self.tail(status.output))")
            #expect(await Self.get(url + "/version")?.body == "1.0.0", "\(url)")

            try await project.release("1.1.0")
            let (deployed, loop) = try await RequestLoop.around(url) { try await project.deploy("production") }
            try #require(deployed.status == 0, "\(Self.tail(deployed.output))")
            let seen = loop.results.with { $0 }
            #expect(seen.failed == 0, "\(seen.failed) of \(seen.ok + seen.failed) requests failed: \(seen.failures.prefix(5))")
            #expect(seen.versions.first == "1.0.0" && seen.versions.last == "1.1.0", "versions seen: \(seen.versions)")
            #expect(await Self.get(url + "/version")?.body == "1.1.0")

            // Every kubectl command line Slipway recorded, against what kube-sim was asked.
            let requests = try RequestLog(project.requestLog)
            let checked = requests.check(deployed.output, namespace: "hello-production")
            let namespace = "/namespaces/hello-production"
            if router == "httproute" {
                #expect(
                    requests.asked("PATCH", "\(namespace)/httproutes/hello", contentType: "application/merge-patch+json")
                        || requests.asked("POST", "\(namespace)/httproutes"))
            }
            if router == "ingress-nginx" {
                #expect(requests.asked("POST", "\(namespace)/ingresses") || requests.asked("PATCH", "\(namespace)/ingresses/hello-canary"))
            }
            #expect(checked.isSuperset(of: ["apply", "rollout status"]), "\(checked)")
            switch router {
            case "service": #expect(checked.isSuperset(of: ["patch", "scale"]), "\(checked)")
            default: #expect(checked.contains("apply"), "\(checked)")
            }
        }
    }

    /// `url` of the production target in `deploy status --json`.
    static func serviceURL(_ json: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return nil }
        func find(_ value: Any) -> String? {
            if let dictionary = value as? [String: Any] {
                if dictionary["kind"] as? String == "kubernetes", let url = dictionary["url"] as? String { return url }
                for (_, inner) in dictionary { if let found = find(inner) { return found } }
            }
            if let array = value as? [Any] { for inner in array { if let found = find(inner) { return found } } }
            return nil
        }
        return find(object)
    }
}

extension KubernetesTargetTests {
    @Test(
        "a canary deploy (server-side apply) killed with SIGKILL at its first step: status shows the split and the interrupted run; deploy rollback gives the stable release all traffic"
    )
    func killedMidCanary() async throws {
        try await Project.with(environments: { kubeconfig in
            """
              staging:
                target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                strategy: rolling
              production:
                target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production", extra: ", server_side: true"))
                strategy: { canary: { steps: [25, 50, 100] } }
                require_clean_tree: false
                gates: [health]
            """
        }) { project in
            var result = try await project.deploy("production")
            try #require(result.status == 0, "\(Self.tail(result.output))")
            #expect(result.output.contains("apply -f") && result.output.contains("--server-side"), "\(Self.tail(result.output))")
            let address = try await project.address(service: "hello", namespace: "hello-production")
            try await project.release("1.1.0")
            // Killed (debug build's fault point) once the first canary step is in force.
            result = try await project.deploy("production", environment: ["SLIPWAY_KILL_AT": "moved"])
            #expect(result.status != 0 && result.status != 3, "\(Self.tail(result.output))")
            let service = try await project.json(["get", "service", "hello", "-n", "hello-production"])
            let selector = (service["spec"] as? [String: Any])?["selector"] as? [String: Any]
            #expect(selector?["slipway.dev/colour"] == nil, "both colours behind the Service: \(String(describing: selector))")
            let status = try await project.deploy("status", "production")
            #expect(status.output.contains("interrupted"), "\(Self.tail(status.output))")
            #expect(status.output.contains("1.1.0") && status.output.contains("1.0.0"), "\(Self.tail(status.output))")
            result = try await project.deploy("rollback", "production", "--reason", "deploy died")
            #expect(result.status == 0, "\(Self.tail(result.output))")
            var versions = Set<String>()
            for _ in 0..<12 { if let answer = await Self.get("http://\(address)/version") { versions.insert(answer.body) } }
            #expect(versions == ["1.0.0"], "\(versions)")
            let deployments = try await project.kubectl(["get", "deployments", "-n", "hello-production", "-o", "name"])
            #expect(deployments.stdout.split(separator: "\n").count == 1, "\(deployments.stdout)")
        }
    }
}
