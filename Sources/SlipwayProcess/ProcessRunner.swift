import Foundation
import Subprocess
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs child processes. The real one is ``ProcessRunner``; engine tests may swap in another.
public protocol ProcessLaunching: Sendable {
    /// Runs `spec` to completion, streaming each masked line to `onOutput` as it arrives.
    ///
    /// A non-zero exit is a result, not an error. Throws ``ProcessLaunchError`` only when the child
    /// could not be started. When the calling task is cancelled the child's process group is
    /// stopped and the result is ``ProcessTermination/cancelled``.
    func run(
        _ spec: ProcessSpec,
        masker: SecretMasker,
        onStart: @escaping @Sendable (Int32) async -> Void,
        onOutput: @escaping @Sendable (OutputLine) async -> Void
    ) async throws -> ProcessTermination
}

/// Runs children with swift-subprocess, each in a session (and so a process group) of its own.
///
/// On a timeout or on cancellation the whole group gets SIGTERM, then SIGKILL once the spec's grace
/// period has passed, so grandchildren (a script's background jobs, `docker` helpers) die with it.
public struct ProcessRunner: ProcessLaunching {
    let clock: any Clock<Duration>

    public init(clock: any Clock<Duration> = ContinuousClock()) {
        self.clock = clock
    }

    private struct TimedOut: Error {}

    /// What ended inside a running child's watch.
    private enum Part: Sendable {
        case drained
        case exited(keptBackground: Bool)
        case readingStopped
    }

