import ArgumentParser
import Foundation
import Slipway

/// `deploy abort`, `deploy pause` and `deploy resume` share the run, the actor and the store.
struct ControlOptions: ParsableArguments {
    @Argument(help: "The running deploy (its run id, from `deploy status`, `deploy history` or its output).")
    var run: String

    @OptionGroup var actor: ActorOption

    @OptionGroup var location: LocationOptions

    func request(_ action: RunControlAction, reason: String?) async throws {
        let id = try runID(run)
        let store = try await location.openStore()
        let who = actor.resolve(location.environment)
        do {
            let (_, environment) = try await RunControls.request(in: store, runID: id, action: action, actor: who, reason: reason)
            switch action {
            case .abort:
                print("\(who) aborted run \(id) (\(environment)): it stops now and rolls back" + (reason.map { ": \($0)" } ?? ""))
            case .pause:
                print("\(who) paused run \(id) (\(environment)): a canary holds at its current step until `deploy resume \(id)`")
            case .resume:
                print("\(who) resumed run \(id) (\(environment))")
            }
        } catch let refused as ControlRefused {
            throw CLIError.failed(refused.message, hint: refused.hint)
        }
    }
}

struct Abort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a running deploy now: it rolls back through the same verified path as a failed gate.",
        discussion: """
            Works from any shell sharing the run store. The deploy notices within 200 ms; a rollout in progress \
            puts traffic back on the release that served before, verifies it with the environment's gates and \
            records who aborted and why. An abort wins over a promotion in flight. A run that has not reached its \
            deploy stage stops, as on Ctrl-C.
            """)

    @OptionGroup var options: ControlOptions

    @Option(name: .long, help: ArgumentHelp("Why: recorded on the run and in the audit log.", valueName: "text"))
    var reason: String

    func run() async throws { try await guarded { try await options.request(.abort, reason: reason) } }
}

struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hold a running canary at its current step (until `deploy resume`, at most its hold_limit).")

    @OptionGroup var options: ControlOptions

    @Option(name: .long, help: ArgumentHelp("Why: recorded on the run and in the audit log.", valueName: "text"))
    var reason: String?

    func run() async throws { try await guarded { try await options.request(.pause, reason: reason) } }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Let a canary held by `deploy pause` go on.")

    @OptionGroup var options: ControlOptions

    func run() async throws { try await guarded { try await options.request(.resume, reason: nil) } }
}
