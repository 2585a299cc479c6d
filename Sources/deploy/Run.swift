import ArgumentParser
import Dispatch
import Foundation
import Slipway

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the stages that apply to an environment (the default: `deploy staging`).",
        discussion: """
            Runs every stage up to and including the one that deploys <environment>. With \
            `promote_from`, the stages that already ran for the earlier environment are left out. \
            Ctrl-C or SIGTERM stops the running step's whole process group (SIGTERM, then SIGKILL \
            after 5s), records the run as cancelled and runs the on-failure hook.
            """)

    @Argument(help: "The environment to deploy, as named under `environments:` in the pipeline.")
    var environment: String

    @OptionGroup var location: LocationOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Deploy a release that an earlier run built and pushed (a version or a commit): its image, its commit; nothing is built. With no target, only the version recorded.",
            valueName: "version"))
    var release: String?

    @Flag(name: .long, help: "Deploy from a working tree with uncommitted changes where the environment requires a clean one (recorded).")
    var allowDirty = false

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "If another deploy holds the environment, queue for it (in arrival order) up to this long, e.g. 15m.", valueName: "duration"))
    var wait: String?

    @Flag(name: .long, help: "Deploy inside a freeze window (needs --reason; recorded in the audit log).")
    var overrideFreeze = false

    @Option(name: .long, help: ArgumentHelp("Why the freeze is overridden.", valueName: "text"))
    var reason: String?

    @Flag(name: .long, help: "Print events as JSON lines instead of text.")
    var json = false

    func validate() throws {
        if overrideFreeze && (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--override-freeze needs --reason TEXT: say why, for the audit log")
        }
        if let wait, DurationParser.parse(wait) == nil {
            if wait.hasPrefix("-") { throw ValidationError("--wait must be a positive duration such as 30s, 15m or 2h, not '\(wait)'") }
            if DurationParser.read(wait) == .tooLong {
                throw ValidationError("--wait '\(wait)' is longer than deploy waits: at most \(DurationParser.maximumText)")
            }
            throw ValidationError("--wait takes a duration such as 30s, 15m or 2h, not '\(wait)'")
        }
    }

    func run() async throws {
        try await guarded {
            let pipeline = try location.loadPipeline()
            let plan = try Plan(pipeline: pipeline, environment: environment)
            let workspace = location.workspace()
            do {
                try await deploy(plan: plan, workspace: workspace)
            } catch let error as StoreError where error.isBusy {
                // The refusal is recorded once the store can take it, by the next command.
                workspace.recordLater(
                    actor: Trigger.detect(environment: ProcessInfo.processInfo.environment).description, action: "run.refused",
                    environment: environment, detail: "the run store was busy past the wait: \(error.underlying)")
                throw error
            }
        }
    }

    func deploy(plan: Plan, workspace: Workspace) async throws {
        do {
            // A store held busy by another process is waited for as long as the environment would be.
            let store = try await workspace.openStore(busyTimeout: max(wait.flatMap(DurationParser.parse) ?? .seconds(30), .seconds(1)))
            let processEnvironment = ProcessInfo.processInfo.environment
            let style = OutputStyle.detect(console: .standardOutput, environment: processEnvironment)
            let terminal = TerminalReporter(style: style)
            let reporter: any Reporting = json ? JSONReporter() : terminal
            let interactive = style.live && !json && isatty(STDIN_FILENO) == 1
            let engine = workspace.engine(store: store, reporter: reporter, approvalPrompt: interactive ? TerminalPrompt.ask : nil)
            let prepared = try await workspace.prepareRelease(
                plan, named: release, allowDirty: allowDirty, directory: FileManager.default.currentDirectoryPath, store: store)
            let releaseInfo = prepared.release
            let dirty = prepared.dirty
            let overrides = prepared.overrides
            let changelog = prepared.changelog

            let shipping = changelog
            let waitFor = wait.flatMap(DurationParser.parse)
            let freezeReason = overrideFreeze ? reason : nil
            let overridden = overrides
            let explicit = release != nil
            let result = try await runWithSignals(live: style.live && !json ? terminal : nil) { interrupts in
                try await engine.run(
                    plan, release: releaseInfo, trigger: .detect(environment: processEnvironment),
                    interrupts: interrupts, changelog: shipping, dirty: dirty, overrides: overridden,
                    wait: waitFor, freezeOverride: freezeReason, explicitRelease: explicit)
            }
            if result.exitStatus != .success { throw ExitCode(result.exitStatus.rawValue) }
        }
    }
}

/// Runs `body` with Ctrl-C, SIGTERM and SIGHUP turned into a stream of signal numbers (the engine
/// stops the running step and records the run cancelled), redrawing `live` while it runs.
func runWithSignals(live terminal: TerminalReporter?, _ body: @escaping @Sendable (AsyncStream<Int32>) async throws -> RunResult)
    async throws -> RunResult
{
    let (interrupts, continuation) = AsyncStream.makeStream(of: Int32.self)
    let sources = [SIGINT, SIGTERM, SIGHUP].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }
    return try await withThrowingTaskGroup(of: RunResult?.self) { group in
        group.addTask { try await body(interrupts) }
        if let terminal {
            group.addTask {
                // Redraws the live status line until the run ends (and cancels this task).
                while (try? await Task.sleep(for: .milliseconds(150))) != nil {
                    terminal.tick()
                }
                return nil
            }
        }
        var result: RunResult?
        while let next = try await group.next() {
            if let next {
                result = next
                group.cancelAll()
            }
        }
        return result!
    }
}
