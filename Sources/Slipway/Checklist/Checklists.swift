public import Foundation
public import SlipwayPipeline
public import SlipwayStore

/// A sign-off that may not be given, and why.
public struct SignOffRefused: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?
    public var description: String { hint.map { "\(message)\n    hint: \($0)" } ?? message }
}

/// The checklist's rules, the same whatever store keeps them: who may sign what and when, how a
/// pipeline's checklist becomes a run's record, and how many items a machine checks.
public enum Checklists {
    /// Records `signer`'s sign-off of `item` (an id or its number) on run `runID`.
    @discardableResult
    public static func sign(
        in store: any ChecklistBook, runID: Int64, item: String, signer: String, comment: String?, now: Date
    ) async throws -> ChecklistItemRecord {
        try await store.sign(runID: runID, item: item, signer: signer, comment: comment, now: now) { pending in
            try check(pending, item: item, signer: signer)
        }
    }

    static func check(_ pending: PendingSignOff, item: String, signer: String) throws {
        let runID = pending.runID
        guard let outcome = pending.runOutcome else {
            throw SignOffRefused(message: "there is no run \(runID)", hint: "`deploy history` lists the runs")
        }
        guard let found = pending.item else {
            throw SignOffRefused(
                message: "run \(runID) has no checklist item '\(item)'",
                hint: "`deploy checklist \(pending.environment ?? "<environment>") --run \(runID)` lists its items, with ids and numbers")
        }
        guard found.isSignOff else {
            throw SignOffRefused(
                message: "'\(found.itemID)' (\(found.title)) is checked by a machine (\(found.check ?? "check")), not signed off",
                hint: "its state is \(found.state.rawValue): \(found.detail)")
        }
        if found.state == .signed {
            throw SignOffRefused(message: "'\(found.itemID)' is already signed off on run \(runID): \(found.detail)")
        }
        if !found.maySign(signer) {
            throw SignOffRefused(
                message: "\(signer) may not sign off '\(found.itemID)'",
                hint: "the pipeline lets \(found.role.map { "\($0): " } ?? "")\(found.signers.joined(separator: ", ")) sign it")
        }
        if found.distinctFromTrigger, signer == pending.trigger {
            throw SignOffRefused(
                message: "\(signer) started run \(runID), and '\(found.itemID)' needs someone else's sign-off",
                hint: "ask a colleague to run `deploy sign \(runID) \(found.itemID)`")
        }
        // A sign-off for this run only counts while the run waits for it; one that stands for a
        // while (valid_for) is worth recording after the run, for the runs that follow.
        if !(outcome == .running && pending.stageRunning) && found.validForSeconds == nil {
            throw SignOffRefused(
                message:
                    "run \(runID) is not waiting for sign-offs (it is \(outcome.rawValue)): '\(found.itemID)' is signed for one run only",
                hint: "sign it on the next run of \(pending.environment ?? "the environment") while it waits")
        }
    }

    /// The run's record of a checklist as the pipeline has it: every item pending, its rules kept.
    public static func records(_ spec: ChecklistSpec, runID: Int64, stage: String) -> [ChecklistItemRecord] {
        spec.items.enumerated().map { position, entry in
            let item = entry.item
            switch item.requirement {
            case .check(let check):
                return ChecklistItemRecord(
                    runID: runID, stage: stage, position: position, itemID: item.id, section: entry.section, title: item.title,
                    kind: "check", check: check.name, advisory: item.advisory, detail: "not checked yet")
            case .signOff(let signOff):
                return ChecklistItemRecord(
                    runID: runID, stage: stage, position: position, itemID: item.id, section: entry.section, title: item.title,
                    kind: "sign_off", check: nil, advisory: item.advisory, signers: signOff.signers, role: signOff.role,
                    validForSeconds: signOff.validFor.map { Int($0.components.seconds) }, distinctFromTrigger: signOff.distinctFromTrigger,
                    detail: "waiting for \(signOff.who)")
            }
        }
    }

    /// How much of a checklist a machine checks.
    public struct Coverage: Sendable, Codable, Hashable {
        public var items: Int
        public var automated: Int
        public var signOff: Int
        /// Sign-offs that stand for a while (`valid_for`): standing practices, not this deploy.
        public var standing: Int
        /// Advisory sign-offs: follow-ups after the release is live, recorded but never blocking.
        public var followUp: Int
        /// Items that concern a deploy: the automated ones and the required per-run sign-offs.
        public var deployItems: Int
        public var advisory: Int
        /// Automated items by check.
        public var checks: [String: Int]

        enum CodingKeys: String, CodingKey {
            case items, automated, standing, advisory, checks
            case signOff = "sign_off"
            case followUp = "follow_up"
            case deployItems = "deploy_items"
        }

        /// The share of the deploy's items a machine checks, in percent.
        public var deployAutomatedPercent: Int { deployItems == 0 ? 0 : Int((Double(automated) * 100 / Double(deployItems)).rounded()) }
    }

    public static func coverage(_ spec: ChecklistSpec) -> Coverage {
        var coverage = Coverage(items: 0, automated: 0, signOff: 0, standing: 0, followUp: 0, deployItems: 0, advisory: 0, checks: [:])
        for (_, item) in spec.items {
            coverage.items += 1
            if item.advisory { coverage.advisory += 1 }
            switch item.requirement {
            case .check(let check):
                coverage.automated += 1
                coverage.checks[check.name, default: 0] += 1
            case .signOff(let signOff):
                coverage.signOff += 1
                if signOff.validFor != nil {
                    coverage.standing += 1
                } else if item.advisory {
                    coverage.followUp += 1
                }
            }
        }
        coverage.deployItems = coverage.items - coverage.standing - coverage.followUp
        return coverage
    }
}
