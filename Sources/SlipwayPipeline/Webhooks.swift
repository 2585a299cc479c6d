import SlipwayCore

/// What a webhook can be told about.
public enum NotificationEvent: String, Sendable, CaseIterable, Codable {
    case started
    case succeeded
    case failed
    case cancelled
    case rolledBack = "rolled_back"
    case waitingForApproval = "waiting_for_approval"
}

/// A webhook from the pipeline's `notify:`. The URL comes from a secret, so it is masked wherever
/// it would be printed or recorded.
public struct WebhookSpec: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable { case json, slack }

    /// The name of the secret (an environment variable) that holds the URL.
    public var urlFrom: String
    public var format: Format
    public var events: Set<NotificationEvent>
}
