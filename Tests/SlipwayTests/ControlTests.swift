import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Testing

@Suite("Freezes, hooks and approvals")
struct ControlTests {
    static func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    @Test("a weekly window is read in its own time zone, across the date line")
    func weeklyAcrossZones() {
        // Friday 16:00 to Monday 08:00 in Auckland (UTC+13 in November)
        let window = FreezeWindow(
            period: .weekly(fromDay: 5, fromMinute: 16 * 60, toDay: 1, toMinute: 8 * 60),
            zone: TimeZone(identifier: "Pacific/Auckland")!, reason: "weekend")
        // Friday 2026-11-20 03:30 UTC is Friday 16:30 in Auckland: frozen; 02:30 UTC is 15:30 there: not yet
        #expect(window.contains(Self.date("2026-11-20T03:30:00Z")))
        #expect(!window.contains(Self.date("2026-11-20T02:30:00Z")))
        // Sunday 18:59 UTC is already Monday 07:59 there: still frozen; Sunday 19:00 UTC is Monday 08:00: open,
        // though in UTC it is still the weekend
        #expect(window.contains(Self.date("2026-11-22T18:59:00Z")))
        #expect(!window.contains(Self.date("2026-11-22T19:00:00Z")))
        // Thursday 23:00 UTC is Friday 12:00 there: open
        #expect(!window.contains(Self.date("2026-11-19T23:00:00Z")))
    }

    @Test("a dated window starts and ends at local times in its zone")
    func datedWindow() {
        let window = FreezeWindow(
            period: .dates(
                from: DateComponents(year: 2026, month: 12, day: 20, hour: 0, minute: 0),
                to: DateComponents(year: 2027, month: 1, day: 2, hour: 0, minute: 0)),
            zone: TimeZone(identifier: "America/New_York")!, reason: "holidays")
        #expect(!window.contains(Self.date("2026-12-20T04:59:00Z")))  // 23:59 on the 19th in New York
        #expect(window.contains(Self.date("2026-12-20T05:00:00Z")))
        #expect(!window.contains(Self.date("2027-01-02T05:00:00Z")))
    }

    @Test("a deploy in a freeze is refused (exit 4) unless overridden with a reason, which the audit log keeps")
    func freezeRefusesAndOverrides() async throws {
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        fixture.now = Self.date("2026-11-20T17:00:00Z")  // a Friday, 17:00 in London
        let pipeline = """
            app: hello
            environments:
              production:
                freeze:
                  - { weekly: { from: "fri 16:00", to: "mon 08:00" }, zone: Europe/London, reason: no deploys at the weekend }
            stages:
              - { name: production, deploy: production }
            """
        let refused = await #expect(throws: EnvironmentUnavailable.self) { _ = try await fixture.run(pipeline, environment: "production") }
        #expect(refused?.message == "production is frozen: no deploys at the weekend (weekly fri 16:00 – mon 08:00 Europe/London)")
        await #expect(try fixture.store.history(limit: 20).isEmpty)

        let result = try await fixture.run(pipeline, environment: "production", freezeOverride: "hotfix for INC-42")
        #expect(result.exitStatus == .success)
        let audit = try await fixture.store.auditLog()
        #expect(audit.map(\.action) == ["freeze.override", "run.started", "run.finished"])
        #expect(audit[0].detail.hasSuffix(": hotfix for INC-42"))
        await #expect(try fixture.store.verifyAudit().isIntact)
    }

