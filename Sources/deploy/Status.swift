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
        var pinned: Pin?
        /// What the docker target serves now, as nginx and the containers say.
        var serving: DockerEnvironment.Status?

        enum CodingKeys: String, CodingKey {
            case environment, latest, frozen, pinned, serving
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
            var statuses: [EnvironmentStatus] = []
            for name in names {
                var serving: DockerEnvironment.Status?
                if let pipeline, case .docker(let target) = pipeline.environment(named: name)?.target {
                    serving = await DockerEnvironment(
                        pipeline: pipeline, environment: name, target: target, stateDirectory: location.stateDirectory()
                    ).status()
                }
                statuses.append(
                    EnvironmentStatus(
                        environment: name, lastGood: try store.lastSucceeded(environment: name),
                        latest: try store.history(environment: name, limit: 1).first,
                        heldBy: try store.lease(environment: name)?.description,
                        frozen: pipeline?.environment(named: name)?.freezes.first { $0.contains(now) }.map {
                            "\($0.reason) (\($0.description))"
                        }, pinned: try store.pin(environment: name), serving: serving))
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
                if let pin = status.pinned {
                    print("  pinned      since \(Format.timestamp(pin.at)) by \(pin.actor): \(pin.reason)")
                    print("              (`deploy unpin \(status.environment)` lets automatic deploys in again)")
                }
                if let serving = status.serving {
                    if serving.backends.isEmpty {
                        print("  serving     nothing at \(serving.url)")
                    }
                    for backend in serving.backends {
                        print(
                            "  serving     \(backend.release?.description ?? "?") at \(serving.url), \(backend.weight)% of traffic "
                                + "(container \(backend.container) on 127.0.0.1:\(backend.port))")
                    }
                    if let pid = serving.nginxPID {
                        print("  nginx       pid \(pid), configuration generation \(serving.generation ?? 0)")
                    }
                    if let problem = serving.problem { print("  problem     \(problem)") }
                }
            }
        }
    }
}
