import ArgumentParser
import Foundation
import Slipway

/// `deploy approve` and `deploy reject` share everything but the answer.
struct DecisionOptions: ParsableArguments {
    @Argument(help: "The run waiting for approval (from `deploy history` or the waiting deploy's output).")
    var run: String

    @OptionGroup var actor: ActorOption

    @Option(name: .long, help: ArgumentHelp("A comment, recorded with the decision.", valueName: "text"))
    var comment: String?

    @OptionGroup var location: LocationOptions

    func decide(approve: Bool) async throws {
        let id = try runID(run)
        let store = try await location.openStore()
        let who = actor.resolve(location.environment)
        // What is being decided on: what the run ships and what the risk report flags.
        if let recorded = try? await store.changelog(runID: id), let changelog = Changelog.decodeRecorded(recorded.json) {
            print("run \(id) \(changelog.summary)")
            for line in changelog.risk.lines { print("  risk: \(line)") }
        }
        do {
            let policy = try await Approvals.decide(in: store, runID: id, approver: who, approve: approve, comment: comment, now: Date())
            print("\(who) \(approve ? "approved" : "rejected") run \(id) for \(policy.environment)" + (comment.map { ": \($0)" } ?? ""))
        } catch let refused as ApprovalRefused {
            throw CLIError.failed(refused.message, hint: refused.hint)
        }
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approve a run waiting at an approval stage (recorded, with the audit log).",
        discussion: "Works from any terminal or machine that shares the run store. The pipeline decides who may approve and how many must.")

    @OptionGroup var options: DecisionOptions

    func run() async throws { try await guarded { try await options.decide(approve: true) } }
}

struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reject a run waiting at an approval stage: it fails before the environment changes.")

    @OptionGroup var options: DecisionOptions

    func run() async throws { try await guarded { try await options.decide(approve: false) } }
}
