import ArgumentParser
import Foundation
import Slipway

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put back the last release that passed its gates and bake, at once (no analysis).",
        discussion: """
            Undoes the latest change to <environment>. When it finished, the newest release that \
            passed every gate and its bake before the one serving now is put back; when it did not \
            (a deploy killed, cancelled or failed), the good release that deploy started from is: if \
            it already serves all traffic nothing moves, and if it serves part of it (a canary \
            step), it is given all of it. --to names another: a version, a run id or a commit. The \
            image is checked first. Freezes do not stop a rollback; the record says one was passed. \
            The environment is then pinned: automatic deploys refuse until \
            `deploy unpin <environment>` or `deploy <environment> --release VERSION`.

            When the run store is missing or cannot be opened, the containers' labels say which \
            releases were good; the rollback then goes ahead unrecorded, and says so.
            """)

    @Argument(help: "The environment to roll back.")
    var environment: String

    @Option(name: .long, help: ArgumentHelp("The release to put back: a version, a run id (12 or #12) or a commit.", valueName: "release"))
    var to: String?

    @Option(name: .long, help: ArgumentHelp("Why (recorded in the run and the audit log).", valueName: "text"))
    var reason: String

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print events as JSON lines instead of text.")
    var json = false

    func validate() throws {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--reason needs some text: say why, for the record")
        }
    }

    func run() async throws {
        try await guarded {
            let pipeline = try location.loadPipeline()
            let plan = try Plan(pipeline: pipeline, rollback: environment, to: to)
            let workspace = location.workspace()
            let store: any DeployStore
            do {
                store = try await location.openStore()
            } catch {
                Console.standardError.write(
                    "warning: the run store \(location.statePath()) cannot be used (\(error)); rolling back from what the containers say, and this rollback is not recorded\n"
                )
                store = try Workspace.scratchStore()
            }
            let processEnvironment = ProcessInfo.processInfo.environment
            let style = OutputStyle.detect(console: .standardOutput, environment: processEnvironment)
            let terminal = TerminalReporter(style: style)
            let reporter: any Reporting = json ? JSONReporter() : terminal
            var configured = workspace.engine(store: store, reporter: reporter)
            configured.rollbackImpact = workspace.rollbackImpact(pipeline: pipeline, directory: FileManager.default.currentDirectoryPath)
            let engine = configured
            let trigger = Trigger.detect(environment: processEnvironment)
            let why = reason
            let result = try await runWithSignals(live: style.live && !json ? terminal : nil) { interrupts in
                try await engine.run(
                    plan, release: Release(sha: nil, version: nil), trigger: trigger, interrupts: interrupts,
                    overrides: ["rollback: \(why)"])
            }
            if result.exitStatus != .success {
                // A rollback that did not happen is not a deploy that failed harmlessly.
                throw ExitCode(result.outcome == .failed ? ExitStatus.failed.rawValue : result.exitStatus.rawValue)
            }
        }
    }
}

struct Unpin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let automatic deploys into an environment again after a rollback pinned it (recorded in the audit log).")

    @Argument(help: "The environment to unpin.")
    var environment: String

    @Option(name: .long, help: ArgumentHelp("Why (recorded).", valueName: "text"))
    var reason: String?

    @OptionGroup var actor: ActorOption
    @OptionGroup var location: LocationOptions

    func run() async throws {
        try await guarded {
            try await location.requireEnvironment(environment)
            let store = try await location.openStore()
            let who = actor.resolve(location.environment)
            guard let pin = try await store.unpin(environment: environment, actor: who, reason: reason, at: Date()) else {
                print("\(environment) is not pinned")
                return
            }
            print("unpinned \(environment) (pinned since \(Format.timestamp(pin.at)) by \(pin.actor): \(pin.reason))")
        }
    }
}

struct Teardown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Take an environment down: remove what its target runs (containers, and nginx for a docker target); recorded in the audit log.")

    @Argument(help: "The environment to take down.")
    var environment: String

    @OptionGroup var actor: ActorOption
    @OptionGroup var location: LocationOptions

    func run() async throws {
        try await guarded {
            let pipeline = try location.loadPipeline()
            guard let spec = pipeline.environment(named: environment) else {
                throw Plan.UnknownEnvironment(name: environment, known: pipeline.environments.map(\.name), file: pipeline.file)
            }
            guard spec.target != nil else {
                throw CLIError.failed("\(environment) has no target: nothing to take down")
            }
            let workspace = location.workspace()
            let store = try await workspace.openStore()
            let done = try await workspace.teardown(
                pipeline, environment: environment, store: store, actor: actor.resolve(location.environment))
            for line in done { print(line) }
        }
    }
}
