import Foundation
import KubeSim
import SlipwayTestSupport
import Testing

/// kube-sim with pods that really run (podman behind the docker CLI, images from a real local
/// registry), driven only by the real kubectl, as a user drives a cluster.
@Suite("kube-sim end to end with real pods", .sharedContainerServices)
struct KubeSimEndToEndTests {
    /// Both kubectl clients the dispatcher picks (by the version kube-sim reports).
    @Test("the hello app rolls out, serves through its Service, survives a broken release, rolls back", arguments: ["1.28", "1.32"])
    func helloLifecycle(version: String) async throws {
        try await ContainerServices.shared { services in
            let work = try TemporaryDirectory("kube-sim-e2e")
            defer { work.remove() }
            let good = try await HelloImages.shared(services, version: "1.0.0")
            let broken = try await HelloImages.shared(services, version: "1.1.0-broken", broken: true)
            let cluster = try await KubeSimProcess(
                state: work.file("state"), arguments: ["--version", version], environment: services.environment)
            let k = Kube(cluster: cluster, home: work.file("home"))
            let manifests = try HelloImages.manifests(image: good, into: work)

            // The client the dispatcher ran is the one asked for.
            let clientVersion = try await k.run(["version", "-o", "json"])
            let document = try JSON.parse(clientVersion.stdout)
            #expect(document[path: ["clientVersion", "minor"]]?.string?.hasPrefix(String(version.split(separator: ".")[1])) == true)

            // Apply, and the rollout completes with three pods answering.
            let applied = try await k.run(["apply", "-f", manifests])
            #expect(applied.stdout.contains("deployment.apps/hello created"), "\(applied.stderr)")
            let rolledOut = try await k.run(["rollout", "status", "deployment/hello", "--timeout=90s"])
            let podsAfterRollout = try await k.run(["get", "pods", "-o", "yaml"]).stdout
            #expect(
                rolledOut.status == 0 && rolledOut.stdout.contains("successfully rolled out"),
                "\(rolledOut.stdout)\(rolledOut.stderr)\(podsAfterRollout)")
            let address = try await k.run(["get", "service", "hello", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(address.hasPrefix("127."))
            let answers = try await HTTP.getMany("http://\(address)/", count: 9, until: { $0 == "hello from 1.0.0" })
            #expect(answers.allSatisfy { $0 == "hello from 1.0.0" }, "\(answers)")
            let endpoints = try await k.json(["get", "endpoints", "hello", "-o", "json"])
            #expect(endpoints[path: ["subsets"]]?.array?.first?["addresses"]?.array?.count == 3)

            // A release whose /health fails never becomes Ready; the old pods keep serving.
            let setImage = try await k.run(["set", "image", "deployment/hello", "hello=\(broken)"])
            #expect(setImage.status == 0, "\(setImage.stderr)")
            let stuck = try await k.run(["rollout", "status", "deployment/hello", "--timeout=8s"])
            #expect(stuck.status == 1, "\(stuck.stdout)")
            #expect(stuck.stderr.contains("timed out waiting for the condition"), "\(stuck.stderr)")
            #expect(stuck.stdout.contains("1 out of 3 new replicas have been updated"), "\(stuck.stdout)")
            let during = try await HTTP.getMany("http://\(address)/", count: 6)
            #expect(during.allSatisfy { $0 == "hello from 1.0.0" }, "\(during)")
            let pods = try await k.json(["get", "pods", "-l", "app=hello", "-o", "json"])
            let unready = (pods["items"]?.array ?? []).filter { pod in
                pod[path: ["spec", "containers"]]?.array?.first?["image"]?.string == broken
            }
            #expect(unready.count == 1)
            // Not Ready (under load its kubelet may not have reported any status yet).
            let readyCondition = unready.first?[path: ["status", "conditions"]]?.array?.first { $0["type"] == "Ready" }
            #expect(readyCondition?["status"] != "True", "\(unready)")

            // Undo: back to the good template, as revision 3; history lists 2 and 3.
            let undo = try await k.run(["rollout", "undo", "deployment/hello"])
            #expect(undo.stdout.contains("rolled back"), "\(undo.stderr)")
            let recovered = try await k.run(["rollout", "status", "deployment/hello", "--timeout=90s"])
            #expect(recovered.status == 0, "\(recovered.stdout)\(recovered.stderr)")
            let history = try await k.run(["rollout", "history", "deployment/hello"])
            let revisions = history.stdout.split(separator: "\n").compactMap { Int($0.split(separator: " ").first ?? "") }
            #expect(revisions == [2, 3], "\(history.stdout)")
            let waited = try await k.run(["wait", "--for=condition=Available", "deployment/hello", "--timeout=30s"])
            #expect(waited.stdout.contains("condition met"), "\(waited.stderr)")
            let afterUndo = try await HTTP.getMany("http://\(address)/", count: 3)
            #expect(afterUndo.allSatisfy { $0 == "hello from 1.0.0" }, "\(afterUndo)")

            // label, annotate, scale, patch, get -o json.
            #expect(try await k.run(["label", "deployment/hello", "tier=web"]).status == 0)
            #expect(try await k.run(["annotate", "deployment/hello", "slipway.dev/release=r3"]).status == 0)
            #expect(try await k.run(["scale", "deployment/hello", "--replicas=2"]).status == 0)
            #expect(try await k.run(["patch", "deployment/hello", "--type=merge", "-p", #"{"spec":{"minReadySeconds":0}}"#]).status == 0)
            #expect(try await k.run(["rollout", "status", "deployment/hello", "--timeout=60s"]).status == 0)
            let deployment = try await k.json(["get", "deployment", "hello", "-o", "json"])
            #expect(deployment[path: ["metadata", "labels", "tier"]] == "web")
            #expect(deployment[path: ["metadata", "annotations", "slipway.dev/release"]] == "r3")
            #expect(deployment[path: ["status", "readyReplicas"]] == 2)
            let endpointsAfterScale = try await k.json(["get", "endpoints", "hello", "-o", "json"])
            #expect(endpointsAfterScale[path: ["subsets"]]?.array?.first?["addresses"]?.array?.count == 2)

            // delete: the ReplicaSets and pods it owns go, and so do their containers.
            let deleted = try await k.run(["delete", "deployment", "hello", "--wait=true"])
            #expect(deleted.stdout.contains("deleted"), "\(deleted.stderr)")
            let gone = try await k.run(["wait", "--for=delete", "pods", "-l", "app=hello", "--timeout=60s"])
            #expect(gone.status == 0, "\(gone.stderr)")
            let sets = try await k.run(["get", "replicasets", "-l", "app=hello", "-o", "name"])
            #expect(sets.stdout.isEmpty, "\(sets.stdout)")
            #expect(try await HelloImages.containers(of: cluster, services).isEmpty)

            try await cluster.stop()
        }
    }

    @Test("stopping kube-sim stops its containers; starting it again keeps the objects and runs the pods again")
    func restartKeepsObjects() async throws {
        try await ContainerServices.shared { services in
            let work = try TemporaryDirectory("kube-sim-restart")
            defer { work.remove() }
            let image = try await HelloImages.shared(services, version: "1.0.0")
            let manifests = try HelloImages.manifests(image: image, into: work)
            var cluster = try await KubeSimProcess(state: work.file("state"), environment: services.environment)
            var k = Kube(cluster: cluster, home: work.file("home"))
            #expect(try await k.run(["apply", "-f", manifests]).status == 0)
            let first = try await k.run(["rollout", "status", "deployment/hello", "--timeout=90s"])
            let podsAfterFirst = try await k.run(["get", "pods", "-o", "yaml"]).stdout
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)\(podsAfterFirst)")
            let created = try await k.run(["create", "configmap", "kept", "--from-literal=a=b"])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(try await HelloImages.containers(of: cluster, services).count == 3)

            // `kube-sim stop` (the command) ends it and its containers.
            let stopped = try await runCommand(try kubeSimBinary(), ["stop", "--state", work.file("state")])
            #expect(stopped.stdout.contains("stopped"), "\(stopped.stdout)\(stopped.stderr)")
            #expect(ProcessWatch.waitForExit(cluster.pid))
            #expect(try await HelloImages.containers(of: cluster, services).isEmpty)

            cluster = try await KubeSimProcess(state: work.file("state"), environment: services.environment)
            k = Kube(cluster: cluster, home: work.file("home"))
            let configMap = try await k.json(["get", "configmap", "kept", "-o", "json"])
            #expect(configMap[path: ["data", "a"]] == "b")
            let rolledOut = try await k.run(["rollout", "status", "deployment/hello", "--timeout=90s"])
            #expect(rolledOut.status == 0, "\(rolledOut.stdout)\(rolledOut.stderr)")
            let address = try await k.run(["get", "service", "hello", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let answers = try await HTTP.getMany(
                "http://\(address)/version", count: 3, until: { $0 == image.split(separator: ":").last.map(String.init) })
            #expect(answers.count == 3, "\(answers)")
            try await cluster.stop()
            #expect(try await HelloImages.containers(of: cluster, services).isEmpty)
        }
    }

    @Test("a container that exits is restarted with back-off (CrashLoopBackOff, restart count); an exec probe decides readiness")
    func crashLoopAndExecProbe() async throws {
        try await ContainerServices.shared { services in
            let work = try TemporaryDirectory("kube-sim-crash")
            defer { work.remove() }
            let image = try await HelloImages.shared(services, version: "1.0.0")
            let cluster = try await KubeSimProcess(state: work.file("state"), environment: services.environment)
            let k = Kube(cluster: cluster, home: work.file("home"))
            let manifest = try work.write(
                "pods.yaml",
                """
                apiVersion: v1
                kind: Pod
                metadata: {name: crasher}
                spec:
                  containers:
                    - name: main
                      image: \(image)
                      command: [/bin/busybox, sh, -c, "exit 3"]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: checked}
                spec:
                  containers:
                    - name: main
                      image: \(image)
                      readinessProbe:
                        exec: {command: [/bin/busybox, test, -e, /tmp/ready]}
                        periodSeconds: 1

                """)
            let applied = try await k.run(["apply", "-f", manifest])
            #expect(applied.status == 0, "\(applied.stderr)")
            // The crasher: restarted after it exits, then held back (the kubelet's back-off).
            let restarted = try await k.run([
                "wait", "--for=jsonpath={.status.containerStatuses[0].restartCount}=1", "pod/crasher", "--timeout=60s",
            ])
            #expect(restarted.status == 0, "\(restarted.stderr)")
            let crasher = try await k.json(["get", "pod", "crasher", "-o", "json"])
            let status = crasher[path: ["status", "containerStatuses"]]?.array?.first
            #expect(status?[path: ["lastState", "terminated", "exitCode"]] == 3)
            #expect(status?["ready"] == false)
            let table = try await k.run(["get", "pod", "crasher"])
            #expect(table.stdout.contains("CrashLoopBackOff") || table.stdout.contains("Running"), "\(table.stdout)")
            // The exec probe: unready until the file exists, then Ready.
            #expect(try await k.run(["wait", "--for=jsonpath={.status.phase}=Running", "pod/checked", "--timeout=60s"]).status == 0)
            let before = try await k.json(["get", "pod", "checked", "-o", "json"])
            #expect(before[path: ["status", "containerStatuses"]]?.array?.first?["ready"] == false)
            let name =
                "ksim-\(try String(contentsOfFile: "\(cluster.state)/network", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))-default-checked-main"
            let touched = try await runCommand(
                HelloImages.docker, ["exec", name, "/bin/busybox", "touch", "/tmp/ready"], environment: services.environment)
            #expect(touched.status == 0, "\(touched.stderr)")
            let ready = try await k.run(["wait", "--for=condition=Ready", "pod/checked", "--timeout=60s"])
            #expect(ready.status == 0, "\(ready.stderr)")
            try await cluster.stop()
        }
    }

    @Test("ingress-nginx canary annotations and HTTPRoute weights steer real requests")
    func ingressAndRoutes() async throws {
        try await ContainerServices.shared { services in
            let work = try TemporaryDirectory("kube-sim-ingress")
            defer { work.remove() }
            let stable = try await HelloImages.shared(services, version: "1.0.0")
            let canary = try await HelloImages.shared(services, version: "1.2.0")
            let cluster = try await KubeSimProcess(state: work.file("state"), environment: services.environment)
            let k = Kube(cluster: cluster, home: work.file("home"))
            let file = try work.write("ingress.yaml", IngressManifests.yaml(stable: stable, canary: canary))
            #expect(try await k.run(["apply", "-f", file]).status == 0)
            for name in ["hello-stable", "hello-canary"] {
                #expect(try await k.run(["rollout", "status", "deployment/\(name)", "--timeout=90s"]).status == 0)
            }
            // The ingress controller publishes its address on the Ingress.
            var address = ""
            for _ in 0..<600 where address.isEmpty {
                address = try await k.run(["get", "ingress", "hello", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]).stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(address.hasPrefix("127."))
            let stableVersion = String(stable.split(separator: ":").last!)
            let canaryVersion = String(canary.split(separator: ":").last!)
            // Weight 0: everything to stable; the header `always` sends a request to the canary.
            let plain = try await HTTP.getMany("http://\(address)/version", count: 6, host: "hello.example")
            #expect(plain.allSatisfy { $0 == stableVersion }, "\(plain)")
            let forced = try await HTTP.getMany(
                "http://\(address)/version", count: 3, host: "hello.example", headers: ["X-Canary": "always"])
            #expect(forced.allSatisfy { $0 == canaryVersion }, "\(forced)")
            // Weight 100: everything to the canary.
            #expect(
                try await k.run(["annotate", "ingress", "hello-canary", "nginx.ingress.kubernetes.io/canary-weight=100", "--overwrite"])
                    .status == 0)
            let shifted = try await HTTP.getMany(
                "http://\(address)/version", count: 6, host: "hello.example", until: { $0 == canaryVersion })
            #expect(shifted.allSatisfy { $0 == canaryVersion }, "\(shifted)")
            try await cluster.stop()
        }
    }
}

/// kubectl against one kube-sim, with a HOME of its own (its discovery cache).
struct Kube {
    let cluster: KubeSimProcess
    let home: String

    func run(_ arguments: [String]) async throws -> CommandResult {
        try await kubectl(arguments, kubeconfig: cluster.kubeconfig, home: home)
    }

    func json(_ arguments: [String]) async throws -> JSON {
        let result = try await run(arguments)
        guard result.status == 0 else { throw DeployProcessError(message: "kubectl \(arguments.joined(separator: " ")): \(result.stderr)") }
        return try JSON.parse(result.stdout)
    }
}

/// The example app's images, built from Examples/hello and pushed to the suite's registry, once
/// per registry and version for the whole suite (fewer builds beside the rest of the tests).
enum HelloImages {
    private static let builds = BuildCache()

    actor BuildCache {
        var tasks: [String: Task<String, any Error>] = [:]

        func image(_ key: String, _ make: @escaping @Sendable () async throws -> String) -> Task<String, any Error> {
            if let task = tasks[key] { return task }
            let task = Task { try await make() }
            tasks[key] = task
            return task
        }
    }

    /// `REGISTRY/hello:VERSION` (whose /version answers VERSION; /health fails when `broken`).
    static func shared(_ services: ContainerServices, version: String, broken: Bool = false) async throws -> String {
        let task = await builds.image("\(services.registry)|\(version)|\(broken)") {
            let work = try TemporaryDirectory("hello-image")
            defer { work.remove() }
            return try await build(services, tag: version, broken: broken, work: work)
        }
        return try await task.value
    }

    static var docker: String {
        ProcessInfo.processInfo.environment["DOCKER"]
            ?? ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
                FileManager.default.isExecutableFile(atPath: "\($0)/docker")
            } ? "docker" : "podman")
    }

