import Foundation
public import SlipwayPipeline
public import SlipwayProcess
import Synchronization

/// The real kubectl, as a user runs it: every call an argv with the environment's kubeconfig,
/// context and namespace, and every call that changes or waits on the cluster written to the run
/// record (the command line, its exit status, what it printed).
public struct Kubectl: Sendable {
    public let executable: String
    public let spec: KubernetesTargetSpec
    public let environment: [String: String]
    public let launcher: any ProcessLaunching

    public init(spec: KubernetesTargetSpec, environment: [String: String], launcher: any ProcessLaunching) {
        self.spec = spec
        self.environment = environment
        self.launcher = launcher
        executable = environment["SLIPWAY_KUBECTL"] ?? "kubectl"
    }

    /// `--kubeconfig`, `--context` and `--namespace` as the pipeline names them.
    var globalArguments: [String] {
        var arguments: [String] = []
        if let kubeconfig = spec.kubeconfig { arguments += ["--kubeconfig", kubeconfig] }
        if let context = spec.context { arguments += ["--context", context] }
        if let namespace = spec.namespace { arguments += ["--namespace", namespace] }
        return arguments
    }

    /// A kubectl call that failed: its command line, how it ended and what it said.
    public typealias Failed = TargetCommandFailed

    /// kubectl itself could not be started.
    public struct Missing: Error, Sendable, CustomStringConvertible {
        public var executable: String
        public var description: String {
            "kubectl (`\(executable)`) was not found: install it (https://kubernetes.io/docs/tasks/tools/) "
                + "or point SLIPWAY_KUBECTL at it"
        }
    }

    public struct Result: Sendable {
        public var succeeded: Bool
        public var status: String
        public var stdout: String
        public var stderr: String
    }

    /// Runs `kubectl <global> <arguments>`; says the command, its output and how it ended to
    /// `record` (nil: a read nobody needs on the record).
    public func call(
        _ arguments: [String], timeout: Duration = .seconds(120), record: (@Sendable (String) -> Void)? = nil
    ) async throws -> Result {
        let process = ProcessSpec(
            executable: executable, arguments: globalArguments + arguments, environment: environment, timeout: timeout,
            gracePeriod: .seconds(2))
        let stdout = Mutex<[String]>([])
        let stderr = Mutex<[String]>([])
        let started = ContinuousClock.now
        let termination: ProcessTermination
        do {
            termination = try await launcher.run(
                process, masker: .none, onStart: { _ in },
                onOutput: { line in
                    if line.stream == .stdout { stdout.withLock { $0.append(line.text) } } else { stderr.withLock { $0.append(line.text) } }
                })
        } catch {
            record?("$ \(process.displayCommand)\n  could not start: \(error)")
            throw Missing(executable: executable)
        }
        let result = Result(
            succeeded: termination.succeeded, status: termination.description, stdout: stdout.withLock { $0.joined(separator: "\n") },
            stderr: stderr.withLock { $0.joined(separator: "\n") })
        if let record {
            var lines = ["$ \(process.displayCommand)"]
            let printed = (result.stdout.isEmpty ? [] : result.stdout.split(separator: "\n")) + result.stderr.split(separator: "\n")
            lines += printed.prefix(12).map { "  \($0)" }
            if printed.count > 12 { lines.append("  … \(printed.count - 12) more lines") }
            lines.append("  → \(result.status) in \(DurationParser.format(ContinuousClock.now - started))")
            record(lines.joined(separator: "\n"))
        }
        return result
    }

    /// Runs kubectl and returns its standard output; a non-zero exit throws ``Failed``.
    @discardableResult
    public func run(_ arguments: [String], timeout: Duration = .seconds(120), record: (@Sendable (String) -> Void)? = nil)
        async throws -> String
    {
        let result = try await call(arguments, timeout: timeout, record: record)
        guard result.succeeded else {
            throw Failed(
                command: ([executable] + globalArguments + arguments).map(ProcessSpec.quoteForDisplay).joined(separator: " "),
                termination: result.status, output: result.stderr.isEmpty ? result.stdout : result.stderr)
        }
        return result.stdout
    }

    /// `kubectl get … -o json`, parsed.
    func json(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await run(["get"] + arguments + ["-o", "json"])
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw Failed(
                command: "kubectl get \(arguments.joined(separator: " ")) -o json", termination: "printed no JSON object", output: "")
        }
        return object
    }

    /// The items of a `kubectl get <kinds> -l … -o json`.
    func items(_ kinds: String, selector: String) async throws -> [[String: Any]] {
        (try await json([kinds, "-l", selector])["items"] as? [[String: Any]]) ?? []
    }

    /// One object, or nil when it does not exist.
    func object(_ kind: String, _ name: String) async throws -> [String: Any]? {
        let result = try await call(["get", kind, name, "--ignore-not-found", "-o", "json"])
        guard result.succeeded else {
            throw Failed(command: "kubectl get \(kind) \(name) -o json", termination: result.status, output: result.stderr)
        }
        guard !result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    }

    /// `kubectl apply` of these objects (a List written to a file of its own, never a shell).
    func apply(_ objects: [[String: Any]], record: (@Sendable (String) -> Void)?) async throws {
        let list: [String: Any] = ["apiVersion": "v1", "kind": "List", "items": objects]
        let data = try JSONSerialization.data(withJSONObject: list, options: [.sortedKeys, .prettyPrinted])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-apply-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("objects.json")
        try data.write(to: file)
        var arguments = ["apply", "-f", file.path]
        if spec.serverSide { arguments += ["--server-side", "--field-manager=slipway", "--force-conflicts"] }
        try await run(arguments, record: record)
    }
}

/// Reading nested values of kubectl's JSON.
extension Dictionary where Key == String, Value == Any {
    subscript(path path: String...) -> Any? { self[path: path] }

    subscript(path path: [String]) -> Any? {
        var current: Any? = self
        for key in path { current = (current as? [String: Any])?[key] }
        return current
    }

    func string(_ path: String...) -> String? {
        var current: Any? = self
        for key in path { current = (current as? [String: Any])?[key] }
        return current as? String
    }

    func int(_ path: String...) -> Int? {
        var current: Any? = self
        for key in path { current = (current as? [String: Any])?[key] }
        return (current as? NSNumber)?.intValue ?? (current as? Int)
    }
}
