import Foundation
import KubeSim
import SlipwayTestSupport
import Testing

/// Plays every transcript in Transcripts/jsonl back against kube-sim with the real kubectl, and
/// compares what kube-sim received (method, path, query, content type) and what kubectl printed
/// and returned with what the real kube-apiserver v1.28.7 got and kubectl printed then.
///
/// Scenarios run in the order they were captured, on one cluster per server configuration, because
/// later ones build on earlier ones (as in the capture). Pods run simulated, Ready 2 s after they
/// start, as the capture's lab marked them. Where a comparison cannot match, `Deviation` says why.
@Suite("kube-sim replays the kubectl transcripts", .exclusiveRun)
struct ReplayTests {
    static let transcripts = "\(packageRoot)/Tests/KubeSimTests/Transcripts"

    @Test("every transcript: the same requests, exit codes and output (modulo names, uids, times)")
    func everyTranscript() async throws {
        let scenarios = try Transcript.all(in: Self.transcripts)
        #expect(scenarios.count == 26)
        let work = try TemporaryDirectory("kube-sim-replay")
        defer { work.remove() }
        try work.write("tokens.csv", "admin-token,kube-lab-admin,1,\"system:masters\"\nnobody-token,kube-lab-nobody,2\n")
        var cluster: (config: ServerConfig, process: KubeSimProcess)?
        var compared = 0
        for scenario in scenarios {
            let config = ServerConfig(for: scenario.name)
            if cluster?.config != config {
                if let running = cluster { try await running.process.stop() }
                let process = try await KubeSimProcess(
                    state: work.file("state-\(config.stateName)"),
                    arguments: [
                        "--pods", "simulated", "--ready-after", "2", "--version", config.version, "--token-auth-file",
                        work.file("tokens.csv"), "--token", "admin-token", "--request-log", work.file("requests-\(config.stateName).jsonl"),
                    ] + (config.experiment.map { ["--experiment", $0] } ?? []))
                cluster = (config, process)
                try writeKubeconfigs(process, into: work)
            }
            let home = work.file("home-\(scenario.name)")
            let helperHome = work.file("home-\(scenario.name)-helpers")
            for step in scenario.steps {
                switch step {
                case .helper(let shell):
                    try await runHelper(shell, work: work, home: helperHome)
                case .command(let command):
                    if let running = cluster, !ProcessWatch.isAlive(running.process.pid) {
                        Issue.record(
                            "kube-sim (pid \(running.process.pid)) is gone before \(scenario.name) step \(command.step):\n\(running.process.output)"
                        )
                    }
                    let log = work.file("requests-\(config.stateName).jsonl")
                    let before = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").count ?? 0
                    let result = try await kubectl(
                        command.arguments, kubeconfig: work.file("\(command.kubeconfig).kubeconfig"), home: home,
                        directory: Self.transcripts)
                    let lines = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").dropFirst(before) ?? []
                    let received = lines.compactMap { try? JSON.parse(String($0)) }.filter(Transcript.isKubectlRequest)
                        .map(Transcript.describe)
                    let problems = Comparison.problems(command: command, scenario: scenario.name, result: result, received: received)
                    #expect(
                        problems.isEmpty,
                        "\(scenario.name) step \(command.step) `kubectl \(command.arguments.joined(separator: " "))`:\n\(problems.joined(separator: "\n"))"
                    )
                    compared += 1
                }
            }
        }
        if let running = cluster { try await running.process.stop() }
        #expect(compared == 106)
    }

    /// `proxy` (the administrator's token), `nobody` (a token no role is bound to) and `unreachable`
    /// (nothing listens), as the capture's kubeconfigs were.
    private func writeKubeconfigs(_ process: KubeSimProcess, into work: TemporaryDirectory) throws {
        let base = try String(contentsOfFile: process.kubeconfig, encoding: .utf8)
        try work.write("proxy.kubeconfig", base)
        try work.write("nobody.kubeconfig", base.replacingOccurrences(of: "token: admin-token", with: "token: nobody-token"))
        try work.write(
            "unreachable.kubeconfig", base.replacingOccurrences(of: "127.0.0.1:\(process.port)", with: "127.0.0.1:1"))
    }

    /// The capture's uncaptured set-up steps (sent straight to the apiserver there): `kubectl …`
    /// commands joined by `&&`. Objects kubectl would create with a protobuf body (namespace, role,
    /// rolebinding) are applied from YAML instead, so that they also work against the json-only
    /// experiment server; the step that marks a pod unready waits for the pod to be unready instead
    /// of sleeping.
    private func runHelper(_ shell: String, work: TemporaryDirectory, home: String) async throws {
        let kubeconfig = work.file("proxy.kubeconfig")
        if shell.hasPrefix("POD=") {
            let namespace = "wire-25"
            let pods = try await kubectl(
                ["-n", namespace, "get", "pods", "-l", "app=web", "-o", "name"], kubeconfig: kubeconfig, home: home)
            let pod = try #require(pods.stdout.split(separator: "\n").map(String.init).sorted().first)
            _ = try await kubectl(["-n", namespace, "annotate", pod, "sim.example/force-unready=true"], kubeconfig: kubeconfig, home: home)
            let waited = try await kubectl(
                ["-n", namespace, "wait", "--for=condition=Ready=false", pod, "--timeout=30s"], kubeconfig: kubeconfig, home: home)
            #expect(waited.status == 0, "the pod marked unready became unready: \(waited.stderr)")
            return
        }
        for part in shell.components(separatedBy: " && ") {
            var words = part.split(separator: " ").map(String.init)
            // `kubectl-1.28 --kubeconfig <lab kubeconfig>`
            words.removeFirst(4)
            var namespace: String?
            if words.first == "-n" {
                namespace = words[1]
                words.removeFirst(2)
            }
            let manifest: String?
            switch (words.first, words.dropFirst().first) {
            case ("create", "namespace"):
                manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(words[2])\n"
            case ("create", "role"):
                manifest = """
                    apiVersion: rbac.authorization.k8s.io/v1
                    kind: Role
                    metadata: {name: \(words[2]), namespace: \(namespace ?? "default")}
                    rules: [{apiGroups: [apps], resources: [deployments], verbs: [get, list, watch]}]

                    """
            case ("create", "rolebinding"):
                manifest = """
                    apiVersion: rbac.authorization.k8s.io/v1
                    kind: RoleBinding
                    metadata: {name: \(words[2]), namespace: \(namespace ?? "default")}
                    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deploy-viewer}
                    subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-lab-nobody}]

                    """
            default:
                manifest = nil
            }
            let arguments: [String]
            if let manifest {
                let file = try work.write("helper-\(UUID().uuidString.prefix(8)).yaml", manifest)
                arguments = ["apply", "--validate=false", "-f", file]
            } else {
                arguments = (namespace.map { ["-n", $0] } ?? []) + words
            }
            let result = try await kubectl(arguments, kubeconfig: kubeconfig, home: home, directory: Self.transcripts)
            #expect(result.status == 0, "set-up step `\(part)`: \(result.stderr)")
        }
    }
}

