public import SlipwayCore
public import SlipwayGit
import SlipwayPipeline

/// Finds what is being released: git at the working directory first, then a CI system's variables.
public enum ReleaseResolver {
    public struct Resolved {
        public var release: Release
        /// What the user should know (no repository here, a shallow clone, a dirty tree).
        public var notes: [String]
        public var git: GitRelease?
        /// The repository the release came from, for its changelog.
        public var repository: Repository?
    }

    /// `override` (from `--release`) names the version; the commit always comes from git when there
    /// is a repository, else from `SLIPWAY_SHA` or the CI system's commit variable.
    public static func resolve(override: String?, directory: String, environment: [String: String]) -> Resolved {
        var notes: [String] = []
        do {
            let repository = try Repository(discoveringFrom: directory)
            let git = try repository.release()
            if git.shallow {
                notes.append("this is a shallow clone: versions and changelogs may be incomplete (run `git fetch --unshallow --tags`)")
            }
            if git.tagVersion == nil {
                notes.append(
                    "no version tag (v1.2.3 or 1.2.3) is reachable from HEAD: the version is \(git.version)"
                        + (git.shallow ? "; fetch tags with `git fetch --tags`" : "; tag a release with `git tag v0.1.0`"))
            }
            return Resolved(
                release: Release(sha: git.sha, version: override ?? git.version, source: repository.remoteURL()), notes: notes, git: git,
                repository: repository)
        } catch {
            notes.append("\(error.message); the release is taken from the environment")
        }
        let sha =
            environment["SLIPWAY_SHA"] ?? environment["GITHUB_SHA"] ?? environment["CI_COMMIT_SHA"]
            ?? environment["BUILDKITE_COMMIT"] ?? environment["CIRCLE_SHA1"] ?? environment["GIT_COMMIT"]
        return Resolved(release: Release(sha: sha, version: override), notes: notes, git: nil, repository: nil)
    }
}
