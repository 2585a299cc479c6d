import Foundation
import SlipwayProcess
import SlipwayStore
import SlipwayTestSupport
import Testing

extension KubernetesTargetTests {
    @Test(
        "preflight: a missing kubectl, a wrong context, a missing namespace and a forbidden verb are clear errors before anything changes")
    func preflight() async throws {
        try await Project.with(
            environments: { kubeconfig in
                """
                  staging:
                    target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                    strategy: rolling
                  production:
                    target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production"))
                    strategy: rolling
                """
            }, namespaces: ["hello-staging"]
        ) { project in
            // No namespace hello-production.
            var result = try await project.deploy("production")
            #expect(result.status == 1, "\(Self.tail(result.output))")
            #expect(result.output.contains("namespace 'hello-production' does not exist"), "\(Self.tail(result.output))")
            #expect(result.output.contains("kubectl create namespace hello-production"), "\(Self.tail(result.output))")
            // No kubectl.
            result = try await project.deploy("staging", environment: ["SLIPWAY_KUBECTL": "/nonexistent/kubectl"])
            #expect(result.status == 1, "\(Self.tail(result.output))")
            #expect(result.output.contains("kubectl (`/nonexistent/kubectl`) was not found"), "\(Self.tail(result.output))")
            // A context the kubeconfig does not have.
            let pipeline = try String(contentsOfFile: project.repo.directory.file("slipway.yml"), encoding: .utf8)
            try project.repo.directory.write(
                "slipway.yml", pipeline.replacingOccurrences(of: "context: kube-sim", with: "context: prod-eu"))
            result = try await project.deploy("staging")
            #expect(result.status == 1, "\(Self.tail(result.output))")
            #expect(result.output.contains("context 'prod-eu' is not in"), "\(Self.tail(result.output))")
            #expect(result.output.contains("it has: kube-sim"), "\(Self.tail(result.output))")
            try project.repo.directory.write("slipway.yml", pipeline)
            // Nothing was created by any of them.
            let deployments = try await project.kubectl(["get", "deployments", "-A", "-o", "name"])
            #expect(deployments.status == 0 && deployments.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        }
        // A user whose token allows reading only.
        try await ContainerServices.shared { services in
            let work = try TemporaryDirectory("kubernetes-forbidden")
            defer { work.remove() }
            let tokens = try work.write("tokens.csv", "admin-token,admin,1,system:masters\nviewer-token,viewer,2,viewers\n")
            let cluster = try await KubeSimProcess(
                state: work.file("state"), arguments: ["--token-auth-file", tokens, "--token", "viewer-token"],
                environment: services.environment)
            defer { Task { _ = try? await cluster.stop() } }
            let repo = try await GitFixture("kubernetes-forbidden")
            defer { repo.remove() }
            for file in [
                "base/kustomization.yaml", "base/deployment.yaml", "base/service.yaml", "base/ingress.yaml", "base/httproute.yaml",
            ] {
                try repo.directory.write(
                    "Manifests/hello/\(file)", try String(contentsOfFile: "\(packageRoot)/Manifests/hello/\(file)", encoding: .utf8))
            }
            try repo.directory.write(
                "slipway.yml",
                """
                app: hello
                environments:
                  production:
                    target: { kubernetes: { manifests: Manifests/hello/base, kubeconfig: "\(cluster.kubeconfig)" } }
                    strategy: rolling
                stages:
                  - { name: production, deploy: production }
                """)
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello")
            let result = try await runDeploy(
                ["production"], in: repo.path, environment: ["CI": "true", "HOME": work.file("home")])
            #expect(result.status == 1, "\(Self.tail(result.output))")
            #expect(result.output.contains("forbidden: this user may not get deployments.apps"), "\(Self.tail(result.output))")
            #expect(result.output.contains("kubectl auth can-i get deployments.apps"), "\(Self.tail(result.output))")
            _ = try await cluster.stop()
        }
    }

    @Test(
        "rolling: the Deployment's own update; a release that never becomes ready goes back to the recorded revision (exit 3), pinned; rollout history agrees"
    )
    func rolling() async throws {
        try await Project.with(
            environments: { kubeconfig in
                """
                  staging:
                    target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                    strategy: rolling
                    gates: [health, readiness]
                  production:
                    target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production"))
                    strategy: rolling
                    gates: [health]
                """
            }
        ) { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(Self.tail(result.output))")
            let address = try await project.address(service: "hello", namespace: "hello-staging")
            #expect(await Self.get("http://\(address)/version")?.body == "1.0.0")
            try await project.release("1.1.0")
            result = try await project.deploy("staging")
            try #require(result.status == 0, "\(Self.tail(result.output))")
            #expect(result.output.contains("rollout status deployment/hello"), "every kubectl call is on the record: \(result.output)")
            #expect(result.output.contains("2/2 pods of 1.1.0 ready, 0 restarts"), "the readiness gate: \(result.output)")
            // Broken: /health answers 503, so its pods never become ready.
            try await project.release("1.2.0", broken: true)
            result = try await project.deploy("staging")
            #expect(result.status == 3, "\(Self.tail(result.output))")
            #expect(result.output.contains("did not become ready"), "\(Self.tail(result.output))")
            #expect(result.output.contains("rollout undo deployment/hello --to-revision=2"), "\(Self.tail(result.output))")
            // The rolling shape's kubectl calls (apply, rollout status, rollout undo) as kube-sim saw them.
            let verbs = try RequestLog(project.requestLog).check(result.output, namespace: "hello-staging")
            #expect(verbs.isSuperset(of: ["apply", "rollout status", "rollout undo"]), "\(verbs)")
            #expect(await Self.get("http://\(address)/version")?.body == "1.1.0")
            // kubectl rollout history: revisions 1 (1.0.0), 3 (1.2.0) and 4 (1.1.0 again: undo
            // reuses revision 2's ReplicaSet under a new number), as Slipway's record says.
            let history = try await project.kubectl(["rollout", "history", "deployment/hello", "-n", "hello-staging"])
            let revisions = history.stdout.split(separator: "\n").dropFirst(2).compactMap { Int($0.split(separator: " ").first ?? "") }
            #expect(revisions == [1, 3, 4], "\(history.stdout)")
            let sets = try await project.json(["get", "replicasets", "-n", "hello-staging"])
            let byRevision = Dictionary(
                ((sets["items"] as? [[String: Any]]) ?? []).compactMap { set -> (String, String)? in
                    let metadata = set["metadata"] as? [String: Any]
                    let revision = (metadata?["annotations"] as? [String: Any])?["deployment.kubernetes.io/revision"] as? String
                    let template = ((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["metadata"] as? [String: Any]
                    let version = (template?["annotations"] as? [String: Any])?["slipway.dev/version"] as? String
                    return revision.flatMap { r in version.map { (r, $0) } }
                }
            ) { first, _ in first }
            #expect(byRevision == ["1": "1.0.0", "3": "1.2.0", "4": "1.1.0"], "\(byRevision)")
            // Pinned until unpinned.
            result = try await project.deploy("staging")
            #expect(result.status == 4, "\(Self.tail(result.output))")
            var status = try await project.deploy("status", "--json")
            #expect(status.output.contains("deployment/hello: 2/2 ready"), "\(Self.tail(status.output))")
            #expect(!status.output.contains("drift"), "\(Self.tail(status.output))")
            // Someone changes the image by hand: status says the cluster drifted from the record.
            let image = "127.0.0.1:5000/somebody-else:1.0"
            #expect(try await project.kubectl(["set", "image", "deployment/hello", "hello=\(image)", "-n", "hello-staging"]).status == 0)
            status = try await project.deploy("status", "staging")
            #expect(status.output.contains("drift: deployment/hello runs \(image) but Slipway deployed"), "\(Self.tail(status.output))")
        }
    }
}

extension KubernetesTargetTests {
    @Test(
        "blue-green: no request through the Service fails during the switch or its rehearsed rollback; a failing gate goes back (exit 3, pinned); deploy rollback works with the run store deleted"
    )
    func blueGreen() async throws {
        try await Project.with(
            environments: { kubeconfig in
                """
                  staging:
                    target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                    strategy: rolling
                    gates: [health]
                  production:
                    target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production"))
                    strategy: { blue_green: { preview_gates: [health, readiness], bake: 1s } }
                    require_clean_tree: false
                    gates: [health, readiness, marker]
                    rehearse_rollback: true
                """
            }
        ) { project in
            var result = try await project.deploy("production")
            try #require(result.status == 0, "\(Self.tail(result.output))")
            let address = try await project.address(service: "hello", namespace: "hello-production")
            #expect(await Self.get("http://\(address)/version")?.body == "1.0.0")
            // 1.1.0 while a client keeps asking through the Service's load balancer.
            try await project.release("1.1.0")
            let (deployed, loop) = try await RequestLoop.around("http://\(address)") { try await project.deploy("production") }
            try #require(deployed.status == 0, "\(Self.tail(deployed.output))")
            let seen = loop.results.with { $0 }
            #expect(seen.failed == 0, "\(seen.failed) of \(seen.ok + seen.failed) requests failed: \(seen.failures.prefix(5))")
            #expect(seen.versions.first == "1.0.0" && seen.versions.last == "1.1.0", "versions seen: \(seen.versions)")
            #expect(deployed.output.contains("patch service hello --type=merge"), "\(Self.tail(deployed.output))")
            #expect(deployed.output.contains("3/3 pods of 1.1.0 ready, 0 restarts"), "the readiness gate: \(deployed.output)")
            // Rehearsal: back to 1.0.0's colour (one patch of the selector) and forward again.
            #expect(deployed.output.contains("rollback rehearsal passed"), "\(Self.tail(deployed.output))")
            let verbs = try RequestLog(project.requestLog).check(deployed.output, namespace: "hello-production")
            #expect(verbs.isSuperset(of: ["apply", "rollout status", "patch"]), "\(verbs)")
            // The old colour is gone once the bake passed; the Service selects the new one.
            let deployments = try await project.kubectl(["get", "deployments", "-n", "hello-production", "-o", "name"])
            #expect(deployments.stdout.split(separator: "\n").count == 1, "\(deployments.stdout)")

            // 1.2.0's gate fails after the switch: back to 1.1.0, exit 3, pinned.
            try await project.release("1.2.0")
            try project.repo.directory.write(".slipway/1.2.0.bad", "bad\n")
            result = try await project.deploy("production")
            #expect(result.status == 3, "\(Self.tail(result.output))")
            #expect(result.output.contains("rolled back to 1.1.0"), "\(Self.tail(result.output))")
            #expect(await Self.get("http://\(address)/version")?.body == "1.1.0")
            result = try await project.deploy("production")
            #expect(result.status == 4, "\(Self.tail(result.output))")
            #expect(try await project.deploy("unpin", "production", "--reason", "fix coming").status == 0)

            // The run store is lost: deploy rollback finds 1.0.0 in the annotations on the cluster.
            try FileManager.default.removeItem(atPath: project.repo.directory.file(".slipway/state.sqlite"))
            result = try await project.deploy("rollback", "production", "--reason", "1.1.0 misbehaves")
            #expect(result.status == 0, "\(Self.tail(result.output))")
            #expect(result.output.contains("the record kept by hello-"), "\(Self.tail(result.output))")
            #expect(await Self.get("http://\(address)/version")?.body == "1.0.0")
            let status = try await project.deploy("status")
            #expect(status.output.contains("1.0.0"), "\(Self.tail(status.output))")
        }
    }
}

extension KubernetesTargetTests {
    @Test("metric gates: kube-sim's pods scraped by a real Prometheus through deploy's discovery, the error-rate template as on docker")
    func metricGates() async throws {
        try await Project.with(
            environments: { kubeconfig in
                """
                  staging:
                    target: \(Self.target(kubeconfig, namespace: "hello-staging", overlay: "staging"))
                    strategy: rolling
                    gates: [health]
                  production:
                    target: \(Self.target(kubeconfig, namespace: "hello-production", overlay: "production"))
                    strategy: rolling
                    gates: [health, errors]
                """
            },
            gates: """
                  errors:
                    { template: error-rate, metric: hello_requests_total, window: 10s, initial_delay: 3s, times: 2, every: 1s,
                      inconclusive_limit: 1, url: "${PROMETHEUS_URL}" }
                """
        ) { project in
            try await PrometheusServer.with(stateFile: project.repo.directory.file(".slipway/state.sqlite")) { prometheus in
                // The pipeline's Prometheus is the test's own.
                let file = project.repo.directory.file("slipway.yml")
                let yaml = try String(contentsOfFile: file, encoding: .utf8)
                    .replacingOccurrences(of: "${PROMETHEUS_URL}", with: prometheus.url)
                try yaml.write(toFile: file, atomically: true, encoding: .utf8)
                try await project.repo.git("commit", "-q", "-am", "chore: the test's Prometheus")
                try await project.repo.git("tag", "-f", "v1.0.0")
                for version in ["1.0.0", "1.1.0"] {
                    if version != "1.0.0" { try await project.release(version) }
                    var result = try await project.deploy("staging")
                    try #require(result.status == 0, "\(Self.tail(result.output))")
                    result = try await project.deploy("production")
                    #expect(result.status == 0, "\(Self.tail(result.output))")
                    #expect(result.output.contains("wait for Prometheus to scrape"), "\(Self.tail(result.output))")
                }
                // Every pod of the release serving production, listed for Prometheus at its pod IP.
                let scrape = try String(
                    contentsOfFile: project.repo.directory.file(".slipway/scrape/\(project.app)-production.json"), encoding: .utf8)
                let pods = try await project.json(["get", "pods", "-n", "hello-production"])
                let ips = ((pods["items"] as? [[String: Any]]) ?? []).compactMap { ($0["status"] as? [String: Any])?["podIP"] as? String }
                #expect(!ips.isEmpty)
                for ip in ips { #expect(scrape.contains(ip), "\(scrape)") }
                #expect(scrape.contains("\"version\" : \"1.1.0\""), "\(scrape)")
                let runs = try await RunStore(path: project.repo.directory.file(".slipway/state.sqlite")).history(
                    environment: "production", limit: 1)
                let measured = try await RunStore(path: project.repo.directory.file(".slipway/state.sqlite")).measurements(
                    runID: try #require(runs.first?.id))
                #expect(measured.contains { $0.gate == "errors" && $0.verdict == .pass }, "\(measured)")
                #expect(measured.allSatisfy { $0.verdict != .fail })
                // Prometheus itself sees the pods, by the label the gates select on.
                try await prometheus.waitFor("count(up{version=\"1.1.0\"} == 1)") { $0 >= 1 }
            }
        }
    }
}
