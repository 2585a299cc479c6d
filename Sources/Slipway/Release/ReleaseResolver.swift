/// Finds what is being released.
public enum ReleaseResolver {
    /// The release named on the command line, else what the environment says (`DEPLOY_RELEASE_SHA`,
    /// or a CI system's commit variable).
    public static func resolve(override: String?, environment: [String: String]) -> Release {
        let sha = environment["SLIPWAY_SHA"] ?? environment["GITHUB_SHA"] ?? environment["CI_COMMIT_SHA"]
            ?? environment["BUILDKITE_COMMIT"] ?? environment["CIRCLE_SHA1"] ?? environment["GIT_COMMIT"]
        return Release(sha: sha, version: override)
    }
}
