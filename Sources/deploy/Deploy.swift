import Foundation
import ArgumentParser
import Slipway

@main
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Slipway: run a release through its pipeline, record every run, and roll back when it goes wrong.",
        usage: """
            deploy <environment> [--pipeline <file>] [--state <path>] [--release <version>] [--json]
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
        subcommands: [Run.self, PlanCommand.self, Validate.self, History.self, Show.self, Logs.self],
        defaultSubcommand: Run.self
    )
}
