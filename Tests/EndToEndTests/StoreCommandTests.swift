import Foundation
import SlipwayCore
import SlipwayTestSupport
import Testing

/// The run store as commands find it: another application's file, a directory that does not
/// exist, a file that may only be read, an environment nobody declared.
@Suite("deploy and the run store it is given", .timeLimit(.minutes(2)))
struct StoreCommandTests {
    static let pipeline = "app: hello\nenvironments: { staging: {} }\nstages:\n  - { name: one, run: [\"true\"] }\n"

    func project() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("store-commands")
        _ = try directory.write("slipway.yml", Self.pipeline)
        return directory
    }

    func sqlite(_ path: String, _ sql: String, in directory: TemporaryDirectory) async throws -> String {
        try await GitFixture.run(["sqlite3", path, sql], in: directory.path, environment: [:])
    }

    @Test("another application's SQLite file is refused untouched, by reading and writing commands alike")
    func foreignDatabaseRefused() async throws {
        let directory = try project()
        defer { directory.remove() }
        _ = try await sqlite("other.sqlite", "CREATE TABLE users (id INTEGER); INSERT INTO users VALUES (1);", in: directory)
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.file("other.sqlite")))
        for command in [["history"], ["staging"], ["lock", "staging", "--reason", "x"]] {
            let result = try await runDeploy(command + ["--state", "other.sqlite"], in: directory.path)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(
                result.output.contains("it is not a Slipway run store (it holds tables users); nothing was changed"), "\(result.output)")
        }
        let after = try Data(contentsOf: URL(fileURLWithPath: directory.file("other.sqlite")))
        #expect(after == before)
        #expect(!FileManager.default.fileExists(atPath: directory.file("other.sqlite-wal")))
    }

    @Test("a command that only reads creates nothing where there is no store; a deploy creates it and says so")
    func readingCreatesNothing() async throws {
        let directory = try project()
        defer { directory.remove() }
        for command in [["history"], ["status"], ["audit"], ["audit", "verify"]] {
            let result = try await runDeploy(command + ["--state", "missing/dir/state.sqlite"], in: directory.path)
            #expect(result.status == 0, "\(command): \(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("missing")))
        let deployed = try await runDeploy(["staging", "--state", "missing/dir/state.sqlite"], in: directory.path)
        #expect(deployed.status == 0, "\(deployed.output)")
        #expect(deployed.output.contains("creating the run store at missing/dir/state.sqlite"))
        #expect(FileManager.default.fileExists(atPath: directory.file("missing/dir/state.sqlite")))
    }

    @Test("a store that may only be read is read: history, show and audit verify work and change nothing")
    func readOnlyStore() async throws {
        let directory = try project()
        defer { directory.remove() }
        let deployed = try await runDeploy(["staging"], in: directory.path)
        #expect(deployed.status == 0, "\(deployed.output)")
        // Someone who may only read: another user (nobody), for whom the store and its directory
        // are read-only; root would write through any permission.
        #expect(chmod(directory.path, 0o755) == 0)
        #expect(chmod(directory.file(".slipway"), 0o755) == 0)
        #expect(chmod(directory.file(".slipway/state.sqlite"), 0o444) == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.file(".slipway/state.sqlite")))
        for command in [["history"], ["show", "1"], ["audit", "verify"]] {
            let output = try await GitFixture.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", try deployBinary()] + command, in: directory.path,
                environment: ["HOME": "/tmp", "PATH": "/usr/bin:/bin"])
            #expect(!output.contains("error"), "\(command): \(output)")
            if command == ["history"] { #expect(output.contains("succeeded"), "\(output)") }
        }
        let after = try Data(contentsOf: URL(fileURLWithPath: directory.file(".slipway/state.sqlite")))
        #expect(after == before)
    }

    @Test("every command that takes an environment refuses one nobody declared, and changes nothing")
    func unknownEnvironmentRefused() async throws {
        let directory = try project()
        defer { directory.remove() }
        for command in [
            ["lock", "stagin", "--reason", "x"], ["unlock", "stagin"], ["unpin", "stagin"], ["history", "stagin"],
            ["audit", "--env", "stagin"], ["status", "stagin"], ["plan", "stagin"], ["stagin"],
        ] {
            let result = try await runDeploy(command, in: directory.path)
            #expect(result.status == 2, "\(command): \(result.output)")
            #expect(result.output.contains("has no environment 'stagin'; did you mean 'staging'?"), "\(command): \(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file(".slipway/state.sqlite")))
    }

    @Test("negative numbers and over-long values on the command line are refused saying what is allowed")
    func negativeNumbersRefused() async throws {
        let directory = try project()
        defer { directory.remove() }
        let cases: [([String], String)] = [
            (["history", "--limit", "-5"], "--limit must be a positive whole number, not -5"),
            (["audit", "--limit", "-2"], "--limit must be a positive whole number, not -2"),
            (["show", "-1"], "'-1' is not a run: run ids are positive whole numbers"),
            (["staging", "--wait", "-5s"], "--wait must be a positive duration"),
            (["staging", "--wait", "99999999999999999999d"], "is longer than deploy waits: at most 366d"),
        ]
        for (command, message) in cases {
            let result = try await runDeploy(command, in: directory.path)
            #expect(result.status == 2, "\(command): \(result.output)")
            #expect(result.output.contains(message), "\(command): \(result.output)")
        }
        _ = try directory.write("long.yml", "app: " + String(repeating: "a", count: 10_240) + "\nstages: []\n")
        let long = try await runDeploy(["validate", "long.yml"], in: directory.path)
        #expect(long.status == 2)
        #expect(long.output.contains("(10240 characters) is not valid: it is longer than 63 characters"))
        #expect(long.output.count < 1_000, "the name is echoed in full: \(long.output.count) characters")
    }

    @Test("a deploy that finds the store held busy past its --wait says who holds it, and its refusal is audited later")
    func busyStoreRefusalAuditedLater() async throws {
        let directory = try project()
        defer { directory.remove() }
        let first = try await runDeploy(["staging"], in: directory.path)
        try #require(first.status == 0, "\(first.output)")
        // Another process takes the store's write lock and keeps it until released.
        let holder = try StoreLockHolder(directory.file(".slipway/state.sqlite"))
        let refused = try await runDeploy(["staging", "--wait", "1s"], in: directory.path)
        try holder.release()
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("stayed locked by another process past the wait (open in pid \(holder.pid))"))
        // The next command records the refusal in the audit log.
        let audit = try await runDeploy(["audit"], in: directory.path)
        #expect(audit.output.contains("run.refused"), "\(audit.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.file(".slipway/pending-audit.jsonl")))
        #expect(try await runDeploy(["audit", "verify"], in: directory.path).status == 0)
    }
}
