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

    public init(
        sha: String, branch: String? = nil, dirty: Bool = false, dirtyPaths: [String] = [], shallow: Bool = false, tagName: String? = nil,
        tagVersion: SemanticVersion? = nil, distance: Int = 0
    ) {
        self.sha = sha
        self.branch = branch
        self.dirty = dirty
        self.dirtyPaths = dirtyPaths
        self.shallow = shallow
        self.tagName = tagName
        self.tagVersion = tagVersion
        self.distance = distance
    }

    /// `1.4.2`, `1.4.2-3-gabc1234` past a tag (git describe's shape), `0.0.0-12-gabc1234` with no
    /// version tag, and `+dirty` when the working tree has changes: always valid SemVer 2.0. A
    /// tag's build metadata stays metadata (`1.4.2-3-gabc1234+build.5.dirty`), and a pre-release
    /// tag's distance joins its last identifier (`2.0.0-rc.1-3-gabc1234`).
    public var version: String {
        var version = tagVersion ?? SemanticVersion(major: 0, minor: 0, patch: 0)
        if tagVersion == nil || distance > 0 {
            let suffix = "\(distance)-g\(shortSHA)"
            if let last = version.prerelease.indices.last {
                version.prerelease[last] += "-" + suffix
            } else {
                version.prerelease = [suffix]
            }
        }
        if dirty { version.build.append("dirty") }
        return version.description
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
