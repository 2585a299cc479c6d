import ArgumentParser
import Foundation
import Slipway
import SlipwayStore

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put back the last release that passed its gates and bake, at once (no analysis).",
        discussion: """
            Restores the newest release that passed every gate and its bake in <environment> before \
            the one serving now (or the one --to names: a version, a run id or a commit), after \
            checking that its image can still be run. Freezes do not stop a rollback; the record says \
            one was passed. The environment is then pinned: automatic deploys refuse until \
            `deploy unpin <environment>` or `deploy <environment> --release VERSION`.

            When the run store is missing or cannot be opened, the serving container's labels say \
            which releases were good; the rollback then goes ahead unrecorded, and says so.
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
            let store: RunStore
            do {
                store = try location.openStore()
            } catch {
                Console.standardError.write(
                    "warning: the run store \(location.statePath()) cannot be used (\(error)); rolling back from what the containers say, and this rollback is not recorded\n"
                )
                store = try RunStore.inMemory()
            }
            let processEnvironment = ProcessInfo.processInfo.environment
            let style = OutputStyle.detect(console: .standardOutput, environment: processEnvironment)
            let terminal = TerminalReporter(style: style)
            let reporter: any Reporting = json ? JSONReporter() : terminal
            let engine = Engine(
                store: store, reporter: reporter, environment: processEnvironment, stateDirectory: location.stateDirectory())
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
            let store = try location.openStore()
            let who = actor.resolve(location.environment)
            guard let pin = try store.unpin(environment: environment, actor: who, reason: reason, at: Date()) else {
                print("\(environment) is not pinned")
                return
            }
            print("unpinned \(environment) (pinned since \(Format.timestamp(pin.at)) by \(pin.actor): \(pin.reason))")
        }
    }
}

struct Teardown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop an environment on a docker target: remove its containers and stop its nginx (recorded in the audit log).")

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
            guard let targetSpec = spec.target else {
                throw CLIError.failed("\(environment) has no target: nothing to take down")
            }
            let target = try targetSpec.makeTarget(
                TargetSetting(pipeline: pipeline, environment: environment, stateDirectory: location.stateDirectory()))
            let store = try location.openStore()
            // Hold the environment like a deploy does, so that none starts while it goes down.
            let pid = ProcessInfo.processInfo.processIdentifier
            let attempt = try store.acquireLease(
                environment: environment, holder: actor.resolve(location.environment), host: HostName.current, pid: pid, now: Date(),
                isAlive: ProcessLiveness.isAlive)
            if case .held(let lease) = attempt {
                throw EnvironmentUnavailable(
                    message: "\(environment) is held: \(lease.description)",
                    hint: lease.kind == .manual ? "`deploy unlock \(environment)` first" : "wait for the deploy to end")
            }
            defer { try? store.releaseLease(environment: environment, pid: pid, host: HostName.current) }
            let done = try await target.teardown()
            try store.audit(
                actor: actor.resolve(location.environment), action: "teardown", environment: environment,
                detail: done.joined(separator: "; "))
            for line in done { print(line) }
        }
    }
}
