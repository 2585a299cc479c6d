import Foundation
import Slipway
import SlipwayTestSupport
import Testing

/// The loader's success path: a pipeline using every key that docs/pipelines.md documents,
/// each asserted on the model.
@Suite("Pipeline model")
struct PipelineModelTests {
    static let everyKey = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Pipelines/every-key.yml").path

    func load() throws -> Pipeline {
        let (pipeline, warnings) = try PipelineLoader.load(path: Self.everyKey)
        #expect(warnings.isEmpty, "\(warnings)")
        return pipeline
    }

    @Test("top-level keys: app, image, docker, secrets, variables, output_limit, risk, notify")
    func topLevel() throws {
        let pipeline = try load()
        #expect(pipeline.app == "hello")
        #expect(pipeline.image == "127.0.0.1:5000/hello")
        #expect(pipeline.docker == "podman")
        #expect(pipeline.secrets == ["TOKEN", "HOOK_URL"])
        #expect(pipeline.variables.map(\.name) == ["REGION", "LEVEL"])
        #expect(pipeline.variables.map(\.value) == ["eu", "3"])
        #expect(pipeline.outputLimit == 2_097_152)
        let risk = Dictionary(uniqueKeysWithValues: pipeline.riskRules.categories.map { ($0.name, $0.patterns) })
        #expect(risk["migrations"] == ["db/**"])
        #expect(risk["secrets"] == ["*.pem"])
        #expect(pipeline.webhooks.count == 1)
        #expect(pipeline.webhooks.first?.urlFrom == "HOOK_URL")
        #expect(pipeline.webhooks.first?.format == .slack)
        #expect(pipeline.webhooks.first?.events == [.failed, .rolledBack])
    }

    @Test("environments: targets, strategies, gates, promotion, approvals, freezes, rehearsal, variables")
    func environments() throws {
        let pipeline = try load()
        #expect(pipeline.environments.map(\.name) == ["staging", "production"])
        let staging = try #require(pipeline.environment(named: "staging"))
        #expect(
            staging.target
                == .docker(
                    DockerTargetSpec(
                        listen: "127.0.0.1:8081", port: 8080, readyTimeout: .seconds(20), host: "unix:///run/podman/podman.sock")))
        #expect(staging.strategy == .blueGreen(previewGates: ["smoke"], bake: .seconds(10)))
        #expect(staging.gates == ["smoke"])
        #expect(staging.rehearseRollback)
        #expect(staging.variables.map(\.name) == ["TIER"])
        #expect(staging.promoteFrom == nil)
        #expect(!staging.requireCleanTree)