    /// `REGISTRY/hello:TAG`, whose /version answers TAG (and whose /health fails when `broken`).
    static func build(_ services: ContainerServices, tag: String, broken: Bool, work: TemporaryDirectory) async throws -> String {
        let context = work.file("hello-\(tag)")
        try FileManager.default.copyItem(atPath: "\(packageRoot)/Examples/hello", toPath: context)
        let prepared = try await runCommand("\(context)/prepare", [], environment: ["DEPLOY_VERSION": tag])
        guard prepared.status == 0 else { throw DeployProcessError(message: "prepare: \(prepared.stderr)") }
        if broken {
            _ = try await runCommand("\(context)/break", [])
        }
        let image = "\(services.registry)/hello:\(tag)"
        for arguments in [["build", "-q", "-t", image, "-f", "Containerfile", "."], ["push", image]] {
            let result = try await runCommand(docker, arguments, environment: services.environment, directory: context)
            guard result.status == 0 else {
                throw DeployProcessError(message: "\(docker) \(arguments.joined(separator: " ")): \(result.stderr)")
            }
        }
        return image
    }

    /// Manifests/hello with the image replaced.
    static func manifests(image: String, into work: TemporaryDirectory) throws -> String {
        let directory = work.file("manifests")
        for file in ["deployment.yaml", "service.yaml"] {
            let text = try String(contentsOfFile: "\(packageRoot)/Manifests/hello/base/\(file)", encoding: .utf8)
            try work.write("manifests/\(file)", text.replacingOccurrences(of: "127.0.0.1:5000/hello:1.0.0", with: image))
        }
        return directory
    }

