public import Foundation
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

/// The built `deploy` executable: $DEPLOY_BIN, else the newest under .build.
public func deployBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["DEPLOY_BIN"] { return path }
    let candidates = [".build/debug/deploy", ".build/release/deploy"].map { "\(packageRoot)/\($0)" }
        .filter { FileManager.default.isExecutableFile(atPath: $0) }
    guard let newest = candidates.max(by: { modified($0) < modified($1) }) else {
        throw DeployProcessError(message: "no built deploy binary under .build: run `swift build` first (scripts/test does)")
    }
    return newest
}

private func modified(_ path: String) -> Date {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
}

public struct DeployProcessError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A `deploy` child process whose output a test can wait on, line by line.
public final class DeployProcess: Sendable {
    public let process: Process
    private let lines = Mutex<[String]>([])
    private let waiters = Mutex<[(String, CheckedContinuation<Bool, Never>)]>([])
    private let ended = Mutex(false)

    public init(arguments: [String], directory: String, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try deployBinary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env["CI"] = "true"
        env.removeValue(forKey: "SLIPWAY_STATE")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        self.process = process
        let buffer = Mutex<[UInt8]>([])
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            if data.isEmpty {
                handle.readabilityHandler = nil
                self.finishStream(buffer.withLock { String(decoding: $0, as: UTF8.self) })
                return
            }
            let complete: [String] = buffer.withLock { pending in
                pending.append(contentsOf: data)
                guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
                let text = String(decoding: pending[...last], as: UTF8.self)
                pending.removeSubrange(...last)
                return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            }
            if !complete.isEmpty { self.add(complete) }
        }
        try process.run()
    }

    private func add(_ new: [String]) {
        lines.withLock { $0 += new }
        let ready = waiters.withLock { waiters -> [CheckedContinuation<Bool, Never>] in
            var resumed: [CheckedContinuation<Bool, Never>] = []
            waiters.removeAll { text, continuation in
                guard new.contains(where: { $0.contains(text) }) else { return false }
                resumed.append(continuation)
                return true
            }
            return resumed
        }
        ready.forEach { $0.resume(returning: true) }
    }

    private func finishStream(_ rest: String) {
        if !rest.isEmpty { add([rest]) }
        ended.withLock { $0 = true }
        let all = waiters.withLock { waiters in
            defer { waiters.removeAll() }
            return waiters.map(\.1)
        }
        all.forEach { $0.resume(returning: false) }
    }

    /// Waits until a line containing `text` is printed; false if output ends first.
    public func waitForLine(containing text: String) async -> Bool {
        await withCheckedContinuation { continuation in
            let already = lines.withLock { $0.contains { $0.contains(text) } }
            if already { continuation.resume(returning: true); return }
            let done = ended.withLock { $0 }
            if done { continuation.resume(returning: false); return }
            waiters.withLock { $0.append((text, continuation)) }
            // The line may have arrived between the check and the registration.
            let arrived = lines.withLock { $0.contains { $0.contains(text) } }
            if arrived {
                let mine = waiters.withLock { waiters -> CheckedContinuation<Bool, Never>? in
                    guard let index = waiters.firstIndex(where: { $0.0 == text }) else { return nil }
                    return waiters.remove(at: index).1
                }
                mine?.resume(returning: true)
            }
        }
    }

    public var output: [String] { lines.withLock { $0 } }

    /// The value after `prefix` on the first line that has it (`pid 123` → `123`).
    public func value(after prefix: String) -> String? {
        for line in output {
            if let range = line.range(of: prefix) {
                return line[range.upperBound...].split(separator: " ").first.map(String.init)
            }
        }
        return nil
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to end and returns its exit status.
    public func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.process.waitUntilExit()
                continuation.resume(returning: self.process.terminationStatus)
            }
        }
    }
}

/// Runs `deploy` to completion and returns its exit status and everything it printed.
public func runDeploy(_ arguments: [String], in directory: String, environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    let child = try DeployProcess(arguments: arguments, directory: directory, environment: environment)
    let status = await child.wait()
    _ = await child.waitForLine(containing: "\u{0}never")
    return (status, child.output.joined(separator: "\n"))
}