    @Test("a failing pre-deploy hook stops the run before any stage; a failing post-deploy hook does not undo it")
    func hookSemantics() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let before = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: build, sh: "touch $DIR/built" }
            hooks:
              pre-deploy: [sh, -c, "echo not today; exit 3"]
            """)
        #expect(before.exitStatus == .failed)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("built")))
        await #expect(try fixture.detail(before).stages.map(\.outcome) == [.skipped])

        let after = try await fixture.run(
            """
            app: hello
            environments: { staging: {} }
            stages:
              - { name: build, sh: "touch $DIR/built" }
            hooks:
              post-deploy: { run: [sh, -c, "exit 9"], timeout: 30s }
            """)
        #expect(after.exitStatus == .success)
        #expect(FileManager.default.fileExists(atPath: fixture.directory.file("built")))
        await #expect(
            try fixture.detail(after).events.contains { $0.kind == "hook.failed" && $0.message.contains("post-deploy hook exit 9") })
    }

    @Test("a failing pre-build hook stops the run before the build")
    func preBuildHook() async throws {
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        fixture.environment["DOCKER"] = "echo"  // stands in for the Docker CLI: prints the build it was asked for
        let pipeline = """
            app: hello
            image: 127.0.0.1:5000/hello
            environments: { staging: {} }
            stages:
              - { name: build, build: { context: ., file: Containerfile } }
            hooks:
              pre-build: [sh, -c, "exit $FAIL_BUILD"]
            """
        fixture.environment["FAIL_BUILD"] = "1"
        let refused = try await fixture.run(pipeline)
        #expect(refused.exitStatus == .failed)
        #expect(refused.reason == "the pre-build hook failed; nothing was built")
        await #expect(try fixture.detail(refused).steps.isEmpty)

        fixture.environment["FAIL_BUILD"] = "0"
        let built = try await fixture.run(pipeline)
        #expect(built.exitStatus == .success)
        let command = try await #require(try fixture.detail(built).steps.first?.command)
        #expect(command.hasPrefix("echo build -f Containerfile -t 127.0.0.1:5000/hello:1.2.3 -t 127.0.0.1:5000/hello:0123456"))
        #expect(command.contains("--label org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567"))
    }

    @Test("an approval that nobody gives times out, fails the run, and can no longer be given")
    func approvalTimesOut() async throws {
        let fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await fixture.run(
            """
            app: hello
            environments:
              production: { approval: { timeout: 10m } }
            stages:
              - { name: sign-off, approval: production }
              - { name: production, deploy: production }
            """, environment: "production")
        #expect(result.exitStatus == .failed)
        #expect(result.reason == "the approval timed out after 10m: nobody approved")
        await #expect(try fixture.detail(result).stages.map(\.outcome) == [.timedOut, .skipped])
        await #expect(throws: ApprovalRefused.self) {
            try await Approvals.decide(in: fixture.store, runID: result.runID, approver: "bob", approve: true, comment: nil, now: Date())
        }
    }
}

@Suite("Webhooks", .timeLimit(.minutes(1)))
struct WebhookTests {
    /// Runs a one-step pipeline whose webhook (`notify` line) posts to `server`.
    func runNotifying(_ server: WebhookServer, notify: String, fixture: inout EngineFixture) async throws -> RunResult {
        fixture.environment["HOOK_URL"] = server.url
        return try await fixture.run(
            """
            app: hello
            secrets: [HOOK_URL]
            notify:
              - \(notify)
            environments: { staging: {} }
            stages:
              - { name: build, run: ["true"] }
            """)
    }

    @Test("a webhook that fails twice is retried with backoff and delivered; the URL never reaches the record")
    func retriesUntilDelivered() async throws {
        let server = try WebhookServer(statuses: [500, 503, 200])
        defer { server.stop() }
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await runNotifying(server, notify: "{ url_from: HOOK_URL, format: json, on: [succeeded] }", fixture: &fixture)
        #expect(result.exitStatus == .success)
        #expect(server.requestCount == 3)
        #expect(server.bodies.last?["event"] as? String == "succeeded")
        #expect(server.bodies.last?["run"] as? Int == Int(result.runID))
        // backoff between the attempts, from the injected clock
        #expect(fixture.clock.sleeps == [.milliseconds(750), .milliseconds(1500)])
        let events = try await fixture.detail(result).events
        #expect(events.contains { $0.kind == "notify.sent" && $0.message.contains("attempt 3") })
        #expect(!events.map(\.message).joined().contains(server.url))
    }

    @Test("a webhook that never answers does not fail the deploy, and the failure is recorded")
    func unreachableWebhookIsRecorded() async throws {
        let server = try WebhookServer(statuses: [500])
        defer { server.stop() }
        var fixture = try EngineFixture()
        defer { fixture.directory.remove() }
        let result = try await runNotifying(server, notify: "{ url_from: HOOK_URL, format: slack }", fixture: &fixture)
        #expect(result.exitStatus == .success)
        #expect(server.bodies.first?["text"] as? String == "tester started deploying hello 1.2.3 to staging (run 1)")
        let failures = try await fixture.detail(result).events.filter { $0.kind == "notify.failed" }
        #expect(failures.count == 2)  // started and succeeded, 3 attempts each
        #expect(failures.first?.message.contains("HTTP 500") == true)
    }
}
