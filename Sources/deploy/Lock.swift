import ArgumentParser
import Foundation
import Slipway

struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lock an environment (a freeze): no deploy runs until `deploy unlock`.",
        discussion: "Recorded in the audit log. Fails (exit 4) if a deploy or another lock holds the environment.")

    @Argument(help: "The environment.")
    var environment: String

    @Option(name: .long, help: ArgumentHelp("Why: shown to everyone who tries to deploy.", valueName: "text"))
    var reason: String

    @OptionGroup var actor: ActorOption

    @OptionGroup var location: LocationOptions

    func run() async throws {
        try await guarded {
            try await location.requireEnvironment(environment)
            let workspace = location.workspace()
            let store = try await workspace.openStore()
            let who = actor.resolve(location.environment)
            if let holder = try await workspace.lock(environment, store: store, by: who, reason: reason) {
                throw EnvironmentUnavailable(
                    message: "\(environment) is already held: \(holder.description)",
                    hint: holder.kind == .manual ? "it is locked already" : "lock it once that deploy ends")
            }
            print("\(environment) is locked by \(who): \(reason)")
        }
    }
}

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove the manual lock on an environment (recorded in the audit log).")

    @Argument(help: "The environment.")
    var environment: String

    @OptionGroup var actor: ActorOption

    @OptionGroup var location: LocationOptions

    func run() async throws {
        try await guarded {
            try await location.requireEnvironment(environment)
            let store = try await location.openStore()
            let who = actor.resolve(location.environment)
            guard let removed = try await store.unlock(environment: environment, by: who, now: Date()) else {
                if let lease = try await store.lease(environment: environment) {
                    throw CLIError.failed(
                        "\(environment) has no manual lock; a deploy holds it: \(lease.description)",
                        hint: "a deploy's lease ends with the deploy; a dead one is reclaimed automatically")
                }
                throw CLIError.failed("\(environment) is not locked")
            }
            print("\(environment) is unlocked (it was \(removed.description))")
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the audit log: every run, approval, lock, unlock and override, each entry chained to the one before.",
        subcommands: [List.self, Verify.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the audit log, oldest first.")

        @Option(name: .customLong("env"), help: "Only entries about this environment.")
        var environment: String?

        @Option(name: .long, parsing: .unconditional, help: "Only the newest N entries (1 or more).")
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be a positive whole number, not \(limit)") }
        }

        @OptionGroup var location: LocationOptions

        @Flag(name: .long, help: "Print the entries as JSON.")
        var json = false

        func run() async throws {
            try await guarded {
                if let environment { try await location.requireEnvironment(environment) }
                let entries = try await location.openStore(.readOnly).auditLog(environment: environment, limit: limit)
                if json {
                    print(try encodeJSON(entries))
                    return
                }
                if entries.isEmpty { print("the audit log is empty"); return }
                let rows = entries.map { e in
                    [
                        String(e.id), Format.timestamp(e.at), e.actor, e.action, e.environment ?? "-", e.runID.map(String.init) ?? "-",
                        e.detail,
                    ]
                }
                print(Format.table(header: ["ID", "AT", "WHO", "ACTION", "ENV", "RUN", "DETAIL"], rows: rows))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove the audit chain intact, or name the first entry that was altered or removed (exit 1).")

        @OptionGroup var location: LocationOptions

        func run() async throws {
            try await guarded {
                let result = try await location.openStore(.readOnly).verifyAudit()
                print(result)
                if !result.isIntact { throw ExitCode(ExitStatus.failed.rawValue) }
            }
        }
    }
}
