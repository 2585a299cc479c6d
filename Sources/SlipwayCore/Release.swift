/// What a run ships: the commit and the version people call it by.
public struct Release: Sendable, Hashable, Codable {
    public var sha: String?
    public var version: String?
    /// Where the source lives (the git remote's URL), for image labels.
    public var source: String?

    public init(sha: String?, version: String?, source: String? = nil) {
        self.sha = sha
        self.version = version
        self.source = source
    }

    public var shortSHA: String? { sha.map { String($0.prefix(7)) } }

    /// `1.4.2 (abc1234)`, or whichever half is known.
    public var description: String {
        switch (version, shortSHA) {
        case let (v?, s?): "\(v) (\(s))"
        case let (v?, nil): v
        case let (nil, s?): s
        case (nil, nil): "unknown release"
        }
    }
}
