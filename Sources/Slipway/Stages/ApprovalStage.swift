import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// `approval:` stages: wait for enough people's yes (`deploy approve`, or the prompt on a
/// terminal), a no, or the timeout.
struct ApprovalStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        guard case .approval(let environment) = stage.kind else { return .init(outcome: .failed, reason: "internal: not an approval") }
        return await context.recordedStage(stage, slot: slot) { _ in
            await context.waitForApproval(stage: stage, environment: environment)
        }
    }
}

extension RunContext {
    /// Waits until enough people approve (`deploy approve`, or the prompt on a terminal), someone
    /// rejects, or the approval times out. Nothing waits forever: the default timeout is 24 hours.
    func waitForApproval(stage: Stage, environment: String) async -> StageOutcome {
        let spec =
            plan.pipeline.environment(named: environment)?.approval
            ?? ApprovalSpec(approvers: 1, allowed: [], distinctFromTrigger: false, timeout: nil)
        let timeout = spec.timeout ?? .seconds(24 * 3600)
        let opened = engine.now()
        let deadline = opened.addingTimeInterval(Double(timeout.components.seconds))
        let policy = ApprovalPolicy(
            environment: environment, stage: stage.name, approvers: spec.approvers, allowed: spec.allowed,
            distinctFromTrigger: spec.distinctFromTrigger, trigger: trigger.user, deadline: deadline)
        do { try await store.openApproval(runID: runID, policy: policy, at: opened) } catch {
            return StageOutcome(outcome: .failed, reason: "\(error)")
        }
        var details = ["release \(release.description), started by \(trigger.description)"]
        if let changelog {
            details.append(changelog.summary)
            // The risk report, a line per flagged category, before the commits.
            details += changelog.risk.lines.map { "risk: \($0)" }
            details += changelog.groups.flatMap { group in
                group.entries.prefix(10).map { "  \(group.title.lowercased()): \($0.summary) (\($0.sha.prefix(7)))" }
            }
            if !changelog.baseIsAncestor { details.append("warning: deploying this undoes \(changelog.undone) commits") }
        }
        if spec.approvers > 1 || !spec.allowed.isEmpty || spec.distinctFromTrigger {
            var rules = ["\(spec.approvers) approver\(spec.approvers == 1 ? "" : "s")"]
            if !spec.allowed.isEmpty { rules.append("from: \(spec.allowed.joined(separator: ", "))") }
            if spec.distinctFromTrigger { rules.append("not \(trigger.user)") }
            details.append("needs " + rules.joined(separator: ", "))
        }
        reporter.report(
            .approvalWaiting(
                runID: runID, stage: stage.name, environment: environment, needed: spec.approvers,
                deadline: deadline, details: details))
        let store = self.store
        let runID = self.runID
        let approver = trigger.user
        let reporter = self.reporter
        var answer: (@Sendable () async -> Void)?
        if let prompt = engine.approvalPrompt {
            answer = {
                guard await prompt("Approve run \(runID) for \(environment) as \(approver)? [y/N] ") else { return }
                do {
                    try await Approvals.decide(
                        in: store, runID: runID, approver: approver, approve: true, comment: "approved at the prompt", now: Date())
                } catch {
                    reporter.report(.notice("\(error)"))
                }
            }
        }
        let watch: @Sendable () async -> StageOutcome = {
            var waited = Duration.zero
            var seen: [String] = []
            while true {
                switch (try? await Approvals.state(in: store, runID: runID, stage: stage.name, needed: spec.approvers))
                    ?? .waiting(approvedBy: seen)
                {
                case .approved(let by):
                    try? await store.append(
                        EventRecord(
                            runID: runID, at: Date(), kind: .approvalGranted, stage: stage.name,
                            message: "approved by \(by.joined(separator: ", "))"))
                    return StageOutcome(outcome: .succeeded, reason: "approved by \(by.joined(separator: ", "))")
                case .rejected(let by, let comment):
                    try? await store.closeApproval(runID: runID, stage: stage.name, why: "rejected by \(by)", at: Date())
                    return StageOutcome(outcome: .failed, reason: "rejected by \(by)" + (comment.map { ": \($0)" } ?? ""))
                case .waiting(let by):
                    if by != seen {
                        seen = by
                        reporter.report(.notice("approved by \(by.joined(separator: ", ")); \(spec.approvers - by.count) more needed"))
                    }
                }
                if engine.now() >= deadline || waited >= timeout {
                    try? await store.closeApproval(runID: runID, stage: stage.name, why: "timed out", at: Date())
                    return StageOutcome(
                        outcome: .timedOut,
                        reason: "the approval timed out after \(DurationParser.format(timeout))"
                            + (seen.isEmpty ? ": nobody approved" : ": approved by \(seen.joined(separator: ", ")) only"))
                }
                do {
                    try await engine.clock.sleep(for: .milliseconds(250))
                } catch {
                    try? await store.closeApproval(runID: runID, stage: stage.name, why: "the run was cancelled", at: Date())
                    return StageOutcome(outcome: .cancelled, reason: "cancelled while waiting for approval")
                }
                waited += .milliseconds(250)
            }
        }
        return await Self.firstDecision(answer: answer, watch: watch, cancelled: "cancelled while waiting for approval")
    }
}
