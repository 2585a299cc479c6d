import ArgumentParser
import Foundation
import KubeSim

/// `kube-sim`: a local Kubernetes for tests and demos (not a Kubernetes).
@main
struct KubeSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube-sim",
        abstract: "A simulated Kubernetes API server whose pods really run (for tests and demos, not a Kubernetes).",
        discussion: """
            The real kubectl talks to it as to a cluster: discovery, OpenAPI, every verb Slipway uses, watches, \
            deployments with rolling updates, pods run through podman, Services and Ingresses reachable on loopback. \
            See docs/kube-sim.md for what is simulated and what is not.
            """,
        subcommands: [Start.self, Stop.self, Status.self],
        defaultSubcommand: Start.self)
}

/// Where a kube-sim keeps its objects, pid, log and kubeconfig unless told otherwise.
func defaultStateDirectory() -> String {
    FileManager.default.currentDirectoryPath + "/.kube-sim"
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a cluster (in the foreground; SIGTERM or `kube-sim stop` ends it and stops its containers).")

    @Option(help: "Port of the API server on 127.0.0.1 (0: any free port).")
    var port: Int = 0

    @Option(help: "Write the kubeconfig here (context `kube-sim`). Default: <state>/kubeconfig.")
    var kubeconfig: String?

    @Option(help: "Kubernetes version to report (1.27 … 1.33); the kubectl dispatcher picks its client by it.")
    var version: String = "1.32"

    @Option(help: "Directory for objects, pid file and kubeconfig; a restart with the same directory keeps the objects.")
    var state: String = defaultStateDirectory()

    @Option(help: "How pods run: `podman` (real containers through the docker CLI; DOCKER and DOCKER_HOST are honoured) or `simulated`.")
    var pods: String = "podman"

    @Option(help: "With --pods simulated: seconds after which a pod becomes Ready.")
    var readyAfter: Double = 2

    @Option(
        help:
            "Bearer tokens in kube-apiserver's --token-auth-file format (token,user,uid,\"group1,group2\"); without it there is no authentication."
    )
    var tokenAuthFile: String?

    @Option(help: "Append every request received (method, path, query, types) to this file as JSON lines.")
    var requestLog: String?

    @Option(
        help: ArgumentHelp("Behave as the transcripts' altered apiservers: json-only, no-openapi or legacy-discovery.", visibility: .hidden)
    )
    var experiment: String?

    @Option(help: "The token to write into the kubeconfig (with --token-auth-file).")
    var token: String?

    func validate() throws {
        guard KubeVersion(version) != nil else {
            throw ValidationError("--version \(version): give a Kubernetes version from 1.27 to 1.33, e.g. --version 1.28")
        }
        if let experiment, APIServer.Experiment(rawValue: experiment) == nil {
            throw ValidationError("--experiment \(experiment): one of json-only, no-openapi, legacy-discovery")
        }
        guard ["podman", "simulated"].contains(pods) else {
            throw ValidationError("--pods \(pods): choose `podman` (containers run) or `simulated`")
        }
    }

    func run() async throws {
        let stateURL = URL(fileURLWithPath: state).standardizedFileURL
        try FileManager.default.createDirectory(at: stateURL, withIntermediateDirectories: true)
        let pidFile = stateURL.appendingPathComponent("kube-sim.pid")
        if let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            pid != getpid(), kill(pid, 0) == 0
        {
            throw ValidationError(
                "kube-sim is already running with state \(stateURL.path) (pid \(pid)); stop it with `kube-sim stop --state \(state)`")
        }
        let environment = ProcessInfo.processInfo.environment
        let runtime: PodRuntime
        if pods == "simulated" {
            runtime = .simulated(readyAfter: .milliseconds(Int(readyAfter * 1000)))
        } else {
            let command = environment["DOCKER"] ?? (Self.onPath("docker", environment) ? "docker" : "podman")
            runtime = .containers(command: command, environment: environment)
        }
        let cluster = try await Cluster(
            options: .init(
                port: port, version: KubeVersion(version)!, stateDirectory: stateURL, runtime: runtime,
                tokenFile: tokenAuthFile.map { URL(fileURLWithPath: $0) }, requestLog: requestLog.map { URL(fileURLWithPath: $0) },
                experiment: experiment.flatMap(APIServer.Experiment.init(rawValue:))))
        let kubeconfigPath = kubeconfig ?? stateURL.appendingPathComponent("kubeconfig").path
        let token = self.token
        let signals = Self.stopSignals()
        let runTask = Task {
            try await cluster.run { port in
                let config = Self.kubeconfig(
                    server: "\(cluster.scheme)://127.0.0.1:\(port)", token: token, authority: cluster.certificateAuthorityData)
                do {
                    try config.write(toFile: kubeconfigPath, atomically: true, encoding: .utf8)
                    try String(getpid()).write(to: pidFile, atomically: true, encoding: .utf8)
                    try String(port).write(to: stateURL.appendingPathComponent("port"), atomically: true, encoding: .utf8)
                } catch {
                    FileHandle.standardError.write(Data("kube-sim: cannot write \(kubeconfigPath): \(error)\n".utf8))
                }
                say(
                    "kube-sim: API server listening on \(cluster.scheme)://127.0.0.1:\(port) as Kubernetes \(KubeVersion(version)!.gitVersion)"
                )
                say("kube-sim: kubeconfig \(kubeconfigPath) (context kube-sim); export KUBECONFIG=\(kubeconfigPath)")
                say("kube-sim: state in \(stateURL.path); stop with `kube-sim stop --state \(stateURL.path)` or SIGTERM")
            }
        }
        Task {
            for await _ in signals { runTask.cancel() }
        }
        do {
            try await runTask.value
        } catch is CancellationError {
        } catch {
            try? FileManager.default.removeItem(at: pidFile)
            throw error
        }
        try? FileManager.default.removeItem(at: pidFile)
        print("kube-sim: stopped; objects kept in \(stateURL.path)")
    }

    static func onPath(_ name: String, _ environment: [String: String]) -> Bool {
        (environment["PATH"] ?? "").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(name)")
        }
    }

    /// SIGTERM and SIGINT, as an async sequence.
    static func stopSignals() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield(signalNumber) }
            source.resume()
            SignalSources.keep(source)
        }
        return stream
    }

    static func kubeconfig(server: String, token: String?, authority: String?) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: kube-sim
          cluster:
            server: \(server)\(authority.map { "\n    certificate-authority-data: \($0)" } ?? "")
        users:
        - name: kube-sim
          user:\(token.map { "\n    token: \($0)" } ?? " {}")
        contexts:
        - name: kube-sim
          context:
            cluster: kube-sim
            user: kube-sim
            namespace: default
        current-context: kube-sim

        """
    }
}

/// Keeps signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    static let lock = NSLock()
    static func keep(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the cluster started with this state directory (its containers stop too).")

    @Option(help: "The state directory the cluster was started with.")
    var state: String = defaultStateDirectory()

    func run() throws {
        let pidFile = URL(fileURLWithPath: state).appendingPathComponent("kube-sim.pid")
        guard let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            print("kube-sim: not running (no pid file in \(state))")
            return
        }
        guard kill(pid, 0) == 0 else {
            try? FileManager.default.removeItem(at: pidFile)
            print("kube-sim: not running (pid \(pid) is gone)")
            return
        }
        kill(pid, SIGTERM)
        // Wait for it to stop its containers and save (up to 60 s).
        for _ in 0..<600 where kill(pid, 0) == 0 { usleep(100_000) }
        if kill(pid, 0) == 0 {
            throw ValidationError("kube-sim (pid \(pid)) did not stop within 60 s")
        }
        print("kube-sim: stopped (pid \(pid))")
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Say whether a cluster runs with this state directory, and where.")

    @Option(help: "The state directory the cluster was started with.")
    var state: String = defaultStateDirectory()

    func run() throws {
        let base = URL(fileURLWithPath: state)
        guard let text = try? String(contentsOf: base.appendingPathComponent("kube-sim.pid"), encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
        else {
            print("kube-sim: not running (state \(base.path))")
            throw ExitCode(3)
        }
        let port = (try? String(contentsOf: base.appendingPathComponent("port"), encoding: .utf8)) ?? "?"
        print("kube-sim: running, pid \(pid), http://127.0.0.1:\(port), kubeconfig \(base.appendingPathComponent("kubeconfig").path)")
    }
}

/// One line on stdout, unbuffered (a parent waiting for it may read a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
