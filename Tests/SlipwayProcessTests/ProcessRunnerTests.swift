import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Synchronization
import Testing

@Suite("Running child processes")
struct ProcessRunnerTests {
    let environment = ProcessInfo.processInfo.environment

    final class Collected: Sendable {
        let lines = Mutex<[OutputLine]>([])
        let pid = Mutex<Int32>(0)
        var texts: [String] { lines.withLock { $0.map(\.text) } }
    }

    func run(_ spec: ProcessSpec, masker: SecretMasker = .none, runner: ProcessRunner = ProcessRunner(), collected: Collected = Collected())
        async throws -> ProcessTermination
    {
        try await runner.run(
            spec, masker: masker, onStart: { pid in collected.pid.withLock { $0 = pid } },
            onOutput: { line in
                collected.lines.withLock { $0.append(line) }
            })
    }

    @Test("argv reaches the child untouched: no shell, no splitting, no globbing")
    func argvIsNotInterpreted() async throws {
        let collected = Collected()
        let tricky = ["a b", "$HOME", "*", "; rm -rf /", "'quoted'"]
        let result = try await run(
            ProcessSpec(executable: "printf", arguments: ["%s\\n"] + tricky, environment: environment), collected: collected)
        #expect(result == .exited(0))
        #expect(collected.texts == tricky)
    }

    @Test("stdout and stderr are both streamed, and masked")
    func streamsBothPipes() async throws {
        let collected = Collected()
        let result = try await run(
            ProcessSpec(
                executable: "/bin/sh", arguments: ["-c", "echo out $TOKEN; echo err $TOKEN >&2; exit 3"],
                environment: environment.merging(["TOKEN": "tok-12345"]) { $1 }),
            masker: SecretMasker(secrets: ["tok-12345"]), collected: collected)
        #expect(result == .exited(3))
        let lines = collected.lines.withLock { $0 }
        #expect(lines.contains(OutputLine(stream: .stdout, text: "out ***")))
        #expect(lines.contains(OutputLine(stream: .stderr, text: "err ***")))
    }

