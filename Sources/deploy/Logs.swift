import ArgumentParser
import Foundation
import Slipway

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the recorded output of a run's steps.")

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: ArgumentHelp("Only this step: its name, its stage's name, or stage/step.", valueName: "name"))
    var step: String?

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the output as JSON.")
    var json = false

    struct StepLog: Encodable {
        var stage: String
        var step: String
        var outcome: Outcome
        var output: String
        var truncated: Bool
    }

    func run() async throws {
        try await guarded {
            let (_, detail) = try await location.runDetail(run)
            let id = detail.run.id
            let stageNames = Dictionary(uniqueKeysWithValues: detail.stages.map { ($0.id, $0.name) })
            var logs = detail.steps.map { s in
                StepLog(
                    stage: stageNames[s.stageID] ?? "?", step: s.name, outcome: s.outcome, output: s.output, truncated: s.outputTruncated)
            }
            if let step {
                logs = logs.filter { $0.step == step || $0.stage == step || "\($0.stage)/\($0.step)" == step }
                if logs.isEmpty {
                    let names = Set(
                        detail.steps.map { s in
                            let stage = stageNames[s.stageID] ?? "?"
                            return stage == s.name ? stage : "\(stage)/\(s.name)"
                        }
                    ).sorted()
                    throw CLIError.failed(
                        "run \(id) has no step '\(step)'",
                        hint: names.isEmpty ? "it ran no steps" : "its steps: \(names.joined(separator: ", "))")
                }
            }
            if json {
                print(try encodeJSON(logs))
                return
            }
            for log in logs {
                let name = log.stage == log.step ? log.stage : "\(log.stage)/\(log.step)"
                print("==> \(name) (\(log.outcome.rawValue))")
                print(log.output, terminator: log.output.isEmpty || log.output.hasSuffix("\n") ? "" : "\n")
            }
        }
    }
}
