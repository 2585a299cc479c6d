import Slipway
import SlipwayStore
import Testing

@Suite("Who triggered a run")
struct TriggerTests {
    @Test("a person at a terminal is named by SLIPWAY_USER, else USER")
    func person() {
        #expect(Trigger.detect(environment: ["USER": "ann"]) == Trigger(user: "ann"))
        #expect(Trigger.detect(environment: ["USER": "ann", "SLIPWAY_USER": "ann.lee"]) == Trigger(user: "ann.lee"))
    }

    @Test("CI systems are recognised with their job URL")
    func ciSystems() {
        #expect(
            Trigger.detect(environment: [
                "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octo", "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "42",
            ]) == Trigger(user: "octo", ci: "github-actions", jobURL: "https://github.com/acme/shop/actions/runs/42"))
        #expect(
            Trigger.detect(environment: ["GITLAB_CI": "true", "GITLAB_USER_LOGIN": "gl", "CI_JOB_URL": "https://gitlab/job/7"])
                == Trigger(user: "gl", ci: "gitlab", jobURL: "https://gitlab/job/7"))
        #expect(
            Trigger.detect(environment: ["JENKINS_URL": "https://ci", "BUILD_URL": "https://ci/job/1", "USER": "jenkins"])
                == Trigger(user: "jenkins", ci: "jenkins", jobURL: "https://ci/job/1"))
        #expect(Trigger.detect(environment: ["CI": "true", "USER": "runner"]) == Trigger(user: "runner", ci: "ci"))
    }
}
