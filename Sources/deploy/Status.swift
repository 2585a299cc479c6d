import ArgumentParser
import Foundation
import Slipway

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
        /// The process holding the lease is gone (deploy was killed): the next deploy, rollback or
        /// lock takes the environment over.
        var holderGone: Bool?
        var frozen: String?
        var pinned: Pin?
        /// What the target serves now, as the target itself says (nginx and the containers, for docker).
        var serving: TargetStatus?
        /// What serves is not what Slipway last recorded there (a change made outside deploy).
        var drift: String?

        enum CodingKeys: String, CodingKey {
            case environment, latest, frozen, pinned, serving, drift
            case lastGood = "last_good", heldBy = "held_by", holderGone = "holder_gone"
        }
    }

    /// A process on this host that no longer runs.
    static func isGone(pid: Int32, host: String) -> Bool {
        host == HostName.current && !ProcessLiveness.isAlive(pid)
    }

    func run() async throws {
        try await guarded {
            let pipeline = try? location.loadPipeline()
            let store = try await location.openStore(.readOnly)
            var names = pipeline?.environments.map(\.name) ?? []
            for run in try await store.history(limit: 200) where !names.contains(run.environment) { names.append(run.environment) }
            if let environment {
                guard names.contains(environment) else {
                    throw Plan.UnknownEnvironment(name: environment, known: names, file: pipeline?.file ?? location.statePath())
                }
                names = [environment]
            }
            let now = Date()
            var statuses: [EnvironmentStatus] = []
            for name in names {
                var serving: TargetStatus?
                if let pipeline, let target = try? location.workspace().target(pipeline, environment: name) {
                    serving = await target.status()
                }
                let lease = try await store.lease(environment: name)
                // Read-only: a run whose process died is shown as what it is, and reclaimed by the
                // next command that takes the environment.
                let holderGone = lease.map { $0.kind == .run && Self.isGone(pid: $0.pid, host: $0.host) }
                var latest = try await store.history(environment: name, limit: 1).first
                if let run = latest, run.outcome == .running, Self.isGone(pid: run.ownerPID, host: run.ownerHost) {
                    latest?.outcome = .interrupted
                    latest?.reason = "its deploy process (pid \(run.ownerPID)) is gone; the next deploy or rollback records it"
                }
                let lastGood = try await store.lastSucceeded(environment: name)
                statuses.append(
                    EnvironmentStatus(
                        environment: name, lastGood: lastGood, latest: latest,
                        heldBy: lease?.description, holderGone: holderGone == true ? true : nil,
                        frozen: pipeline?.environment(named: name)?.freezes.first { $0.contains(now) }.map {
                            "\($0.reason) (\($0.description))"
                        }, pinned: try await store.pin(environment: name), serving: serving,
                        drift: serving?.drift(lastGood: lastGood, latest: latest)))
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
                            + "at \(Format.timestamp(good.endedAt ?? good.startedAt)) (run \(good.id))")
                } else {
                    print("  last good   nothing has succeeded here yet")
                }
                if let latest = status.latest, latest.id != status.lastGood?.id {
                    print("  latest run  \(latest.id) \(latest.outcome.rawValue)" + (latest.reason.map { ": \($0)" } ?? ""))
                }
                if let held = status.heldBy {
                    print(
                        "  held        \(held)"
                            + (status.holderGone == true
                                ? " (that process is gone: the next deploy, rollback or lock takes \(status.environment) over)" : ""))
                }
                if let frozen = status.frozen { print("  frozen      \(frozen)") }
                if let pin = status.pinned {
                    print("  pinned      since \(Format.timestamp(pin.at)) by \(pin.actor): \(pin.reason)")
                    print("              (`deploy unpin \(status.environment)` lets automatic deploys in again)")
                }
                if let serving = status.serving {
                    if serving.routes.isEmpty {
                        print("  serving     nothing at \(serving.url)")
                    }
                    for route in serving.routes {
                        print(
                            "  serving     \(route.release) at \(serving.url), \(route.weight)% of traffic "
                                + "(\(route.instance) at \(route.url))")
                    }
                    for detail in serving.details {
                        print("  \(serving.kind.padding(toLength: 10, withPad: " ", startingAt: 0))  \(detail)")
                    }
                    if let problem = serving.problem { print("  problem     \(problem)") }
                }
                if let drift = status.drift { print("  drift       \(drift)") }
            }
        }
    }
}
