import Foundation
public import SlipwayProcess
import Synchronization

/// The package's root folder, found from this file's path.
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// The built `deploy` executable: $DEPLOY_BIN, else the debug build under .build (the release one if there is none).
public func deployBinary() throws -> String {
    try builtBinary("deploy", overriddenBy: "DEPLOY_BIN")
}

/// A product of this package: $`variable`, else its debug build under .build — what `swift test`
/// builds (and only it has fault points) — else a release build (a benchmark's).
public func builtBinary(_ product: String, overriddenBy variable: String) throws -> String {
    if let path = ProcessInfo.processInfo.environment[variable] { return path }
    let candidates = [".build/debug/\(product)", ".build/release/\(product)"].map { "\(packageRoot)/\($0)" }
        .filter { FileManager.default.isExecutableFile(atPath: $0) }
    guard let binary = candidates.first else {
        throw DeployProcessError(message: "no built \(product) binary under .build: run `swift build` first (scripts/test does)")
    }
    return binary
}

public struct DeployProcessError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A `deploy` child process whose output a test can wait on, line by line.
///
/// It is started with ``ProcessRunner`` (swift-subprocess), not Foundation's `Process`: in one test
/// process the two would race to reap each other's children.
public final class DeployProcess: Sendable {
    private let state = OutputState()
    private let task: Task<ProcessTermination, any Error>

    /// `unsetting` names variables the child must not have (a new shell's environment).
    public convenience init(
        arguments: [String], directory: String, environment: [String: String] = [:], unsetting: [String] = []
    ) throws {
        try self.init(
            executable: try deployBinary(), arguments: arguments, directory: directory, environment: environment, unsetting: unsetting)
    }

    /// Runs another program (for example `script`, to give deploy a terminal).
    public init(
        executable: String, arguments: [String], directory: String, environment: [String: String] = [:], unsetting: [String] = []
    ) throws {
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "true"
        env.removeValue(forKey: "SLIPWAY_STATE")
        for (key, value) in environment { env[key] = value }
        for key in unsetting { env.removeValue(forKey: key) }
        let spec = ProcessSpec(executable: executable, arguments: arguments, environment: env, workingDirectory: directory)
        let state = self.state
        task = Task {
            defer { state.finish() }
            return try await ProcessRunner().run(
                spec, masker: .none, onStart: { pid in state.pid.withLock { $0 = pid } },
                onOutput: { line in state.add(line.text) })
        }
    }

    /// Waits until a line containing `text` is printed; false if output ends first. (A command
    /// line echoed before a step contains its script: wait for text only the step's output has.)
    public func waitForLine(containing text: String) async -> Bool {
        await state.wait(for: text)
    }

    public var output: [String] { state.lines.withLock { $0 } }

    /// The number after `prefix` on the first line that has one there (`grandchild 123` → 123).
    public func number(after prefix: String) -> Int32? {
        for line in output {
            if let range = line.range(of: prefix),
                let value = line[range.upperBound...].split(separator: " ").first.flatMap({ Int32($0) })
            {
                return value
            }
        }
        return nil
    }

    /// The process's id (also its process group's: it runs in a session of its own).
    public var pid: Int32? {
        let pid = state.pid.withLock { $0 }
        return pid > 0 ? pid : nil
    }

    public func signal(_ number: Int32) {
        let pid = state.pid.withLock { $0 }
        if pid > 0 { kill(pid, number) }
    }

    /// Waits for the process to end (its output read to the end) and says how it ended.
    public func wait() async throws -> ProcessTermination {
        try await task.value
    }
}

private final class OutputState: Sendable {
    let lines = Mutex<[String]>([])
    let pid = Mutex<Int32>(0)
    private let waiters = Mutex<(ended: Bool, list: [(String, CheckedContinuation<Bool, Never>)])>((false, []))

    func add(_ line: String) {
        lines.withLock { $0.append(line) }
        let ready = waiters.withLock { state -> [CheckedContinuation<Bool, Never>] in
            var resumed: [CheckedContinuation<Bool, Never>] = []
            state.list.removeAll { text, continuation in
                guard line.contains(text) else { return false }
                resumed.append(continuation)
                return true
            }
            return resumed
        }
        ready.forEach { $0.resume(returning: true) }
    }

    func finish() {
        let all = waiters.withLock { state in
            state.ended = true
            defer { state.list.removeAll() }
            return state.list.map(\.1)
        }
        all.forEach { $0.resume(returning: false) }
    }

    func wait(for text: String) async -> Bool {
        await withCheckedContinuation { continuation in
            // Lines are added under `lines`' lock before waiters are checked, so checking both
            // under `waiters`' lock cannot miss a line.
            let answer: Bool? = waiters.withLock { state in
                if lines.withLock({ $0.contains { $0.contains(text) } }) { return true }
                if state.ended { return false }
                state.list.append((text, continuation))
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
    }
}

/// Runs `deploy` to completion and returns its exit status and everything it printed.
public func runDeploy(
    _ arguments: [String], in directory: String, environment: [String: String] = [:], unsetting: [String] = []
) async throws -> (status: Int32, output: String) {
    let child = try DeployProcess(arguments: arguments, directory: directory, environment: environment, unsetting: unsetting)
    let termination = try await child.wait()
    return (termination.exitCode ?? -1, child.output.joined(separator: "\n"))
}