    /// Returns once `pid` (our child) has exited, without reaping it (swift-subprocess does): a
    /// `waitid(WNOWAIT)` blocked on a thread outside the concurrency pool, so no polling and no
    /// delay after the exit (an error, the child already reaped, also means it has exited). A
    /// cancelled wait returns at once: a timed-out child is stopped only after this returns.
    private static func waitForExit(_ pid: Int32) async {
        let resumed = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                resumed.withLock { $0 = continuation }
                if Task.isCancelled { resumed.withLock { $0.take() }?.resume() }
                DispatchQueue.global().async {
                    var info = siginfo_t()
                    while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
                    resumed.withLock { $0.take() }?.resume()
                }
            }
        } onCancel: {
            resumed.withLock { $0.take() }?.resume()
        }
    }

    static func describe(_ pids: [Int32]) -> String {
        pids.prefix(5).map { pid in
            let command =
                ProcFile.read("/proc/\(pid)/cmdline")?
                .split(separator: "\0").joined(separator: " ") ?? ""
            return command.isEmpty ? "pid \(pid)" : "pid \(pid) (\(command.prefix(60)))"
        }.joined(separator: ", ") + (pids.count > 5 ? " and \(pids.count - 5) more" : "")
    }

    public func run(
        _ spec: ProcessSpec,
        masker: SecretMasker,
        onStart: @escaping @Sendable (Int32) async -> Void,
        onOutput: @escaping @Sendable (OutputLine) async -> Void
    ) async throws -> ProcessTermination {
        guard let executable = Self.resolve(spec.executable, path: spec.environment["PATH"]) else {
            throw ProcessLaunchError(
                command: spec.displayCommand,
                reason: "'\(spec.executable)' was not found on PATH or is not executable"
            )
        }
        if Task.isCancelled { return .cancelled }

        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [
            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: spec.gracePeriod)
        ]
        let environment = Environment.custom(
            Dictionary(uniqueKeysWithValues: spec.environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) })
        )
        let timeout = spec.timeout
        let clock = self.clock
        let group = ProcessGroup()
        let keepBackground = spec.keepBackground
        let grace = spec.gracePeriod
        do {
            defer { if group.needsSweep { group.killRemaining() } }
            let result = try await Subprocess.run(
                .path(FilePath(executable)),
                arguments: Arguments(spec.arguments),
                environment: environment,
                workingDirectory: spec.workingDirectory.map { FilePath($0) },
                platformOptions: options,
                input: .none,
                output: .sequence,
                error: .sequence
            ) { execution in
                let leader = execution.processIdentifier.value
                let started = ContinuousClock.now
                group.leader.store(leader, ordering: .relaxed)
                await onStart(leader)
                let stdout = execution.standardOutput
                let stderr = execution.standardError
                // Done when both streams are drained and the child itself has exited; the timeout
                // bounds all of it, so a child that closes its output cannot outlive it.
                try await withThrowingTaskGroup(of: Part.self) { parts in
                    parts.addTask {
                        try await Self.drain(stdout, as: .stdout, masker: masker, onOutput: onOutput)
                        return .drained
                    }
                    parts.addTask {
                        try await Self.drain(stderr, as: .stderr, masker: masker, onOutput: onOutput)
                        return .drained
                    }
                    parts.addTask {
                        await Self.waitForExit(leader)
                        // What the child left in its process group is stopped, unless kept on purpose.
                        let left = ProcessGroup.members(of: leader, forkedWithin: ContinuousClock.now - started)
                        if !left.isEmpty {
                            let what = Self.describe(left)
                            if keepBackground {
                                await onOutput(OutputLine(stream: .stderr, text: "deploy: left running (keep_background): \(what)"))
                            } else {
                                await onOutput(
                                    OutputLine(
                                        stream: .stderr, text: "deploy: stopped what the step left running in its process group: \(what)"))
                                await ProcessGroup.stop(leader, grace: grace)
                            }
                        }
                        return .exited(keptBackground: keepBackground && !left.isEmpty)
                    }
                    if let timeout {
                        parts.addTask {
                            try await clock.sleep(for: timeout)
                            throw TimedOut()
                        }
                    }
                    var drained = 0
                    var exited = false
                    while let part = try await parts.next() {
                        switch part {
                        case .drained:
                            drained += 1
                        case .exited(let keptBackground):
                            exited = true
                            if keptBackground {
                                // A daemon kept on purpose may hold the pipes: read on only briefly.
                                parts.addTask {
                                    try await Task.sleep(for: .milliseconds(200))
                                    return .readingStopped
                                }
                            }
                        case .readingStopped:
                            drained = 2
                        }
                        if drained == 2 && exited { break }
                    }
                    parts.cancelAll()
                }
            }
            if Task.isCancelled {
                group.needsSweep = true
                return .cancelled
            }
            switch result.terminationStatus {
            case .exited(let code): return .exited(code)
            case .signaled(let signal): return .signalled(signal)
            }
        } catch is TimedOut {
            group.needsSweep = true
            return .timedOut
        } catch is CancellationError {
            group.needsSweep = true
            return .cancelled
        } catch {
            if Task.isCancelled {
                group.needsSweep = true
                return .cancelled
            }
            throw ProcessLaunchError(command: spec.displayCommand, reason: "\(error)")
        }
    }

    /// The child's process group. After a timeout or a cancellation the teardown has stopped the
    /// child itself; anything left in its group (a background job that ignored SIGTERM) is killed.
    private final class ProcessGroup: Sendable {
        let leader = Atomic<Int32>(0)
        private let sweep = Atomic<Bool>(false)

        var needsSweep: Bool {
            get { sweep.load(ordering: .relaxed) }
            set { sweep.store(newValue, ordering: .relaxed) }
        }

        func killRemaining() {
            let pid = leader.load(ordering: .relaxed)
            if pid > 0 { kill(-pid, SIGKILL) }
        }

        /// The live processes of process group `pgid` other than its leader, from /proc.
        static func members(of pgid: Int32, forkedWithin elapsed: Duration? = nil) -> [Int32] {
            // After every step: bytes, not strings, and no allocation per process. Every member
            // was forked after the leader, so its pid was handed out after the leader's and by
            // the last one handed out (/proc/loadavg): for a step of under a second (far too
            // short to go round the whole pid space), only those pids are read, usually none.
            let candidates: [Int32]
            if let elapsed, elapsed < .seconds(1), let last = ProcFile.lastProcessID() {
                if last >= pgid, last - pgid <= 64 {
                    candidates = last > pgid ? Array((pgid + 1)...last) : []
                } else {
                    candidates = ProcFile.processIDs().filter { $0 > pgid || $0 <= last }
                }
            } else {
                candidates = ProcFile.processIDs()
            }
            return candidates.filter { pid in
                guard pid != pgid, let (state, group) = ProcFile.stateAndGroup(of: pid) else { return false }
                return group == pgid && state != UInt8(ascii: "Z")
            }.sorted()
        }

        /// SIGTERM to the group, then SIGKILL to what is left after `grace`.
        static func stop(_ pgid: Int32, grace: Duration) async {
            kill(-pgid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while !members(of: pgid).isEmpty, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
            if !members(of: pgid).isEmpty { kill(-pgid, SIGKILL) }
        }
    }

    private static func drain(
        _ sequence: SubprocessOutputSequence,
        as stream: OutputStream,
        masker: SecretMasker,
        onOutput: @escaping @Sendable (OutputLine) async -> Void
    ) async throws {
        var assembler = LineAssembler(masker: masker)
        for try await buffer in sequence {
            let bytes = buffer.withUnsafeBytes { Array($0) }
            for line in assembler.append(bytes) {
                await onOutput(OutputLine(stream: stream, text: line))
            }
        }
        if let last = assembler.finish() {
            await onOutput(OutputLine(stream: stream, text: last))
        }
    }

    /// Finds `name` the way `execvp` would: a path as given, otherwise the first executable on `PATH`.
    public static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") {
            return access(name, X_OK) == 0 ? name : nil
        }
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for directory in directories where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}
