import Foundation
public import SlipwayCore
import SlipwayPipeline
import SlipwayStore

extension Trigger {
    /// Who is running `deploy`: the CI job (from the usual CI variables) or the user at the terminal.
    public static func detect(environment: [String: String]) -> Trigger {
        let user = environment["SLIPWAY_USER"] ?? environment["USER"] ?? environment["LOGNAME"] ?? currentUserName() ?? "unknown"
        if environment["GITHUB_ACTIONS"] == "true" {
            let url = [environment["GITHUB_SERVER_URL"], environment["GITHUB_REPOSITORY"], environment["GITHUB_RUN_ID"]]
            let jobURL = url.allSatisfy({ $0 != nil }) ? "\(url[0]!)/\(url[1]!)/actions/runs/\(url[2]!)" : nil
            return Trigger(user: environment["GITHUB_ACTOR"] ?? user, ci: "github-actions", jobURL: jobURL)
        }
        if environment["GITLAB_CI"] != nil {
            return Trigger(user: environment["GITLAB_USER_LOGIN"] ?? user, ci: "gitlab", jobURL: environment["CI_JOB_URL"])
        }
        if environment["BUILDKITE"] == "true" {
            return Trigger(
                user: environment["BUILDKITE_BUILD_CREATOR"] ?? user, ci: "buildkite", jobURL: environment["BUILDKITE_BUILD_URL"])
        }
        if environment["CIRCLECI"] == "true" {
            return Trigger(user: environment["CIRCLE_USERNAME"] ?? user, ci: "circleci", jobURL: environment["CIRCLE_BUILD_URL"])
        }
        if environment["JENKINS_URL"] != nil {
            return Trigger(user: user, ci: "jenkins", jobURL: environment["BUILD_URL"])
        }
        if let ci = environment["CI"], ["true", "1", "yes"].contains(ci.lowercased()) {
            return Trigger(user: user, ci: "ci", jobURL: environment["CI_JOB_URL"] ?? environment["BUILD_URL"])
        }
        return Trigger(user: user)
    }

    private static func currentUserName() -> String? {
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}
