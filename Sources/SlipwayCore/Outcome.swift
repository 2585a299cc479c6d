/// How a run, stage or step ended (or that it has not yet).
public enum Outcome: String, Codable, Sendable, CaseIterable {
    case pending
    case running
    case succeeded
    case failed
    /// Failed, but the step said `continue_on_error`, so the run went on.
    case failedAllowed = "failed_allowed"
    case skipped
    case cancelled
    /// The process recording it died (SIGKILL, power loss) before it could say how it ended.
    case interrupted
    case timedOut = "timed_out"
    case rolledBack = "rolled_back"
    /// A rollback was needed and did not restore a verified release: a person must look.
    case rollbackFailed = "rollback_failed"

    /// True once nothing more will happen to the record.
    public var isFinal: Bool { self != .pending && self != .running }
}

/// How a run's rollback rehearsal went.
public enum RehearsalOutcome: String, Codable, Sendable, CaseIterable {
    case passed
    case failed
    /// Nothing served before this release, so there was nothing to roll back to.
    case skipped
}

/// Who started a run: a person, or a CI job.
public struct Trigger: Codable, Sendable, Hashable {
    public var user: String
    /// The CI system's name (`github-actions`, `gitlab`, …), or nil for a person at a terminal.
    public var ci: String?
    public var jobURL: String?

    public init(user: String, ci: String? = nil, jobURL: String? = nil) {
        self.user = user
        self.ci = ci
        self.jobURL = jobURL
    }

    public var description: String {
        guard let ci else { return user }
        return jobURL.map { "\(ci) (\($0))" } ?? "\(ci) as \(user)"
    }
}