    /// The containers a kube-sim instance runs (by its label).
    static func containers(of cluster: KubeSimProcess, _ services: ContainerServices) async throws -> [String] {
        let block = try String(contentsOfFile: "\(cluster.state)/network", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try await runCommand(
            docker, ["ps", "-aq", "--filter", "label=kube-sim.instance=\(block)"], environment: services.environment)
        return result.stdout.split(separator: "\n").map(String.init)
    }
}

enum IngressManifests {
    static func route(stableWeight: Int, canaryWeight: Int) -> String {
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: hello}
        spec:
          parentRefs: [{name: public}]
          hostnames: [route.example]
          rules:
            - matches: [{path: {type: PathPrefix, value: /}}]
              backendRefs:
                - {name: hello-stable, port: 80, weight: \(stableWeight)}
                - {name: hello-canary, port: 80, weight: \(canaryWeight)}

        """
    }

    static func yaml(stable: String, canary: String) -> String {
        func deployment(_ name: String, _ image: String) -> String {
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: \(name)}
            spec:
              replicas: 1
              selector: {matchLabels: {app: \(name)}}
              template:
                metadata: {labels: {app: \(name)}}
                spec:
                  containers:
                    - name: hello
                      image: \(image)
                      ports: [{name: http, containerPort: 8080}]
                      readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: \(name)}
            spec:
              selector: {app: \(name)}
              ports: [{name: http, port: 80, targetPort: http}]
            ---

            """
        }
        return deployment("hello-stable", stable) + deployment("hello-canary", canary) + """
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: hello}
            spec:
              ingressClassName: nginx
              rules:
                - host: hello.example
                  http:
                    paths:
                      - {path: /, pathType: Prefix, backend: {service: {name: hello-stable, port: {number: 80}}}}
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: hello-canary
              annotations:
                nginx.ingress.kubernetes.io/canary: "true"
                nginx.ingress.kubernetes.io/canary-weight: "0"
                nginx.ingress.kubernetes.io/canary-by-header: X-Canary
            spec:
              ingressClassName: nginx
              rules:
                - host: hello.example
                  http:
                    paths:
                      - {path: /, pathType: Prefix, backend: {service: {name: hello-canary, port: {number: 80}}}}

            """
    }
}

/// Plain HTTP GETs with curl (a real client, as users reach the Service).
enum HTTP {
    /// `count` answers in a row; with `until`, answers before the first that satisfies it are
    /// dropped (a change reaching the proxy), asking again up to 600 times.
    static func getMany(
        _ url: String, count: Int, host: String? = nil, headers: [String: String] = [:], until: ((String) -> Bool)? = nil
    ) async throws -> [String] {
        var arguments = ["-sS", "-m", "5"]
        if let host { arguments += ["-H", "Host: \(host)"] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        arguments.append(url)
        var answers: [String] = []
        var waited = 0
        while answers.count < count {
            let result = try await runCommand("curl", arguments, timeout: .seconds(10))
            let body =
                result.status == 0
                ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : "curl failed (exit \(result.status)) \(result.stderr)"
            if let until, answers.isEmpty, !until(body), waited < 600 {
                waited += 1
                continue
            }
            answers.append(body)
        }
        return answers
    }
}
