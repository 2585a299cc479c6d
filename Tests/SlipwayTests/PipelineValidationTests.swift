import Slipway
import Testing

/// One broken pipeline and the diagnostic it must produce.
struct BrokenPipeline: CustomTestStringConvertible, Sendable {
    var name: String
    var yaml: String
    var line: Int
    var column: Int
    var message: String
    var hint: String? = nil

    var testDescription: String { name }
}

let valid = """
    app: hello
    environments:
      staging: {}
      production: { promote_from: staging }
    stages:
      - { name: test, run: [swift, test] }
      - { name: staging, deploy: staging }
      - { name: production, deploy: production }

    """

let brokenPipelines: [BrokenPipeline] = [
    BrokenPipeline(
        name: "promote_from in a circle",
        yaml: """
            app: hello
            environments:
              a: { promote_from: b }
              b: { promote_from: a }
            stages:
              - { name: a, deploy: a }
              - { name: b, deploy: b }
            """,
        line: 3, column: 22, message: "promote_from goes round in a circle: a ← b ← a"),
    BrokenPipeline(
        name: "an environment named like the teardown command",
        yaml: "app: hello\nenvironments: { teardown: {} }\nstages:\n  - { name: a, run: [true] }\n",
        line: 2, column: 17, message: "environment name 'teardown' clashes with the command `deploy teardown`"),
    BrokenPipeline(
        name: "an empty step name",
        yaml: "app: hello\nstages:\n  - name: t\n    steps:\n      - { name: \"\", run: [true] }\n",
        line: 5, column: 17, message: "step name is empty"),
    BrokenPipeline(
        name: "a step name with a newline",
        yaml: "app: hello\nstages:\n  - name: t\n    steps:\n      - { name: \"a\\nb\", run: [true] }\n",
        line: 5, column: 17, message: "step name 'a\\nb' is not valid"),
    BrokenPipeline(
        name: "an approval after the deploy it should allow",
        yaml: """
            app: hello
            environments: { production: {} }
            stages:
              - { name: production, deploy: production }
              - { name: sign-off, approval: production }
            """,
        line: 5, column: 33, message: "stage 'sign-off' approves production after stage 'production' has deployed it"),
    BrokenPipeline(
        name: "an unknown variable in a step's env",
        yaml: "app: hello\nstages:\n  - { name: a, run: [true], env: { TOKEN: \"${NOPE}\" } }\n",
        line: 3, column: 44, message: "unknown variable ${NOPE}"),
    BrokenPipeline(
        name: "a freeze on a month that does not exist",
        yaml: """
            app: hello
            environments:
              production:
                freeze: [{ from: "2026-13-45 00:00", to: "2026-12-27 00:00", reason: x }]
            stages:
              - { name: a, run: [true] }
            """,
        line: 4, column: 22, message: "'2026-13-45 00:00' is not a date that exists"),
    BrokenPipeline(
        name: "a freeze on 30 February",
        yaml: """
            app: hello
            environments:
              production:
                freeze: [{ from: "2026-02-30 00:00", to: "2026-03-02 00:00", reason: x }]
            stages:
              - { name: a, run: [true] }
            """,
        line: 4, column: 22, message: "'2026-02-30 00:00' is not a date that exists"),
    BrokenPipeline(
        name: "a freeze that ends before it starts",
        yaml: """
            app: hello
            environments:
              production:
                freeze: [{ from: "2026-12-27 00:00", to: "2026-12-24 00:00", reason: x }]
            stages:
              - { name: a, run: [true] }
            """,
        line: 4, column: 46, message: "this freeze window ends before it starts"),
    BrokenPipeline(name: "empty file", yaml: "", line: 1, column: 1, message: "the pipeline is empty"),
    BrokenPipeline(name: "only a comment", yaml: "# nothing here\n", line: 1, column: 1, message: "the pipeline is empty"),
    BrokenPipeline(
        name: "not a mapping", yaml: "- a\n- b\n", line: 1, column: 1,
        message: "the pipeline must be a mapping of keys to values, found a list"),
    BrokenPipeline(name: "YAML syntax error", yaml: "app: hello\nstages: [\n", line: 3, column: 1, message: "not valid YAML"),
    BrokenPipeline(
        name: "duplicate key", yaml: "app: hello\napp: other\nstages: []\n", line: 1, column: 1,
        message: "key 'app' appears more than once"),
    BrokenPipeline(
        name: "misspelt top-level key", yaml: "app: hello\nstagse:\n  - { name: a, run: [true] }\n", line: 2, column: 1,
        message: "unknown key 'stagse' in the pipeline", hint: "did you mean 'stages'?"),
    BrokenPipeline(
        name: "missing app", yaml: "stages:\n  - { name: a, run: [true] }\n", line: 1, column: 1,
        message: "the pipeline has no 'app'"),
    BrokenPipeline(name: "missing stages", yaml: "app: hello\n", line: 1, column: 1, message: "the pipeline has no 'stages'"),
    BrokenPipeline(name: "empty stage list", yaml: "app: hello\nstages: []\n", line: 2, column: 9, message: "the pipeline has no stages"),
    BrokenPipeline(
        name: "stages not a list", yaml: "app: hello\nstages: build\n", line: 2, column: 9,
        message: "stages must be a list, found the string 'build'"),
    BrokenPipeline(
        name: "stage without a name", yaml: "app: hello\nstages:\n  - { run: [true] }\n", line: 3, column: 5,
        message: "a stage has no 'name'"),
    BrokenPipeline(
        name: "duplicate stage names", yaml: "app: hello\nstages:\n  - { name: a, run: [true] }\n  - { name: a, run: [false] }\n",
        line: 4, column: 5, message: "stage name 'a' is used twice (first at line 3)"),
    BrokenPipeline(
        name: "stage that does nothing", yaml: "app: hello\nstages:\n  - { name: a }\n", line: 3, column: 5,
        message: "stage 'a' does nothing"),
    BrokenPipeline(
        name: "stage doing two things", yaml: "app: hello\nstages:\n  - { name: a, run: [true], sh: echo }\n", line: 3, column: 29,
        message: "stage 'a' has both run and sh"),
    BrokenPipeline(
        name: "run given a string", yaml: "app: hello\nstages:\n  - { name: a, run: swift test }\n", line: 3, column: 21,
        message: "run takes an argv array, not a string", hint: "write `run: [swift, test]`, or use `sh:` for a shell script"),
    BrokenPipeline(
        name: "empty run", yaml: "app: hello\nstages:\n  - { name: a, run: [] }\n", line: 3, column: 21, message: "run is empty"),
    BrokenPipeline(
        name: "run element is a mapping", yaml: "app: hello\nstages:\n  - { name: a, run: [echo, {x: 1}] }\n", line: 3, column: 28,
        message: "each item of run must be a string, found a mapping"),
    BrokenPipeline(
        name: "misspelt stage key", yaml: "app: hello\nstages:\n  - { name: a, run: [true], timout: 5m }\n", line: 3, column: 29,
        message: "unknown key 'timout' in a stage", hint: "did you mean 'timeout'?"),
    BrokenPipeline(
        name: "bad duration", yaml: "app: hello\nstages:\n  - { name: a, run: [true], timeout: 5 minutes }\n", line: 3, column: 38,
        message: "timeout must be a duration such as 30s, 5m, 1h30m or 500ms, found the string '5 minutes'"),
    BrokenPipeline(
        name: "retries not a number", yaml: "app: hello\nstages:\n  - { name: a, run: [true], retries: many }\n", line: 3, column: 38,
        message: "retries must be a whole number, found the string 'many'"),
    BrokenPipeline(
        name: "negative retries", yaml: "app: hello\nstages:\n  - { name: a, run: [true], retries: -1 }\n", line: 3, column: 38,
        message: "retries must be from 0 to 20, not -1"),
    BrokenPipeline(
        name: "continue_on_error not a boolean", yaml: "app: hello\nstages:\n  - { name: a, run: [true], continue_on_error: maybe }\n",
        line: 3, column: 48, message: "continue_on_error must be true or false"),
    BrokenPipeline(
        name: "deploy to an unknown environment",
        yaml: "app: hello\nenvironments:\n  staging: {}\nstages:\n  - { name: s, deploy: stagign }\n",
        line: 5, column: 24, message: "stage 's' names environment 'stagign', which is not declared", hint: "did you mean 'staging'?"),
    BrokenPipeline(
        name: "approval for an unknown environment",
        yaml: "app: hello\nenvironments:\n  production: {}\nstages:\n  - { name: ok, approval: prod }\n",
        line: 5, column: 27, message: "stage 'ok' names environment 'prod', which is not declared"),
    BrokenPipeline(
        name: "environment uses an unknown gate",
        yaml:
            "app: hello\nenvironments:\n  staging: { gates: [smoek] }\ngates:\n  smoke: { http: { url: \"http://127.0.0.1/health\" } }\nstages:\n  - { name: s, deploy: staging }\n",
        line: 3, column: 22, message: "environment 'staging' uses gate 'smoek', which is not declared", hint: "did you mean 'smoke'?"),
    BrokenPipeline(
        name: "unknown variable", yaml: "app: hello\nstages:\n  - { name: a, run: [echo, \"${VERSON}\"] }\n", line: 3, column: 29,
        message: "unknown variable ${VERSON}", hint: "did you mean ${VERSION}?"),
    BrokenPipeline(
        name: "unclosed variable", yaml: "app: hello\nstages:\n  - { name: a, run: [echo, \"v${VERSION\"] }\n", line: 3, column: 30,
        message: "'${' is not closed"),
    BrokenPipeline(
        name: "environment named like a subcommand",
        yaml: "app: hello\nenvironments:\n  history: {}\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 3, message: "environment name 'history' clashes with the command `deploy history`"),
    BrokenPipeline(
        name: "unknown target kind",
        yaml: "app: hello\nenvironments:\n  staging: { target: { dockr: {} } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 24, message: "unknown key 'dockr' in target", hint: "did you mean 'docker'?"),
    BrokenPipeline(
        name: "unknown strategy",
        yaml: "app: hello\nenvironments:\n  staging: { strategy: blue-green }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 24, message: "unknown strategy 'blue-green'", hint: "did you mean 'blue_green'?"),
    BrokenPipeline(
        name: "canary that never reaches 100%",
        yaml:
            "app: hello\nenvironments:\n  staging:\n    strategy: { canary: { steps: [5, 50] } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 4, column: 34, message: "canary steps end at 50%"),
    BrokenPipeline(
        name: "canary steps going down",
        yaml:
            "app: hello\nenvironments:\n  staging:\n    strategy: { canary: { steps: [50, 25, 100] } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 4, column: 39, message: "canary steps must increase: 25 comes after 50"),
    BrokenPipeline(
        name: "promote from an unknown environment",
        yaml: "app: hello\nenvironments:\n  production: { promote_from: stage }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 31, message: "promote_from of 'production' names environment 'stage', which is not declared"),
    BrokenPipeline(
        name: "secret with a bad name", yaml: "app: hello\nsecrets: [api token]\nstages:\n  - { name: a, run: [true] }\n",
        line: 2, column: 11, message: "secret name 'api token' is not an environment variable name"),
    BrokenPipeline(
        name: "misspelt hook", yaml: "app: hello\nhooks:\n  post_deploy: Hooks/notify\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 3, message: "unknown hook 'post_deploy'", hint: "did you mean 'post-deploy'?"),
    BrokenPipeline(
        name: "gate with no check", yaml: "app: hello\ngates:\n  smoke: { every: 2s }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 3, message: "gate 'smoke' checks nothing"),
    BrokenPipeline(
        name: "two stages deploy one environment",
        yaml: "app: hello\nenvironments:\n  staging: {}\nstages:\n  - { name: a, deploy: staging }\n  - { name: b, deploy: staging }\n",
        line: 6, column: 24, message: "stages 'a' and 'b' both deploy to 'staging'"),
    BrokenPipeline(
        name: "variable hiding a built-in", yaml: "app: hello\nvariables:\n  VERSION: \"1\"\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 3, message: "variable 'VERSION' would hide the built-in ${VERSION}"),
    BrokenPipeline(
        name: "duplicate step names",
        yaml: "app: hello\nstages:\n  - name: t\n    steps:\n      - { name: u, run: [true] }\n      - { name: u, run: [true] }\n",
        line: 6, column: 17, message: "step name 'u' is used twice in stage 't'"),
    BrokenPipeline(
        name: "bad output limit", yaml: "app: hello\noutput_limit: lots\nstages:\n  - { name: a, run: [true] }\n",
        line: 2, column: 15, message: "output_limit must be a size from 1 byte to 1TiB, such as 512KiB"),
    BrokenPipeline(
        name: "output limit past the largest size",
        yaml: "app: hello\noutput_limit: 99999999999GiB\nstages:\n  - { name: a, run: [true] }\n",
        line: 2, column: 15, message: "output_limit must be a size from 1 byte to 1TiB"),
    BrokenPipeline(
        name: "a timeout in plain seconds past the longest duration",
        yaml: "app: hello\nstages:\n  - { name: a, run: [true], timeout: 9223372036854775807 }\n",
        line: 3, column: 38, message: "timeout is longer than deploy allows: at most 366d"),
    BrokenPipeline(
        name: "a duration too large for the arithmetic",
        yaml: "app: hello\nstages:\n  - { name: a, run: [true], timeout: 99999999999999999999d }\n",
        line: 3, column: 38, message: "timeout is longer than deploy allows: at most 366d"),
    BrokenPipeline(
        name: "gate times past the limit",
        yaml: "app: hello\ngates:\n  g: { command: [true], times: 100001 }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 32, message: "times must be from 1 to 100000, not 100001"),
    BrokenPipeline(
        name: "an HTTP status that is not one",
        yaml: "app: hello\ngates:\n  g: { http: { url: \"http://127.0.0.1:9/\", status: 99999 } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 52, message: "status must be from 100 to 599, not 99999"),
    BrokenPipeline(
        name: "a negative failure limit",
        yaml: "app: hello\ngates:\n  g: { command: [true], failure_limit: -1 }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 40, message: "failure_limit must be from 0 to 100000, not -1"),
    BrokenPipeline(
        name: "more approvers than allowed names",
        yaml: """
            app: hello
            environments:
              production: { approval: { approvers: 3, allowed: [ann] } }
            stages:
              - { name: a, run: [true] }
            """,
        line: 3, column: 40, message: "approvers: 3 can never be met: only 1 name is allowed"),
    BrokenPipeline(
        name: "step option on a deploy stage",
        yaml: "app: hello\nenvironments:\n  staging: {}\nstages:\n  - { name: s, deploy: staging, retries: 2 }\n",
        line: 5, column: 33, message: "'retries' applies to a run or sh stage, not to a deploy stage"),
    BrokenPipeline(
        name: "webhook URL not from a secret",
        yaml: "app: hello\nnotify:\n  - { url_from: SLACK_URL }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 17, message: "the webhook URL must come from a secret, and 'SLACK_URL' is not listed under `secrets:`"),
    BrokenPipeline(
        name: "unknown time zone in a freeze",
        yaml:
            "app: hello\nenvironments:\n  production:\n    freeze: [{ weekly: { from: \"fri 16:00\", to: \"mon 08:00\" }, zone: Mars/Olympus }]\nstages:\n  - { name: a, run: [true] }\n",
        line: 4, column: 70, message: "unknown time zone 'Mars/Olympus'"),
    BrokenPipeline(
        name: "docker target without listen",
        yaml: "app: hello\nenvironments:\n  staging: { target: { docker: { port: 8080 } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 32, message: "the docker target has no 'listen'", hint: "where users reach it, e.g. `listen: 127.0.0.1:8081`"),
    BrokenPipeline(
        name: "docker listen not HOST:PORT",
        yaml: "app: hello\nenvironments:\n  staging: { target: { docker: { listen: \"8081\" } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 42, message: "listen '8081' is not HOST:PORT", hint: "e.g. `listen: 127.0.0.1:8081`"),
    BrokenPipeline(
        name: "docker proxy other than nginx",
        yaml:
            "app: hello\nenvironments:\n  staging: { target: { docker: { listen: \"127.0.0.1:8081\", proxy: haproxy } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 67, message: "proxy 'haproxy' is not supported",
        hint: "the docker target runs nginx in front: `proxy: nginx`"),
    BrokenPipeline(
        name: "docker port out of range",
        yaml:
            "app: hello\nenvironments:\n  staging: { target: { docker: { listen: \"127.0.0.1:8081\", port: 70000 } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 66, message: "port 70000 is not a TCP port (1 to 65535)"),
    BrokenPipeline(
        name: "kubernetes target without manifests",
        yaml:
            "app: hello\nenvironments:\n  staging: { target: { kubernetes: { namespace: hello } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 36, message: "the kubernetes target has no 'manifests'",
        hint: "a kustomize directory, a directory of YAML files or one file, e.g. `manifests: Manifests/hello/overlays/production`"),
    BrokenPipeline(
        name: "kubernetes router misspelt",
        yaml:
            "app: hello\nenvironments:\n  staging: { target: { kubernetes: { manifests: k8s, router: ingres-nginx } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 62, message: "unknown router 'ingres-nginx'", hint: "did you mean 'ingress-nginx'?"),
    BrokenPipeline(
        name: "kubernetes url not http",
        yaml:
            "app: hello\nenvironments:\n  staging: { target: { kubernetes: { manifests: k8s, url: hello.example.com } } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 59, message: "url 'hello.example.com' is not an http(s) address", hint: "e.g. `url: https://hello.example.com`"),
    BrokenPipeline(
        name: "readiness gate with settings",
        yaml: "app: hello\ngates:\n  r: { readiness: { pods: 3 } }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 21, message: "unknown key 'pods' in readiness"),
    BrokenPipeline(
        name: "rehearse_rollback not a boolean",
        yaml: "app: hello\nenvironments:\n  staging: { rehearse_rollback: often }\nstages:\n  - { name: a, run: [true] }\n",
        line: 3, column: 33, message: "rehearse_rollback must be true or false"),
    BrokenPipeline(
        name: "misspelt build key",
        yaml: "app: hello\nimage: x\nstages:\n  - { name: b, build: { context: ., argz: { A: b } } }\n",
        line: 4, column: 37, message: "unknown key 'argz' in build", hint: "did you mean 'args'?"),
    BrokenPipeline(
        name: "a gate template that does not exist",
        yaml: """
            app: hello
            prometheus: { url: "http://127.0.0.1:9090" }
            gates:
              errors: { template: error-ratio }
            stages:
              - { name: a, run: ["true"] }
            """,
        line: 4, column: 23, message: "gate 'errors': there is no gate template 'error-ratio'",
        hint: "use one of: error-rate, latency-p99, error-spike, restarts (docs/analysis.md)"),
    BrokenPipeline(
        name: "a template with no Prometheus to ask",
        yaml: """
            app: hello
            gates:
              errors: { template: error-rate }
            stages:
              - { name: a, run: ["true"] }
            """,
        line: 3, column: 23, message: "gate 'errors': no Prometheus to ask"),
    BrokenPipeline(
        name: "a template parameter that cannot go into a query",
        yaml: """
            app: hello
            prometheus: { url: "http://127.0.0.1:9090" }
            gates:
              errors: { template: error-rate, metric: "x} or vector(1)" }
            stages:
              - { name: a, run: ["true"] }
            """,
        line: 4, column: 43, message: "metric 'x} or vector(1)' cannot go into a query",
        hint: "a Prometheus name: letters, digits, '_' and ':'"),
    BrokenPipeline(
        name: "at_most without relative_to",
        yaml: """
            app: hello
            gates:
              errors: { prometheus: { url: "http://p:9090", query: up }, at_most: 2 }
            stages:
              - { name: a, run: ["true"] }
            """,
        line: 3, column: 71, message: "gate 'errors': at_most and margin bound a comparison", hint: "add `relative_to: stable`"),
    BrokenPipeline(
        name: "relative_to on an HTTP gate",
        yaml: """
            app: hello
            gates:
              health: { http: { url: "${TARGET_URL}/health" }, relative_to: stable }
            stages:
              - { name: a, run: ["true"] }
            """,
        line: 3, column: 65, message: "gate 'health': only a Prometheus gate can compare with the stable release"),
]

@Suite("Pipeline validation")
struct PipelineValidationTests {
    @Test("the valid example loads")
    func validPipelineLoads() throws {
        let (pipeline, warnings) = try PipelineLoader.parse(yaml: valid, file: "ok.yml")
        #expect(pipeline.app == "hello")
        #expect(pipeline.stages.map(\.name) == ["test", "staging", "production"])
        #expect(warnings.isEmpty)
    }

    @Test("a broken pipeline is reported with its location, what is wrong and how to fix it", arguments: brokenPipelines)
    func brokenPipelineIsReported(_ broken: BrokenPipeline) {
        let error = #expect(throws: PipelineError.self) {
            _ = try PipelineLoader.parse(yaml: broken.yaml, file: "broken.yml")
        }
        let match = error?.errors.first { $0.message.contains(broken.message) }
        #expect(match != nil, "expected '\(broken.message)' among: \(error?.errors.map(\.description) ?? [])")
        #expect(match?.location == SourceLocation(file: "broken.yml", line: broken.line, column: broken.column))
        if let hint = broken.hint {
            #expect(match?.hint == hint)
        }
    }

    @Test("gate templates expand to Prometheus gates with their defaults, which the gate's own settings override")
    func gateTemplates() throws {
        let (pipeline, _) = try PipelineLoader.parse(
            yaml: """
                app: hello
                prometheus: { url: "http://127.0.0.1:9090" }
                gates:
                  errors: { template: error-rate, metric: hello_requests_total, window: 30s, inconclusive_limit: 2 }
                  latency: { template: latency-p99, histogram: hello_request_duration_seconds, below: 0.25, url: "http://other:9090" }
                  spike: { template: error-spike, at_most: 3 }
                  restarts: { template: restarts, staleness: 30s, timeout: 5s }
                stages:
                  - { name: a, run: ["true"] }
                """, file: "t.yml")
        let gates = Dictionary(uniqueKeysWithValues: pipeline.gates.map { ($0.name, $0) })
        #expect(
            gates["errors"]?.check
                == .prometheus(
                    url: "http://127.0.0.1:9090",
                    query: #"(sum(rate(hello_requests_total{slipway_instance="${INSTANCE}",status=~"5.."}[30s])) or vector(0))"#
                        + #" / sum(rate(hello_requests_total{slipway_instance="${INSTANCE}"}[30s]))"#))
        #expect(gates["errors"]?.below == 0.01)
        #expect(gates["errors"]?.inconclusiveLimit == 2)
        #expect(gates["errors"]?.template == "error-rate")
        #expect(
            gates["latency"]?.check
                == .prometheus(
                    url: "http://other:9090",
                    query:
                        #"histogram_quantile(0.99, sum by (le) (rate(hello_request_duration_seconds_bucket{slipway_instance="${INSTANCE}"}[1m])))"#
                ))
        #expect(gates["latency"]?.below == 0.25)
        #expect(gates["spike"]?.comparison == GateSpec.Comparison(atMost: 3, margin: 0.01))
        #expect(gates["spike"]?.below == nil)
        #expect(gates["restarts"]?.below == 1)
        #expect(gates["restarts"]?.staleness == .seconds(30))
        #expect(gates["restarts"]?.measurementLimit == .seconds(5))
    }

    @Test("every problem in a file is reported at once, in file order")
    func everyProblemAtOnce() {
        let yaml = """
            app: hello
            stagse: []
            environments:
              history: {}
            stages:
              - { name: a, run: [echo, "${NOPE}"], timeout: soon }
              - { name: a, run: [true] }

            """
        let error = #expect(throws: PipelineError.self) { _ = try PipelineLoader.parse(yaml: yaml, file: "many.yml") }
        let lines = error?.errors.map(\.location.line) ?? []
        #expect(lines == [2, 4, 6, 6, 7])
        #expect(error?.description.hasSuffix("many.yml: 5 errors") == true)
    }

    @Test("a secret passed on a command line is a warning, not an error")
    func secretInArgvWarns() throws {
        let yaml = "app: hello\nsecrets: [TOKEN]\nstages:\n  - { name: a, run: [curl, -H, \"${TOKEN}\"] }\n"
        let (_, warnings) = try PipelineLoader.parse(yaml: yaml, file: "w.yml")
        #expect(warnings.map(\.severity) == [.warning])
        #expect(warnings.first?.message.contains("secret ${TOKEN} is passed on a command line") == true)
    }

    @Test("the repository's example pipelines are valid")
    func examplePipelinesAreValid() throws {
        let (pipeline, _) = try PipelineLoader.load(path: "\(packageRootForTests)/Pipelines/hello.yml")
        #expect(pipeline.app == "hello")
    }

    @Test("durations and sizes parse as people write them")
    func units() {
        #expect(DurationParser.parse("1h30m") == .seconds(5400))
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("90") == .seconds(90))
        #expect(DurationParser.parse("5 minutes") == nil)
        #expect(DurationParser.format(.seconds(5400)) == "1h30m")
        #expect(SizeParser.parse("1MiB") == 1 << 20)
        #expect(SizeParser.parse("64KB") == 64_000)
        #expect(SizeParser.parse("lots") == nil)
    }
}
