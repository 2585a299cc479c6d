import SlipwayCore
import SlipwayPipeline

/// `deploy`'s exit codes, as `deploy --help` lists them.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// Failed before changing an environment.
    case failed = 1
    /// Usage error or invalid pipeline.
    case usage = 2
    /// The deploy failed and was rolled back.
    case rolledBack = 3
    /// The environment is locked or frozen.
    case locked = 4
    /// Rollback failed: the environment needs a person.
    case rollbackFailed = 5
    /// Failed after changing an environment, which was not rolled back: the new release serves
    /// (its rollback rehearsal found the previous release broken), and the reason says what to do.
    case failedAfterChange = 6
    /// Cancelled (Ctrl-C, SIGTERM).
    case cancelled = 130

    public var meaning: String {
        switch self {
        case .success: "success"
        case .failed: "failed before changing an environment"
        case .usage: "usage error or invalid pipeline"
        case .rolledBack: "deploy failed and was rolled back"
        case .locked: "environment locked or frozen"
        case .rollbackFailed: "rollback failed"
        case .failedAfterChange: "failed after changing an environment, which keeps the new release"
        case .cancelled: "cancelled (Ctrl-C or SIGTERM)"
        }
    }
}