    @Test("a missing executable is a launch error naming it")
    func missingExecutable() async throws {
        let error = await #expect(throws: ProcessLaunchError.self) {
            _ = try await run(ProcessSpec(executable: "no-such-command-slipway", environment: environment))
        }
        #expect(error?.description.contains("no-such-command-slipway") == true)
    }

    @Test("a timeout stops the child and its background children")
    func timeoutKillsTheGroup() async throws {
        // Given a script whose background child ignores SIGTERM, and a clock moved past the timeout
        // as soon as the script has said its background child's pid
        let collected = Collected()
        let clock = ManualClock()
        let script = "trap '' TERM; sleep 300 & echo child $!; wait"
        let result = try await ProcessRunner(clock: clock).run(
            ProcessSpec(
                executable: "/bin/sh", arguments: ["-c", script], environment: environment, timeout: .seconds(60), gracePeriod: .seconds(1)),
            masker: .none, onStart: { pid in collected.pid.withLock { $0 = pid } },
            onOutput: { line in
                collected.lines.withLock { $0.append(line) }
                if line.text.hasPrefix("child ") {
                    await clock.waitForSleeper()
                    clock.advance(by: .seconds(60))
                }
            })
        // Then the step timed out and nothing it started is alive
        #expect(result == .timedOut)
        let grandchild = Int32(collected.texts.first { $0.hasPrefix("child ") }!.dropFirst(6))!
        #expect(ProcessWatch.waitForExit(collected.pid.withLock { $0 }))
        #expect(ProcessWatch.waitForExit(grandchild))
    }

    @Test("the timeout bounds the child's whole life, even after it has closed its output")
    func timeoutAfterOutputClosed() async throws {
        let collected = Collected()
        let clock = ManualClock()
        let result = try await ProcessRunner(clock: clock).run(
            ProcessSpec(
                executable: "/bin/sh", arguments: ["-c", "exec >/dev/null 2>&1; exec tail -f /dev/null"], environment: environment,
                timeout: .seconds(2), gracePeriod: .seconds(1)),
            masker: .none,
            onStart: { pid in
                collected.pid.withLock { $0 = pid }
                // Time passes the timeout once the runner waits on it, output closed or not.
                Task {
                    await clock.waitForSleeper()
                    clock.advance(by: .seconds(2))
                }
            },
            onOutput: { line in collected.lines.withLock { $0.append(line) } })
        #expect(result == .timedOut)
        #expect(ProcessWatch.waitForExit(collected.pid.withLock { $0 }))
    }

    @Test("/proc read as bytes: this process's state and group, and the last pid handed out covers a child just started")
    func procBytes() async throws {
        let own = try #require(ProcFile.stateAndGroup(of: getpid()))
        #expect(own.group == getpgrp())
        #expect([UInt8(ascii: "R"), UInt8(ascii: "S")].contains(own.state))
        #expect(ProcFile.stateAndGroup(of: Int32.max) == nil)
        let collected = Collected()
        _ = try await run(ProcessSpec(executable: "/bin/sh", arguments: ["-c", "echo $$"], environment: environment), collected: collected)
        let child = try #require(collected.texts.first.flatMap { Int32($0) })
        let last = try #require(ProcFile.lastProcessID())
        // Handed out after the child's, unless the pid space wrapped in between.
        #expect(last >= child || last < 300)
        #expect(ProcFile.processIDs().contains(getpid()))
    }

    @Test("what a child leaves running in its process group is stopped when it exits, and its output says so")
    func backgroundChildrenStopped() async throws {
        let collected = Collected()
        let result = try await run(
            ProcessSpec(
                executable: "/bin/sh", arguments: ["-c", "tail -f /dev/null & echo child $!"], environment: environment,
                gracePeriod: .seconds(1)),
            collected: collected)
        #expect(result == .exited(0))
        let grandchild = try #require(collected.texts.first { $0.hasPrefix("child ") }.flatMap { Int32($0.dropFirst(6)) })
        #expect(
            collected.texts.contains { $0.hasPrefix("deploy: stopped what the step left running in its process group: pid \(grandchild)") })
        #expect(ProcessWatch.waitForExit(grandchild))
    }

    @Test("keep_background leaves a daemon running on purpose, and says so")
    func backgroundChildrenKept() async throws {
        let collected = Collected()
        let result = try await run(
            ProcessSpec(
                executable: "/bin/sh", arguments: ["-c", "tail -f /dev/null & echo child $!"], environment: environment,
                keepBackground: true),
            collected: collected)
        #expect(result == .exited(0))
        let grandchild = try #require(collected.texts.first { $0.hasPrefix("child ") }.flatMap { Int32($0.dropFirst(6)) })
        #expect(collected.texts.contains { $0.hasPrefix("deploy: left running (keep_background): pid \(grandchild)") })
        #expect(kill(grandchild, 0) == 0)
        kill(grandchild, SIGKILL)
        #expect(ProcessWatch.waitForExit(grandchild))
    }

    @Test("cancelling the task stops the child's whole process group")
    func cancellationKillsTheGroup() async throws {
        let directory = try TemporaryDirectory("cancel")
        defer { directory.remove() }
        let collected = Collected()
        let started = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await ProcessRunner().run(
                ProcessSpec(
                    executable: "/bin/sh", arguments: ["-c", "sleep 300 & echo child $!; wait"], environment: environment,
                    gracePeriod: .seconds(2)),
                masker: .none, onStart: { pid in collected.pid.withLock { $0 = pid } },
                onOutput: { line in
                    collected.lines.withLock { $0.append(line) }
                    if line.text.hasPrefix("child ") { started.continuation.yield() }
                })
        }
        // When the script has started its background child, cancel
        for await _ in started.stream { break }
        task.cancel()
        let result = try await task.value
        #expect(result == .cancelled)
        let grandchild = Int32(collected.texts.first { $0.hasPrefix("child ") }!.dropFirst(6))!
        #expect(ProcessWatch.waitForExit(collected.pid.withLock { $0 }))
        #expect(ProcessWatch.waitForExit(grandchild))
    }

    @Test("the environment given is the child's whole environment")
    func environmentIsExact() async throws {
        let collected = Collected()
        _ = try await run(
            ProcessSpec(executable: "/usr/bin/env", environment: ["ONLY": "this", "PATH": "/usr/bin:/bin"]), collected: collected)
        #expect(Set(collected.texts) == ["ONLY=this", "PATH=/usr/bin:/bin"])
    }
}
