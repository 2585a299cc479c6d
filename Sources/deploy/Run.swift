import ArgumentParser
import Dispatch
import Foundation
import Slipway
import SlipwayGit
import SlipwayStore

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

    @Option(name: .long, help: ArgumentHelp(
            "Deploy a release that an earlier run built and pushed (a version or a commit): its image, its commit; nothing is built. With no target, only the version recorded.",
            valueName: "version"))
    var release: String?

    @Flag(name: .long, help: "Deploy from a working tree with uncommitted changes where the environment requires a clean one (recorded).")
    var allowDirty = false

    @Option(
        name: .long,
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
            throw ValidationError("--wait takes a duration such as 30s, 15m or 2h, not '\(wait)'")
        }
    }

    func run() async throws {
        try await guarded {
            let pipeline = try location.loadPipeline()
            let plan = try Plan(pipeline: pipeline, environment: environment)
            let store = try location.openStore()
            let processEnvironment = ProcessInfo.processInfo.environment
            let style = OutputStyle.detect(console: .standardOutput, environment: processEnvironment)
            let terminal = TerminalReporter(style: style)
            let reporter: any Reporting = json ? JSONReporter() : terminal
            let interactive = style.live && !json && isatty(STDIN_FILENO) == 1
            let engine = Engine(
                store: store, reporter: reporter, environment: processEnvironment,
                approvalPrompt: interactive ? TerminalPrompt.ask : nil, stateDirectory: location.stateDirectory())
            let resolved = ReleaseResolver.resolve(
                override: release, directory: FileManager.default.currentDirectoryPath, environment: processEnvironment)
            for note in resolved.notes { Console.standardError.write("note: \(note)\n") }
            let releaseInfo = resolved.release
            var overrides: [String] = []
            // A release deployed by name was built by an earlier run: the working tree is not what ships.
            let byName = release != nil && plan.environment.target != nil
            if !byName, let git = resolved.git, git.dirty, plan.environment.requireCleanTree {
                let listed = git.dirtyPaths.prefix(10).map { "      \($0)" }.joined(separator: "\n")
                guard allowDirty else {
                    throw CLIError.failed(
                        "the working tree has uncommitted changes, and \(environment) takes only committed releases:\n\(listed)",
                        hint: "commit or stash them; or pass --allow-dirty to deploy them anyway (the run records that you did)")
                }
                overrides.append("allow-dirty (\(git.dirtyPaths.count) changed file\(git.dirtyPaths.count == 1 ? "" : "s"))")
            }
            let dirty = !byName && resolved.git?.dirty ?? false
            var changelog: Changelog?
            if let repository = resolved.repository, let git = resolved.git {
                do {
                    changelog = try Changelog.build(
                        repository: repository, release: git, version: releaseInfo.version, environment: environment, store: store,
                        rules: pipeline.riskRules)
                    for note in changelog?.notes ?? [] { Console.standardError.write("note: \(note)\n") }
                } catch {
                    Console.standardError.write("note: no changelog for this run: \(error)\n")
                }
            }

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
