import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Testing

/// The checklist stage in runs of the engine (real processes, a real SQLite store), the rules of
/// `deploy sign`, and the checklist section of a pipeline file.
@Suite("checklist stage", .timeLimit(.minutes(1)))
struct ChecklistStageTests {
    static func pipeline(_ items: String, timeout: String = "10m") -> String {
        """
        app: hello
        roles:
          security-lead: [carol]
          anyone: ["*"]
        environments:
          production: {}
        stages:
          - name: readiness
            checklist:
              environment: production
              timeout: \(timeout)
              sections:
                - name: Release
                  items:
        \(items)
          - { name: production, deploy: production }
        """
    }

    @Test("a required check that fails stops the run before the deploy; every item is recorded with its state")
    func failingCheckStops() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            Self.pipeline(
                """
                            - { item: "Tests pass", check: { run: ["true"] } }
                            - { item: "Coverage above 80%", check: { sh: "echo 'coverage 71%' >&2; exit 3" } }
                            - { item: "Docs linted", check: { sh: "exit 1" }, advisory: true }
                            - { item: "Security review", sign_off: security-lead }
                """), environment: "production")
        #expect(result.exitStatus == .failed)
        #expect(
            result.reason
                == "1 required checklist item failed: release.coverage-above-80 (the sh script ended with exit 3: coverage 71%) (`deploy checklist production` lists them)"
        )
        let items = try await fixture.store.checklist(runID: result.runID)
        #expect(
            items.map(\.itemID) == ["release.tests-pass", "release.coverage-above-80", "release.docs-linted", "release.security-review"])
        #expect(items.map(\.state) == [.passed, .failed, .failed, .pending])
        #expect(items[0].detail == "true passed")
        #expect(items[3].detail == "waiting for security-lead (carol)")
        let detail = try await fixture.detail(result)
        #expect(detail.stages.map(\.outcome) == [.failed, .skipped])
        // Each check is a step of the stage, with its verdict in the output.
        #expect(detail.steps.map(\.name) == ["release.tests-pass", "release.coverage-above-80", "release.docs-linted"])
        #expect(detail.steps.map(\.outcome) == [.succeeded, .failed, .succeeded])
        #expect(detail.steps[2].output.contains("advisory, failed: the sh script ended with exit 1"))
    }

    @Test("sign-offs not given before the timeout fail the run, naming them; a run that ended takes no one-run sign-off")
    func signOffsTimeOut() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            Self.pipeline(
                """
                            - { item: "Tests pass", check: { run: ["true"] } }
                            - { item: "Code reviewed", sign_off: anyone }
                            - { item: "Smoke tested by hand", sign_off: anyone, advisory: true }
                """), environment: "production")
        #expect(result.exitStatus == .failed)
        #expect(result.reason == "1 sign-off not given within 10m: release.code-reviewed")
        await #expect(try fixture.detail(result).stages.map(\.outcome) == [.timedOut, .skipped])
        let refusal = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(
                in: fixture.store, runID: result.runID, item: "release.code-reviewed", signer: "bob", comment: nil, now: Date())
        }
        #expect(
            refusal?.message
                == "run \(result.runID) is not waiting for sign-offs (it is failed): 'release.code-reviewed' is signed for one run only")
    }

    @Test("a sign-off with valid_for stands for later runs until it expires; who may sign is the pipeline's to say")
    func standingSignOffs() async throws {
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let yaml = Self.pipeline(
            """
                        - item: "Quarterly DR drill"
                          sign_off: { role: security-lead, valid_for: 90d, distinct_from_trigger: true }
            """)
        let first = try await fixture.run(yaml, environment: "production")
        #expect(first.exitStatus == .failed)
        // Numbers work as well as ids; the pipeline decides who may sign.
        let outsider = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(in: fixture.store, runID: first.runID, item: "1", signer: "mallory", comment: nil, now: Date())
        }
        #expect(outsider?.message == "mallory may not sign off 'release.quarterly-dr-drill'")
        #expect(outsider?.hint == "the pipeline lets security-lead: carol sign it")
        let unknown = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(
                in: fixture.store, runID: first.runID, item: "release.nope", signer: "carol", comment: nil, now: Date())
        }
        #expect(unknown?.message == "run \(first.runID) has no checklist item 'release.nope'")
        // Standing items may be signed after the run: they are for the runs that follow.
        let signed = try await Checklists.sign(
            in: fixture.store, runID: first.runID, item: "release.quarterly-dr-drill", signer: "carol", comment: "drill on 1 Dec",
            now: fixture.now)
        #expect(signed.state == .signed)
        #expect(signed.expiresAt == fixture.now.addingTimeInterval(90 * 86_400))
        let twice = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(in: fixture.store, runID: first.runID, item: "1", signer: "carol", comment: nil, now: Date())
        }
        #expect(twice?.message.hasPrefix("'release.quarterly-dr-drill' is already signed off on run \(first.runID)") == true)
        let audit = try await fixture.store.auditLog(environment: "production")
        #expect(audit.contains { $0.action == "sign-off" && $0.actor == "carol" && $0.detail.contains("drill on 1 Dec") })

        let second = try await fixture.run(yaml, environment: "production")
        #expect(second.exitStatus == .success)
        let carried = try await fixture.store.checklist(runID: second.runID)
        #expect(carried.map(\.state) == [.signed])
        #expect(carried.first?.signedBy == "carol")
        #expect(carried.first?.detail.hasPrefix("signed by carol on ") == true)
        #expect(carried.first?.detail.contains("(run \(first.runID)), valid until ") == true)

        // Ninety-one days on, it has expired: the run waits for it again.
        fixture.now = fixture.now.addingTimeInterval(91 * 86_400)
        let third = try await fixture.run(yaml, environment: "production")
        #expect(third.exitStatus == .failed)
        let expired = try await fixture.store.checklist(runID: third.runID)
        #expect(expired.map(\.state) == [.expired])
        #expect(expired.first?.detail.hasSuffix(", expired: sign it again") == true)
    }

    @Test("the person who started a run cannot sign an item that needs someone else")
    func distinctFromTrigger() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let first = try await fixture.run(
            Self.pipeline(
                """
                            - item: "Second pair of eyes"
                              sign_off: { by: [tester, carol], valid_for: 1d, distinct_from_trigger: true }
                """), environment: "production")
        let refusal = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(in: fixture.store, runID: first.runID, item: "1", signer: "tester", comment: nil, now: Date())
        }
        #expect(refusal?.message == "tester started run \(first.runID), and 'release.second-pair-of-eyes' needs someone else's sign-off")
        let check = await #expect(throws: SignOffRefused.self) {
            try await Checklists.sign(in: fixture.store, runID: first.runID, item: "2", signer: "carol", comment: nil, now: Date())
        }
        #expect(check?.message == "run \(first.runID) has no checklist item '2'")
    }

    @Test("gate: a pipeline gate measured against the environment's target, holding and not")
    func gates() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            gates:
              reachable: { command: [sh, -c, "echo \\"reached $SERVICE_URL\\""] }
              queue: { command: [sh, -c, "echo 'queue depth 1200 > 1000'; exit 1"] }
            environments:
              production: { target: { docker: { listen: "127.0.0.1:1" } } }
            stages:
              - name: readiness
                checklist:
                  environment: production
                  sections:
                    - name: Monitoring
                      items:
                        - { item: "Service reachable", check: { gate: reachable } }
                        - { item: "Queue depth < 1000", check: { gate: queue } }
            """, environment: "production", target: InProcessTarget())
        #expect(result.exitStatus == .failed)
        let items = try await fixture.store.checklist(runID: result.runID)
        #expect(items.map(\.state) == [.passed, .failed])
        #expect(items[0].detail.hasPrefix("gate reachable held at inproc://service: "))
        #expect(items[1].detail.hasPrefix("gate queue failed: "))
        #expect(items[1].detail.contains("queue depth 1200 > 1000"))
    }

    @Test("coverage counts automated items, per-deploy sign-offs, standing ones and follow-ups")
    func coverage() throws {
        let pipeline = try PipelineLoader.parse(
            yaml: Self.pipeline(
                """
                            - { item: "a", check: probes }
                            - { item: "b", check: { run: [make, test] } }
                            - { item: "c", sign_off: anyone }
                            - { item: "d", sign_off: { role: security-lead, valid_for: 90d } }
                            - { item: "e", sign_off: anyone, advisory: true }
                """
            ).replacingOccurrences(of: "environment: production", with: "environment: production\n      manifests: k8s"),
            file: "p.yml"
        ).pipeline
        guard case .checklist(let spec) = pipeline.stages[0].kind else {
            Issue.record("not a checklist")
            return
        }
        let coverage = Checklists.coverage(spec)
        #expect(coverage.items == 5)
        #expect(coverage.automated == 2)
        #expect(coverage.signOff == 3)
        #expect(coverage.standing == 1)
        #expect(coverage.followUp == 1)
        #expect(coverage.deployItems == 3)
        #expect(coverage.deployAutomatedPercent == 67)
        #expect(coverage.checks == ["probes": 1, "run": 1])
    }
}

/// Checklists written wrong, and what `deploy validate` says, where.
@Suite("checklist validation")
struct ChecklistValidationTests {
    static func diagnostics(_ items: String, extra: String = "") -> [String] {
        let yaml = """
            app: hello
            roles: { security-lead: [carol] }
            gates: { health: { http: { url: "${TARGET_URL}/health" } } }
            environments: { production: {} }
            stages:
              - name: readiness
                checklist:
                  environment: production\(extra)
                  sections:
                    - name: Release
                      items:
            \(items)
            """
        do {
            _ = try PipelineLoader.parse(yaml: yaml, file: "p.yml")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    @Test(
        "each mistake is named with its place and a fix",
        arguments: [
            (
                "            - { item: a, check: probs }",
                "p.yml:12:33: error: unknown check 'probs'\n    hint: did you mean 'probes'?"
            ),
            (
                "            - { item: a, sign_off: secuirty-lead }",
                "p.yml:12:36: error: sign_off names role 'secuirty-lead', which is not declared\n    hint: did you mean 'security-lead'?"
            ),
            (
                "            - { item: a, check: probes, sign_off: security-lead }",
                "p.yml:12:51: error: item 'a' has both check and sign_off\n    hint: a machine checks it or a person signs it: keep one"
            ),
            (
                "            - { item: a }",
                "p.yml:12:15: error: item 'a' says neither how it is checked nor who signs it off\n    hint: add `check:` (e.g. `check: probes`) or `sign_off:` (e.g. `sign_off: tech-lead`)"
            ),
            (
                "            - { item: a, check: probes }",
                "p.yml:12:15: error: item 'a' (probes) reads Kubernetes manifests, but the checklist has none\n    hint: give the checklist `manifests: Manifests/app/overlays/production`, or check an environment with a kubernetes target"
            ),
            (
                "            - { item: a, check: { gate: helth } }",
                "p.yml:12:15: error: item 'a' checks gate 'helth', which is not declared\n    hint: did you mean 'health'?"
            ),
            (
                "            - { item: Same, check: semver }\n            - { item: same, check: semver }",
                "p.yml:13:15: error: checklist item id 'release.same' is used twice (first at line 12)\n    hint: give one of them its own `id:`"
            ),
            (
                "            - { item: a, check: { run: make test } }",
                "p.yml:12:40: error: run takes an argv array, not a string\n    hint: write `run: [make, test]`, or use `sh:`"
            ),
        ])
    func mistakes(items: String, expected: String) {
        let found = Self.diagnostics(items)
        #expect(found.contains(expected), "\(found)")
    }
}