/// Which cluster a scenario runs on: kubectl 1.28's scenarios on one reporting 1.28 (the dispatcher
/// picks its client by the server's version), the experiments on one switched to that experiment
/// (restarted on the same state, so each experiment keeps what the one before it left).
struct ServerConfig: Equatable {
    var version: String
    var stateName: String
    var experiment: String?

    init(for scenario: String) {
        let number = Int(scenario.prefix(2)) ?? 0
        switch number {
        case 14...16: self = ServerConfig(version: "1.28", stateName: "kubectl-1.28", experiment: nil)
        case 17: self = ServerConfig(version: "1.32", stateName: "experiments", experiment: "json-only")
        case 18: self = ServerConfig(version: "1.32", stateName: "experiments", experiment: "no-openapi")
        case 19: self = ServerConfig(version: "1.32", stateName: "experiments", experiment: "legacy-discovery")
        default: self = ServerConfig(version: "1.32", stateName: "main", experiment: nil)
        }
    }

    init(version: String, stateName: String, experiment: String?) {
        self.version = version
        self.stateName = stateName
        self.experiment = experiment
    }
}

/// One captured scenario: its commands (with the requests each sent) and set-up steps, in order.
struct Transcript {
    struct Command {
        var step: Int
        var arguments: [String]
        var kubeconfig: String
        var exit: Int32
        var stdout: String
        var stderr: String
        var requests: [String]
    }

