import ArgumentParser
import Foundation
import Slipway
import SlipwayStore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What runs where: each environment's last good release, its latest run, who holds it, and whether it is frozen.")

    @Argument(help: "Only this environment.")
    var environment: String?

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print the status as JSON.")
    var json = false

    struct EnvironmentStatus: Encodable {
        var environment: String
        var lastGood: RunRecord?
        var latest: RunRecord?
        var heldBy: String?
        var frozen: String?

        enum CodingKeys: String, CodingKey {
            case environment, latest, frozen
            case lastGood = "last_good", heldBy = "held_by"
        }
    }

    func run() async throws {
        try await guarded {
            let pipeline = try? location.loadPipeline()
            let store = try location.openStore()
            var names = pipeline?.environments.map(\.name) ?? []
            for run in try store.history(limit: 200) where !names.contains(run.environment) { names.append(run.environment) }
            if let environment {
                guard names.contains(environment) else {
                    throw Plan.UnknownEnvironment(name: environment, known: names, file: pipeline?.file ?? location.statePath())
                }
                names = [environment]
            }
            let now = Date()
            let statuses = try names.map { name in
                EnvironmentStatus(
                    environment: name, lastGood: try store.lastSucceeded(environment: name),
                    latest: try store.history(environment: name, limit: 1).first,
                    heldBy: try store.lease(environment: name)?.description,
                    frozen: pipeline?.environment(named: name)?.freezes.first { $0.contains(now) }.map {
                        "\($0.reason) (\($0.description))"
                    })
            }
            if json {
                print(try encodeJSON(statuses))
                return
            }
            if statuses.isEmpty {
                print("no environments: the pipeline declares none and nothing has run")
                return
            }
            for status in statuses {
                print(status.environment)
                if let good = status.lastGood {
                    print(
                        "  last good   \(Release(sha: good.sha, version: good.version).description), deployed by \(good.trigger.description) "
                            + "at \(Format.timestamp(good.endedAt ?? good.startedAt)) (run \(good.id!))")
                } else {
                    print("  last good   nothing has succeeded here yet")
                }
                if let latest = status.latest, latest.id != status.lastGood?.id {
                    print("  latest run  \(latest.id!) \(latest.outcome.rawValue)" + (latest.reason.map { ": \($0)" } ?? ""))
                }
                if let held = status.heldBy { print("  held        \(held)") }
                if let frozen = status.frozen { print("  frozen      \(frozen)") }
            }
        }
    }
}
