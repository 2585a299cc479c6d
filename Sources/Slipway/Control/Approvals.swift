public import Foundation
public import SlipwayStore

/// An approval or rejection that may not be given, and why.
public struct ApprovalRefused: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?
    public var description: String { hint.map { "\(message)\n    hint: \($0)" } ?? message }
}

/// Where an approval stage stands.
public enum ApprovalState: Sendable, Hashable {
    case waiting(approvedBy: [String])
    case approved(by: [String])
    case rejected(by: String, comment: String?)
}

/// The approval rules, the same whatever store keeps the decisions: the run waits now, the
/// deadline has not passed, the approver is allowed, differs from whoever started the run when
/// the pipeline says so, and has not decided already.
public enum Approvals {
    /// Records `approver`'s decision on run `runID`, refused with a reason when a rule says no.
    @discardableResult
    public static func decide(
        in store: any ApprovalBook, runID: Int64, approver: String, approve: Bool, comment: String?, now: Date
    ) async throws -> ApprovalPolicy {
        try await store.decide(runID: runID, approver: approver, approve: approve, comment: comment, now: now) { pending in
            try check(pending, approver: approver, approve: approve, now: now)
        }
    }

    static func check(_ pending: PendingApproval, approver: String, approve: Bool, now: Date) throws {
        let runID = pending.runID
        guard let outcome = pending.runOutcome else {
            throw ApprovalRefused(message: "there is no run \(runID)", hint: "`deploy history` lists the runs")
        }
        guard outcome == .running, let policy = pending.policy else {
            throw ApprovalRefused(message: "run \(runID) is not waiting for an approval (it is \(outcome.rawValue))")
        }
        if let closed = pending.closed {
            throw ApprovalRefused(
                message: "the approval of run \(runID) is closed (\(closed)): it can no longer be \(approve ? "approved" : "rejected")",
                hint: "start a new run")
        }
        if now >= policy.deadline {
            throw ApprovalRefused(
                message: "the approval of run \(runID) timed out at \(policy.deadline.formatted(.iso8601)): it can no longer be approved",
                hint: "start a new run")
        }
        guard pending.stageRunning else { throw ApprovalRefused(message: "run \(runID) is not waiting for an approval") }
        if !policy.allowed.isEmpty && !policy.allowed.contains(approver) {
            throw ApprovalRefused(
                message: "\(approver) may not approve \(policy.environment)",
                hint: "the pipeline allows: \(policy.allowed.joined(separator: ", "))")
        }
        if approve && policy.distinctFromTrigger && approver == policy.trigger {
            throw ApprovalRefused(
                message: "\(approver) started run \(runID), and \(policy.environment) needs someone else to approve it",
                hint: "the pipeline sets distinct_from_trigger: ask a colleague to run `deploy approve \(runID)`")
        }
        if pending.alreadyDecided { throw ApprovalRefused(message: "\(approver) has already decided on run \(runID)") }
    }

    /// Where the approval stage `stage` of run `runID` stands, against the number of approvers needed.
    public static func state(in store: any ApprovalBook, runID: Int64, stage: String, needed: Int) async throws -> ApprovalState {
        let decisions = try await store.approvals(runID: runID).filter { $0.stage == stage }
        if let rejection = decisions.first(where: { $0.decision == "rejected" }) {
            return .rejected(by: rejection.approver, comment: rejection.comment)
        }
        let approvers = decisions.filter { $0.decision == "approved" }.map(\.approver)
        return approvers.count >= needed ? .approved(by: approvers) : .waiting(approvedBy: approvers)
    }
}
