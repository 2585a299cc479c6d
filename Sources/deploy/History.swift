import ArgumentParser
import Foundation
import Slipway

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recent runs, newest first.")

    @Argument(help: "Only runs of this environment.")
    var environment: String?

    // `.unconditional`: `--limit -5` is a value to refuse with a reason, not a missing one.
    @Option(name: .long, parsing: .unconditional, help: "How many runs to list (1 or more).")
    var limit = 20

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be a positive whole number, not \(limit)") }
    }

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the runs as JSON.")
    var json = false

    func run() async throws {
        try await guarded {
            guard limit > 0 else { throw CLIError.usage("--limit must be at least 1") }
            if let environment { try await location.requireEnvironment(environment) }
            let store = try await location.openStore(.readOnly)
            let runs = try await store.history(environment: environment, limit: limit)
            if json {
                print(try encodeJSON(runs))
                return
            }
            if runs.isEmpty {
                print(environment.map { "no runs of \($0) yet" } ?? "no runs yet")
                return
            }
            let rows = runs.map { run -> [String] in
                [
                    String(run.id), run.environment, run.outcome.rawValue, run.version ?? "-",
                    run.sha.map { String($0.prefix(7)) } ?? "-", Format.timestamp(run.startedAt),
                    run.endedAt.map { Format.elapsed(from: run.startedAt, to: $0) } ?? "-", run.trigger.description,
                ]
            }
            print(Format.table(header: ["RUN", "ENV", "OUTCOME", "VERSION", "SHA", "STARTED", "TOOK", "BY"], rows: rows))
        }
    }
}

enum Format {
    static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    static func elapsed(from start: Date, to end: Date) -> String {
        DurationParser.format(.milliseconds(Int64(max(0, end.timeIntervalSince(start)) * 1000)))
    }

    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
