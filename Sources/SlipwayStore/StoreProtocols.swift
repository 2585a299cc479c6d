public import Foundation
public import SlipwayCore

// What Slipway asks of a run store, in four books. `RunStore` (SQLite through GRDB) keeps all four
// in one file; another store (PostgreSQL for a team sharing one) implements these protocols and
// nothing else: the rules (who may approve, what a refusal says, what to roll back to) live in
// Slipway and are the same for every store.
//
// Every call is async: a store waits for its database without holding a thread of the
// concurrency pool (two threads on a two-core machine), so a busy store never stalls gates,
// heartbeats or signal handling.

/// The run record: runs, their stages, steps and events, changelogs, images, releases and pins.
public protocol RunLog: Sendable {
    func insert(_ run: RunRecord) async throws -> RunRecord
    func update(_ run: RunRecord) async throws
    func insert(_ stages: [StageRecord]) async throws -> [StageRecord]
    func update(_ stage: StageRecord, event: EventRecord?) async throws
    func insert(_ step: StepRecord, event: EventRecord?) async throws -> StepRecord
    func update(_ step: StepRecord, event: EventRecord?) async throws
    func append(_ event: EventRecord) async throws
    /// A step's start with, in the same transaction, its stage's start when it is the first step.
    func start(_ step: StepRecord, stage: StageRecord?, events: [EventRecord]) async throws -> StepRecord
    /// A step's end with, in the same transaction, its stage's end when it is the last step.
    func finish(_ step: StepRecord, stage: StageRecord?, events: [EventRecord]) async throws
    func recordChild(pid: Int32, stepID: Int64) async throws
    func heartbeat(runID: Int64, at now: Date) async throws
    func finish(runID: Int64, outcome: Outcome, exitCode: Int, reason: String?, at now: Date) async throws
    /// Marks `interrupted` the runs whose owner died (on this host, or silent past `staleAfter`).
    func reclaimAbandonedRuns(host: String, now: Date, staleAfter: TimeInterval, isAlive: @escaping @Sendable (Int32) -> Bool)
        async throws -> [Reclaimed]

    func history(environment: String?, limit: Int) async throws -> [RunRecord]
    func run(id: Int64) async throws -> RunRecord?
    func detail(runID: Int64) async throws -> RunDetail?
    func lastSucceeded(environment: String, sha: String?) async throws -> RunRecord?
    func latestRun(environment: String, sha: String) async throws -> RunRecord?

    func saveChangelog(runID: Int64, baseKind: String, baseSHA: String?, commitCount: Int, markdown: String, json: String) async throws
    func changelog(runID: Int64) async throws -> (markdown: String, json: String)?

    func recordImage(runID: Int64, reference: String, at date: Date) async throws
    func setRelease(runID: Int64, version: String?, sha: String?, image: String?) async throws
    func image(sha: String?, version: String?) async throws -> RunRecord?
    func pushedRelease(named name: String) async throws -> RunRecord?
    func goodReleases(environment: String, before: Int64?, limit: Int) async throws -> [RunRecord]
    func recordRehearsal(runID: Int64, outcome: RehearsalOutcome, milliseconds: Int?, at date: Date) async throws
    func recordRollback(runID: Int64, restoredRunID: Int64?, milliseconds: Int?) async throws

    func pin(environment: String, runID: Int64?, actor: String, reason: String, at date: Date) async throws
    func unpin(environment: String, actor: String, reason: String?, at date: Date) async throws -> Pin?
    func pin(environment: String) async throws -> Pin?
}