    enum Step {
        case command(Command)
        case helper(String)
    }

    var name: String
    var steps: [Step]

    /// Every scenario, in capture order: 01–13, 20–26, then kubectl 1.28's 14–16, then the experiments 17–19.
    static func all(in directory: String) throws -> [Transcript] {
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/jsonl").filter { $0.hasSuffix(".jsonl") }
        func rank(_ name: String) -> (Int, String) {
            let number = Int(name.prefix(2)) ?? 0
            return ((14...19).contains(number) ? 1 : 0, name)
        }
        return try files.sorted { rank($0) < rank($1) }.map { file in
            try Transcript(file: "\(directory)/jsonl/\(file)")
        }
    }

    init(file: String) throws {
        name = String(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent)
        steps = []
        var current: Command?
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            let event = try JSON.parse(String(line))
            switch event["ev"]?.string ?? "" {
            case "command":
                if let current { steps.append(.command(current)) }
                current = Command(
                    step: event["step"]?.int ?? 0,
                    arguments: (event["argv"]?.array ?? []).dropFirst().compactMap(\.string).filter { $0 != "-v=9" },
                    kubeconfig: event["kubeconfig"]?.string ?? "proxy", exit: Int32(event["exit"]?.int ?? 0),
                    stdout: event["stdout"]?.string ?? "", stderr: event["stderr_non_klog"]?.string ?? "", requests: [])
            case "req":
                let headers = event["headers"]?.array ?? []
                let contentType = headers.first { $0.array?.first?.string == "Content-Type" }?.array?.last?.string ?? ""
                let target = event["target"]?.string ?? ""
                let parts = target.split(separator: "?", maxSplits: 1)
                current?.requests.append(
                    Self.normalize(
                        method: event["method"]?.string ?? "", path: String(parts[0]),
                        query: parts.count > 1 ? String(parts[1]) : "", contentType: contentType))
            case let kind where kind.hasPrefix("helper"):
                if let done = current { steps.append(.command(done)) }
                current = nil
                steps.append(.helper(event["shell"]?.string ?? ""))
            default:
                break
            }
        }
        if let current { steps.append(.command(current)) }
    }

    /// The dispatcher's own `GET /version?timeout=5s` (it picks the client with it) is not kubectl's.
    static func isKubectlRequest(_ entry: JSON) -> Bool {
        !((entry["userAgent"]?.string ?? "").contains("dispatcher") || entry["query"]?.string == "timeout=5s")
    }

    static func describe(_ entry: JSON) -> String {
        normalize(
            method: entry["method"]?.string ?? "", path: entry["path"]?.string ?? "", query: entry["query"]?.string ?? "",
            contentType: entry["contentType"]?.string ?? "")
    }

    /// `METHOD path?sorted-query content-type`, with generated names, resource versions, watch
    /// timeouts and OpenAPI hashes replaced by placeholders.
    static func normalize(method: String, path: String, query: String, contentType: String) -> String {
        var pairs: [String] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            var value = parts.count > 1 ? parts[1] : ""
            if parts[0] == "resourceVersion", value != "0" { value = "RV" }
            if parts[0] == "timeoutSeconds" || parts[0] == "hash" { value = "X" }
            pairs.append("\(parts[0])=\(value)")
        }
        let path = Normalize.names(path)
        return "\(method) \(path)?\(pairs.sorted().joined(separator: "&")) \(contentType)".trimmingCharacters(in: .whitespaces)
    }
}