        let production = try #require(pipeline.environment(named: "production"))
        #expect(production.target == .docker(DockerTargetSpec(listen: "127.0.0.1:8082")))
        #expect(production.promoteFrom == "staging")
        #expect(production.requireCleanTree)
        #expect(
            production.strategy == .canary(steps: [5, 25, 50, 100], pause: .seconds(5), analysis: ["errors"], holdLimit: .seconds(3600)))
        let approval = ApprovalSpec(approvers: 2, allowed: ["ann", "bob", "cy"], distinctFromTrigger: true, timeout: .seconds(14_400))
        #expect(production.approval == approval)
        #expect(production.freezes.map(\.reason) == ["holidays", "weekend"])
        #expect(production.freezes.map(\.zone.identifier) == ["GMT", "Europe/Berlin"])
        if case .weekly(let fromDay, let fromMinute, let toDay, let toMinute) = production.freezes.last?.period {
            let weekly: [Int] = [fromDay, fromMinute, toDay, toMinute]
            #expect(weekly == [5, 960, 1, 480])  // days from Sunday = 0
        } else {
            Issue.record("the second freeze is not weekly: \(String(describing: production.freezes.last?.period))")
        }
        let christmas = try #require(
            Calendar(identifier: .gregorian).date(
                from: DateComponents(timeZone: TimeZone(identifier: "UTC"), year: 2026, month: 12, day: 25, hour: 12)))
        #expect(production.freezes.first?.contains(christmas) == true)
    }

    @Test("gates: http, prometheus and command checks with their cadence and bounds")
    func gates() throws {
        let gates = Dictionary(uniqueKeysWithValues: try load().gates.map { ($0.name, $0) })
        let smoke = try #require(gates["smoke"])
        #expect(smoke.check == .http(url: "${TARGET_URL}/health", status: 200, body: "ok", within: .seconds(2)))
        #expect(smoke.every == .seconds(1))
        #expect(smoke.times == 3)
        #expect(smoke.failureLimit == 1)
        #expect(smoke.initialDelay == .seconds(1))
        let errors = try #require(gates["errors"])
        #expect(errors.check == .prometheus(url: "http://127.0.0.1:9090", query: "sum(rate(x[1m]))"))
        #expect(errors.below == 0.01)
        #expect(errors.above == nil)
        #expect(errors.times == 10)
        #expect(gates["cmd"]?.check == .command(["test", "-n", "${TARGET_URL}"]))
    }

    @Test("hooks: each event, an argv or a mapping with its timeout")
    func hooks() throws {
        let pipeline = try load()
        #expect(Set(pipeline.hooks.map(\.event)) == Set(HookEvent.allCases))
        #expect(pipeline.hook(.preBuild)?.command == ["Hooks/pre-build"])
        #expect(pipeline.hook(.preBuild)?.timeout == .seconds(60))
        #expect(pipeline.hook(.postDeploy)?.timeout == .seconds(300))
    }

    @Test("stages: steps with every option, build, push, deploy and approval")
    func stages() throws {
        let stages = try load().stages
        #expect(stages.map(\.name) == ["lint", "test", "build", "push", "staging", "sign-off", "production"])
        #expect(stages.map(\.kindName) == ["run", "steps", "build", "push", "deploy", "approval", "deploy"])
        guard case .steps(let lintSteps) = stages[0].kind, let lint = lintSteps.first else {
            Issue.record("lint is not a steps stage")
            return
        }
        #expect(lint.action == .run(["shellcheck", "${REGION}"]))
        #expect(lint.timeout == .seconds(60))
        #expect(lint.retries == 2)
        #expect(lint.backoff == .seconds(2))
        #expect(lint.continueOnError)
        #expect(lint.environment.map(\.name) == ["A"])
        #expect(lint.environment.map(\.value) == ["${VERSION}"])
        #expect(lint.workingDirectory == ".")
        if case .steps(let steps) = stages[1].kind {
            #expect(steps.map(\.name) == ["unit", "e2e"])
            #expect(steps[0].action == .sh("echo $DEPLOY_VERSION"))
            #expect(steps[0].timeout == .seconds(30))
        } else {
            Issue.record("test is not a steps stage")
        }
        if case .build(let context, let file, let arguments, let noCache) = stages[2].kind {
            #expect(context == "Examples/hello")
            #expect(file == "Containerfile")
            #expect(arguments.map(\.name) == ["VERSION"])
            #expect(arguments.map(\.value) == ["${VERSION}"])
            #expect(noCache)
        } else {
            Issue.record("build is not a build stage")
        }
        if case .deploy(let environment) = stages[4].kind { #expect(environment == "staging") } else { Issue.record("not a deploy") }
        if case .approval(let environment) = stages[5].kind {
            #expect(environment == "production")
        } else {
            Issue.record("not an approval")
        }
        // Locations are kept: each stage knows where it was written.
        #expect(stages.map(\.location.line) == [39, 40, 44, 45, 46, 47, 48])
    }

    @Test("YAML merge keys share step options; a stage's own key wins; x- keys are the file's own")
    func mergeKeys() throws {
        let pipeline = try PipelineLoader.parse(
            yaml: """
                app: hello
                x-defaults: &defaults { timeout: 5m, retries: 2 }
                stages:
                  - { <<: *defaults, name: unit, run: [swift, test] }
                  - { <<: *defaults, name: lint, run: [swiftlint], retries: 0 }
                """, file: "p.yml"
        ).pipeline
        let steps = pipeline.stages.compactMap { stage -> Step? in
            if case .steps(let steps) = stage.kind { steps.first } else { nil }
        }
        #expect(steps.map(\.timeout) == [.seconds(300), .seconds(300)])
        #expect(steps.map(\.retries) == [2, 0])
    }

    @Test("a file that is a directory, has a NUL byte or is not UTF-8 is refused with where and what")
    func unreadableFiles() throws {
        let directory = try TemporaryDirectory("pipeline-files")
        defer { directory.remove() }
        func refusal(_ path: String) -> Diagnostic? {
            do {
                _ = try PipelineLoader.load(path: path)
                return nil
            } catch {
                return error.diagnostics.first
            }
        }
        try FileManager.default.createDirectory(atPath: directory.file("dir.yml"), withIntermediateDirectories: true)
        #expect(refusal(directory.file("dir.yml"))?.message == "this is a directory, not a pipeline file")
        _ = FileManager.default.createFile(atPath: directory.file("nul.yml"), contents: Data("app: a\nstages: []\n\0\n".utf8))
        let nul = refusal(directory.file("nul.yml"))
        #expect(nul?.message.hasPrefix("the file has a NUL byte") == true)
        #expect(nul.map { [$0.location.line, $0.location.column] } == [3, 1])
        let latin1Bytes: [UInt8] = [0x61, 0x70, 0x70, 0x3A, 0x20, 0xE9, 0x0A]  // "app: é" in Latin-1
        _ = FileManager.default.createFile(atPath: directory.file("latin1.yml"), contents: Data(latin1Bytes))
        let latin1 = refusal(directory.file("latin1.yml"))
        #expect(latin1?.message.hasPrefix("the file is not UTF-8 text: byte 0xE9") == true)
        #expect(latin1.map { [$0.location.line, $0.location.column] } == [1, 6])
    }
}
