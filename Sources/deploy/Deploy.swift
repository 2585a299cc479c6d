import ArgumentParser
import Foundation
import Slipway

@main
struct Deploy: AsyncParsableCommand {
    /// Diagnostics of deploy itself go to standard error, at the level SLIPWAY_LOG names
    /// (trace, debug, info, notice, warning — the default —, error, critical).
    static func main() async {
        // The version alone answers before anything else starts (logging, the command table's
        // parser): scripts and support ask it often, and it should cost no more than a process.
        if CommandLine.arguments.dropFirst().elementsEqual(["--version"]) {
            print(SlipwayVersion.current)
            return
        }
        // A command that reads git (a deploy, `changelog`, `rollback`, `checklist`) has libgit2
        // start on the second core while the command line is parsed.
        if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-"), !Self.neverReadsGit.contains(first) {
            Workspace.prepareGitInBackground()
        }
        // A closed output pipe (`deploy staging | head`) must not kill a deploy half-way: writes
        // to it fail quietly instead, and the run goes on and is recorded.
        signal(SIGPIPE, SIG_IGN)
        Workspace.bootstrapLogging(environment: ProcessInfo.processInfo.environment)
        // A negative run id (`deploy show -1`) would read as an unknown option: say what is wrong.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let subcommand = arguments.first, ["show", "logs", "approve", "reject"].contains(subcommand),
            let negative = arguments.dropFirst().first(where: { $0.count > 1 && $0.hasPrefix("-") && Int($0.dropFirst()) != nil })
        {
            Console.standardError.write(
                "error: '\(negative)' is not a run: run ids are positive whole numbers (`deploy history` lists them)\n")
            Foundation.exit(ExitStatus.usage.rawValue)
        }
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            // ArgumentParser reports a usage error as 64 (EX_USAGE); deploy documents 2.
            if exitCode(for: error) == .validationFailure {
                let message = fullMessage(for: error)
                if !message.isEmpty { Console.standardError.write(message + "\n") }
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }

    /// Every word `deploy` takes as a command, from the command table itself: no environment may
    /// be called one of them, and a new command is never forgotten.
    static var reservedNames: Set<String> {
        Set(configuration.subcommands.map { $0._commandName }).union(["help", "version"])
    }

    /// Subcommands that never open a repository (a new one missing here only starts libgit2
    /// for nothing).
    static let neverReadsGit: Set<String> = [
        "status", "history", "show", "logs", "lock", "unlock", "audit", "approve", "reject", "sign", "unpin", "teardown", "abort",
        "pause", "resume", "validate", "plan", "help",
    ]

    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Slipway: run a release through its pipeline, record every run, and roll back when it goes wrong.",
        usage: """
            deploy <environment> [--pipeline <file>] [--release <version>] [--wait <duration>] [--allow-dirty] [--json]
              deploy <subcommand> [<args>]
            """,
        discussion: """
            Run `deploy <environment>` to run the stages that apply to that environment, e.g. \
            `deploy staging`. Pipelines are YAML files (see docs/pipelines.md); the run record lives in \
            .slipway/state.sqlite unless --state or SLIPWAY_STATE names another. Output is a live view \
            on a terminal, plain lines when CI=true or output is not a terminal (NO_COLOR turns colour \
            off), and JSON with --json.

            EXIT CODES
            \(ExitStatus.allCases.map { "  \(String($0.rawValue).padding(toLength: 5, withPad: " ", startingAt: 0))\($0.meaning)" }.joined(separator: "\n"))
            """,
        version: SlipwayVersion.current,
        subcommands: [
            Run.self, PlanCommand.self, Validate.self, Status.self, History.self, Show.self, Logs.self, ChangelogCommand.self, Lock.self,
            Unlock.self,
            Audit.self, Approve.self, Reject.self, Sign.self, ChecklistCommand.self, Rollback.self, Unpin.self, Teardown.self,
            Abort.self, Pause.self, Resume.self,
        ],
        defaultSubcommand: Run.self
    )
}
