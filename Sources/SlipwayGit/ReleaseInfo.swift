/// What git says about the release in a working directory.
public struct GitRelease: Sendable, Hashable {
    public var sha: String
    public var branch: String?
    public var dirty: Bool
    /// Up to 50 of the paths that make the tree dirty.
    public var dirtyPaths: [String]
    public var shallow: Bool
    /// The nearest version tag at or below HEAD (stable or pre-release) and the version it spells.
    public var tagName: String?
    public var tagVersion: SemanticVersion?
    /// Commits from that tag to HEAD (0 when HEAD is tagged).
    public var distance: Int

    public var shortSHA: String { String(sha.prefix(7)) }

    /// `1.4.2`, `1.4.2-3-gabc1234` past a tag, `0.0.0-12-gabc1234` with no version tag, and
    /// `+dirty` when the working tree has changes.
    public var version: String {
        var text: String
        if let tagVersion {
            text = distance == 0 ? tagVersion.description : "\(tagVersion)-\(distance)-g\(shortSHA)"
        } else {
            text = "0.0.0-\(distance)-g\(shortSHA)"
        }
        if dirty { text += "+dirty" }
        return text
    }
}

extension Repository {
    /// The release at HEAD: its commit, branch, dirt, and the version the nearest version tag gives.
    public func release() throws(GitError) -> GitRelease {
        let head = try head()
        let changes = try changedPaths()
        let nearest = try nearestVersionTag(from: head.sha)
        let distance = try count(from: nearest?.tag.sha, to: head.sha)
        return GitRelease(
            sha: head.sha, branch: head.branch, dirty: changes.total > 0, dirtyPaths: changes.paths, shallow: isShallow,
            tagName: nearest?.tag.name, tagVersion: nearest?.version, distance: distance)
    }
}
