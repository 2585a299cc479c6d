import Foundation

/// A release as a target knows it: the run that shipped it and its image by digest.
public struct ReleaseReference: Sendable, Hashable, Codable {
    public var run: Int64
    public var version: String?
    public var sha: String?
    public var image: String

    public init(run: Int64, version: String?, sha: String?, image: String) {
        self.run = run
        self.version = version
        self.sha = sha
        self.image = image
    }

    /// `1.4.2 (run 12)`.
    public var description: String { "\(version ?? sha.map { String($0.prefix(7)) } ?? "unknown release") (run \(run))" }
}
