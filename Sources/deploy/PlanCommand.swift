import ArgumentParser
import Foundation
import Slipway

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what `deploy <environment>` would run, without running anything.")

    @Argument(help: "The environment.")
    var environment: String

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    func run() async throws {
        try await guarded {
            let pipeline = try location.loadPipeline()
            let plan = try Plan(pipeline: pipeline, environment: environment)
            print(json ? try encodeJSON(PlanView(plan)) : PlanView(plan).text)
        }
    }
}

/// A plan as `deploy plan` shows it.
struct PlanView: Encodable {
    struct StageView: Encodable {
        var name: String
        var kind: String
        var runs: Bool
        var skipReason: String?
        var steps: [StepView]
    }

    struct StepView: Encodable {
        var name: String
        var command: String
        var timeoutSeconds: Double?
        var retries: Int
        var continueOnError: Bool
    }

    var pipeline: String
    var app: String
    var environment: String
    var target: String?
    var stages: [StageView]
    var worstCaseSeconds: Double?
    var unboundedSteps: [String]
    /// On a docker target: the longest the deploy stage takes to abort and restore the previous release.
    var abortWorstCaseSeconds: Double?
    var abortWorstCaseParts: [String]?
    var strategy: String?

    init(_ plan: Plan) {
        pipeline = plan.pipeline.file
        app = plan.pipeline.app
        environment = plan.environment.name
        target = plan.environment.target?.kind
        stages = plan.entries.map { entry in
            var steps: [StepView] = []
            if case .steps(let list) = entry.stage.kind {
                steps = list.map { step in
                    let command = step.action.display
                    return StepView(
                        name: step.name, command: command, timeoutSeconds: step.timeout.map(seconds),
                        retries: step.retries, continueOnError: step.continueOnError)
                }
            }
            var kind = entry.stage.kindName
            if case .deploy(let env) = entry.stage.kind { kind = "deploy \(env)" }
            if case .approval(let env) = entry.stage.kind { kind = "approval for \(env)" }
            if case .checklist(let spec) = entry.stage.kind {
                let coverage = Checklists.coverage(spec)
                kind = "checklist for \(spec.environment): \(coverage.automated) checked, \(coverage.signOff) signed off"
            }
            return StageView(name: entry.stage.name, kind: kind, runs: entry.runs, skipReason: entry.skipReason, steps: steps)
        }
        worstCaseSeconds = plan.worstCase.map(seconds)
        unboundedSteps = plan.unboundedSteps
        if plan.entries.contains(where: { if case .deploy = $0.stage.kind { $0.runs } else { false } }),
            let abort = plan.worstCaseToAbort
        {
            abortWorstCaseSeconds = seconds(abort.total)
            abortWorstCaseParts = abort.parts
            strategy = (plan.environment.strategy ?? .blueGreen(previewGates: [], bake: nil)).name
        }
    }

    var text: String {
        var lines = ["deploy \(environment) (\(app), \(pipeline))" + (target.map { " → \($0) target" } ?? " → no target: stages only")]
        var index = 0
        for stage in stages {
            if stage.runs {
                index += 1
                lines.append("  \(index). \(stage.name)  [\(stage.kind)]")
                for step in stage.steps {
                    var extras: [String] = []
                    if let timeout = step.timeoutSeconds {
                        extras.append("timeout \(DurationParser.format(.milliseconds(Int64(timeout * 1000))))")
                    }
                    if step.retries > 0 { extras.append("retries \(step.retries)") }
                    if step.continueOnError { extras.append("continue on error") }
                    let name = stage.steps.count == 1 && step.name == stage.name ? "" : "\(step.name): "
                    lines.append("       $ \(name)\(step.command)" + (extras.isEmpty ? "" : "   (\(extras.joined(separator: ", ")))"))
                }
            } else {
                lines.append("  -  \(stage.name)  skipped: \(stage.skipReason ?? "")")
            }
        }
        if stages.allSatisfy({ !$0.runs || $0.steps.isEmpty }) {
            lines.append("no commands run")
        } else if let worst = worstCaseSeconds {
            lines.append("worst case: \(DurationParser.format(.milliseconds(Int64(worst * 1000)))) if every attempt runs to its timeout")
        } else if !unboundedSteps.isEmpty {
            lines.append("worst case: unbounded: no timeout on \(unboundedSteps.joined(separator: ", "))")
        }
        if let abort = abortWorstCaseSeconds, let strategy {
            lines.append(
                "deploy of \(environment) (\(strategy)): worst-case time to abort and restore the previous release "
                    + "\(DurationParser.format(.milliseconds(Int64(abort * 1000)))) (\((abortWorstCaseParts ?? []).joined(separator: ", ")))"
            )
        }
        return lines.joined(separator: "\n")
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
