import Foundation
public import SlipwayProcess
import Synchronization

/// The built `kube-sim` executable: $KUBE_SIM_BIN, else the debug build under .build (the release one if there is none).
public func kubeSimBinary() throws -> String {
    try builtBinary("kube-sim", overriddenBy: "KUBE_SIM_BIN")
}

/// A `kube-sim start` child: its state directory, port and kubeconfig; stopped (SIGTERM, then
/// waited for by pid) with `stop()`.
public final class KubeSimProcess: Sendable {
    public let state: String
    public let port: Int
    public let kubeconfig: String
    public let pid: Int32
    private let process: DeployProcess

    /// Starts a cluster on a free port with `state` as its directory (kept between starts).
    public init(state: String, arguments: [String] = [], environment: [String: String] = [:]) async throws {
        self.state = state
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        process = try DeployProcess(
            executable: try kubeSimBinary(), arguments: ["start", "--state", state] + arguments, directory: state,
            environment: environment)
        guard await process.waitForLine(containing: "kubeconfig "), let port = process.number(after: "127.0.0.1:") else {
            process.signal(SIGKILL)
            throw DeployProcessError(message: "kube-sim did not start:\n\(process.output.joined(separator: "\n"))")
        }
        self.port = Int(port)
        kubeconfig = "\(state)/kubeconfig"
        pid =
            Int32(
                (try? String(contentsOfFile: "\(state)/kube-sim.pid", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                    ?? "") ?? 0
    }

    public var output: String { process.output.joined(separator: "\n") }

    /// SIGTERM, then waits for it to stop its containers and exit.
    @discardableResult
    public func stop() async throws -> ProcessTermination {
        process.signal(SIGTERM)
        return try await process.wait()
    }
}

/// What a command printed, separately, and how it ended.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program (argv, never a shell) with `environment` added to this process's, in `directory`.
public func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
    timeout: Duration = .seconds(180)
) async throws -> CommandResult {
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    let spec = ProcessSpec(executable: executable, arguments: arguments, environment: env, workingDirectory: directory, timeout: timeout)
    let out = Mutex<[String]>([])
    let err = Mutex<[String]>([])
    let termination = try await ProcessRunner().run(
        spec, masker: .none, onStart: { _ in },
        onOutput: { line in
            if line.stream == .stderr {
                err.withLock { $0.append(line.text) }
            } else {
                out.withLock { $0.append(line.text) }
            }
        })
    let status: Int32 =
        switch termination {
        case .exited(let code): code
        default: -1
        }
    func joined(_ lines: [String]) -> String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }
    return CommandResult(status: status, stdout: joined(out.withLock { $0 }), stderr: joined(err.withLock { $0 }))
}

/// The real kubectl (the dispatcher on PATH, which picks its client by the server's version).
public func kubectl(
    _ arguments: [String], kubeconfig: String, home: String, directory: String? = nil, timeout: Duration = .seconds(180)
) async throws -> CommandResult {
    try await runCommand(
        "kubectl", arguments, environment: ["KUBECONFIG": kubeconfig, "HOME": home], directory: directory, timeout: timeout)
}