/// Who holds each environment: deploys' leases, the queue of `--wait`, and manual locks.
public protocol LeaseBook: Sendable {
    func lease(environment: String) async throws -> Lease?
    func acquireLease(
        environment: String, holder: String, host: String, pid: Int32, now: Date, staleAfter: TimeInterval, queueTicket: Int64?,
        isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> LeaseAttempt
    func enqueue(environment: String, holder: String, host: String, pid: Int32, now: Date) async throws -> Int64
    func leaveQueue(ticket: Int64) async throws
    func attachLease(environment: String, pid: Int32, host: String, runID: Int64) async throws
    func heartbeatLease(environment: String, pid: Int32, host: String, now: Date) async throws
    func releaseLease(environment: String, pid: Int32, host: String) async throws
    func lock(
        environment: String, by holder: String, reason: String, host: String, now: Date, staleAfter: TimeInterval,
        isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> Lease?
    func unlock(environment: String, by actor: String, now: Date) async throws -> Lease?
}

/// Approval requests and the decisions on them. The store keeps them and applies a decision
/// atomically; whether a decision may be given is Slipway's rule, passed in as `check`.
public protocol ApprovalBook: Sendable {
    func openApproval(runID: Int64, policy: ApprovalPolicy, at date: Date) async throws
    func closeApproval(runID: Int64, stage: String, why: String, at date: Date) async throws
    /// Records `approver`'s decision on the approval run `runID` waits for, after `check` has seen,
    /// in the same transaction, everything the rules need; `check` throws to refuse.
    func decide(
        runID: Int64, approver: String, approve: Bool, comment: String?, now: Date,
        check: @escaping @Sendable (PendingApproval) throws -> Void
    ) async throws -> ApprovalPolicy
    func approvals(runID: Int64) async throws -> [ApprovalRecord]
}

/// The hash-chained audit log.
public protocol AuditLog: Sendable {
    func audit(actor: String, action: String, environment: String?, runID: Int64?, detail: String, at date: Date) async throws
    func auditLog(environment: String?, limit: Int?) async throws -> [AuditEntry]
    func verifyAudit() async throws -> AuditVerification
}

/// A run marked interrupted, with the pids of the steps it left running (their process groups
/// may still be alive: SIGKILL gave `deploy` no chance to stop them).
public struct Reclaimed: Sendable {
    public var run: RunRecord
    public var orphanedChildren: [Int32]

    public init(run: RunRecord, orphanedChildren: [Int32]) {
        self.run = run
        self.orphanedChildren = orphanedChildren
    }
}

/// What the approval rules see when someone decides, read in the decision's own transaction.
public struct PendingApproval: Sendable {
    public var runID: Int64
    /// Nil when there is no such run.
    public var runOutcome: Outcome?
    /// What the run waits for, if it waits for an approval.
    public var policy: ApprovalPolicy?
    /// Why the approval stopped waiting (timed out, cancelled), if it did.
    public var closed: String?
    /// The approval's stage is still running.
    public var stageRunning: Bool
    /// The approver has decided on this approval already.
    public var alreadyDecided: Bool
}

/// Everything a deploy records.
public typealias DeployStore = RunLog & LeaseBook & ApprovalBook & AuditLog & ChecklistBook & AnalysisBook

// The usual arguments, for every store.
extension RunLog {
    public func update(_ stage: StageRecord) async throws { try await update(stage, event: nil) }
    public func insert(_ step: StepRecord) async throws -> StepRecord { try await insert(step, event: nil) }
    public func update(_ step: StepRecord) async throws { try await update(step, event: nil) }
    public func reclaimAbandonedRuns(host: String, now: Date, isAlive: @escaping @Sendable (Int32) -> Bool) async throws -> [Reclaimed] {
        try await reclaimAbandonedRuns(host: host, now: now, staleAfter: 60, isAlive: isAlive)
    }
    public func history(limit: Int) async throws -> [RunRecord] { try await history(environment: nil, limit: limit) }
    public func history(environment: String) async throws -> [RunRecord] { try await history(environment: environment, limit: 20) }
    public func lastSucceeded(environment: String) async throws -> RunRecord? {
        try await lastSucceeded(environment: environment, sha: nil)
    }
    public func goodReleases(environment: String) async throws -> [RunRecord] {
        try await goodReleases(environment: environment, before: nil, limit: 20)
    }
}

extension LeaseBook {
    public func acquireLease(
        environment: String, holder: String, host: String, pid: Int32, now: Date, queueTicket: Int64? = nil,
        isAlive: @escaping @Sendable (Int32) -> Bool
    ) async throws -> LeaseAttempt {
        try await acquireLease(
            environment: environment, holder: holder, host: host, pid: pid, now: now, staleAfter: 60, queueTicket: queueTicket,
            isAlive: isAlive)
    }
    public func lock(
        environment: String, by holder: String, reason: String, host: String, now: Date, isAlive: @escaping @Sendable (Int32) -> Bool
    )
        async throws -> Lease?
    {
        try await lock(environment: environment, by: holder, reason: reason, host: host, now: now, staleAfter: 60, isAlive: isAlive)
    }
}

extension AuditLog {
    public func audit(actor: String, action: String, environment: String?, runID: Int64? = nil, detail: String) async throws {
        try await audit(actor: actor, action: action, environment: environment, runID: runID, detail: detail, at: Date())
    }
    public func audit(actor: String, action: String, environment: String?, detail: String, at date: Date) async throws {
        try await audit(actor: actor, action: action, environment: environment, runID: nil, detail: detail, at: date)
    }
    public func auditLog(environment: String? = nil) async throws -> [AuditEntry] {
        try await auditLog(environment: environment, limit: nil)
    }
}
