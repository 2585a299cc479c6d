import ArgumentParser
import Foundation
import Slipway

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one run: its stages, steps, outcome and events.")

    @Argument(help: "The run id (from `deploy history`).")
    var run: String

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the run as JSON.")
    var json = false

    struct RunView: Encodable {
        struct StageView: Encodable {
            var stage: StageRecord
            var steps: [StepView]
        }
        struct StepView: Encodable {
            var name: String
            var command: String
            var outcome: Outcome
            var exitCode: Int?
            var attempts: Int
            var durationMS: Int?
            var outputBytes: Int
            var outputTruncated: Bool
        }
        var run: RunRecord
        var stages: [StageView]
        var events: [EventRecord]
        var changelog: Changelog?
        /// Every gate measurement, a table per gate.
        var gates: [GateTable.Gate]
    }

    func run() async throws {
        try await guarded {
            let (store, detail) = try await location.runDetail(run)
            let id = detail.run.id
            let stages = detail.stages.map { stage in
                RunView.StageView(
                    stage: stage,
                    steps: detail.steps.filter { $0.stageID == stage.id }.map {
                        RunView.StepView(
                            name: $0.name, command: $0.command, outcome: $0.outcome, exitCode: $0.exitCode,
                            attempts: $0.attempts, durationMS: $0.durationMS, outputBytes: $0.outputBytes,
                            outputTruncated: $0.outputTruncated)
                    })
            }
            let recorded = try await store.changelog(runID: id)
            let measurements = try await store.measurements(runID: id)
            if json {
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let changelog = try recorded.map { try decoder.decode(Changelog.self, from: Data($0.json.utf8)) }
                print(
                    try encodeJSON(
                        RunView(
                            run: detail.run, stages: stages, events: detail.events, changelog: changelog,
                            gates: GateTable.grouped(measurements))))
                return
            }
            let r = detail.run
            var lines = [
                "run \(r.id): \(r.app) to \(r.environment): \(r.outcome.rawValue)" + (r.exitCode.map { " (exit \($0))" } ?? ""),
                "  release   \(Release(sha: r.sha, version: r.version).description)",
                "  by        \(r.trigger.description)",
                "  started   \(Format.timestamp(r.startedAt))"
                    + (r.endedAt.map { ", took \(Format.elapsed(from: r.startedAt, to: $0))" } ?? ""),
                "  pipeline  \(r.pipeline)",
                "  owner     pid \(r.ownerPID) on \(r.ownerHost)",
            ]
            if let reason = r.reason { lines.append("  reason    \(reason)") }
            if r.dirty { lines.append("  tree      had uncommitted changes") }
            for override in r.overrides { lines.append("  override  \(override)") }
            lines.append("")
            lines.append("stages:")
            for view in stages {
                let s = view.stage
                let took = zip(s.startedAt, s.endedAt).map { " in \(Format.elapsed(from: $0, to: $1))" } ?? ""
                lines.append("  \(s.position + 1). \(s.name) [\(s.kind)] \(s.outcome.rawValue)\(took)" + (s.reason.map { ": \($0)" } ?? ""))
                for step in view.steps {
                    var facts: [String] = [step.outcome.rawValue]
                    if let code = step.exitCode { facts.append("exit \(code)") }
                    if step.attempts > 1 { facts.append("\(step.attempts) attempts") }
                    if let ms = step.durationMS { facts.append(DurationParser.format(.milliseconds(ms))) }
                    if step.outputTruncated { facts.append("output truncated") }
                    lines.append("       \(step.name): \(step.command)  (\(facts.joined(separator: ", ")))")
                }
            }
            if !measurements.isEmpty {
                lines.append("")
                lines.append("gate measurements:")
                lines += GateTable.lines(measurements)
            }
            if let recorded {
                lines.append("")
                lines.append("changelog:")
                lines += recorded.markdown.split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)" }
            }
            lines.append("")
            lines.append("events:")
            for event in detail.events {
                lines.append(
                    "  \(Format.timestamp(event.at))  \(event.kind.padding(toLength: 20, withPad: " ", startingAt: 0)) \(event.message)")
            }
            print(lines.joined(separator: "\n"))
        }
    }
}

/// The gate measurements of a run, a table per gate: when, where in the rollout, the verdict, the
/// value (and the stable release's), and what was seen; the query after substitution heads each.
enum GateTable {
    struct Gate: Encodable {
        var gate: String
        var queries: [String]
        var measurements: [GateMeasurementRecord]
    }

    static func grouped(_ measurements: [GateMeasurementRecord]) -> [Gate] {
        var order: [String] = []
        var byGate: [String: [GateMeasurementRecord]] = [:]
        for measurement in measurements {
            if byGate[measurement.gate] == nil { order.append(measurement.gate) }
            byGate[measurement.gate, default: []].append(measurement)
        }
        return order.map { name in
            let all = byGate[name] ?? []
            var queries: [String] = []
            for query in all.map(\.query) where !queries.contains(query) { queries.append(query) }
            return Gate(gate: name, queries: queries, measurements: all)
        }
    }

    static func lines(_ measurements: [GateMeasurementRecord]) -> [String] {
        var lines: [String] = []
        for gate in grouped(measurements) {
            lines.append("  \(gate.gate)")
            for query in gate.queries { lines.append("    query: \(query)") }
            lines.append("    time          checkpoint       verdict       value        stable       detail")
            for m in gate.measurements {
                let time = m.at.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).time(includingFractionalSeconds: true))
                lines.append(
                    "    "
                        + [
                            pad(time, 13), pad(m.checkpoint, 16), pad(m.verdict.rawValue, 13), pad(m.value.map(number) ?? "-", 12),
                            pad(m.stableValue.map(number) ?? "-", 12), m.detail,
                        ].joined(separator: " "))
            }
        }
        return lines
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(format: "%.4g", value)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0)
    }
}

private func zip(_ a: Date?, _ b: Date?) -> (Date, Date)? {
    guard let a, let b else { return nil }
    return (a, b)
}
