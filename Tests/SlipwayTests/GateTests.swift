import Foundation
import Slipway
import SlipwayTestSupport
import Testing

@Suite("HTTP gates", .timeLimit(.minutes(1)))
struct GateTests {
    /// A gate as a pipeline file declares it.
    func spec(times: Int = 3, failureLimit: Int = 0, every: String = "2s", initialDelay: String = "0s") throws -> GateSpec {
        let yaml = """
            app: hello
            gates:
              smoke:
                http: { url: "${TARGET_URL}/health", status: 200 }
                every: \(every)
                times: \(times)
                failure_limit: \(failureLimit)
                initial_delay: \(initialDelay)
            stages:
              - { name: a, run: ["true"] }
            """
        return try #require(try PipelineLoader.parse(yaml: yaml, file: "p.yml").pipeline.gates.first)
    }

    @Test("a healthy target passes after every measurement, spaced by the gate's interval")
    func passes() async throws {
        let server = try WebhookServer(statuses: [200], responseBody: "ok\n")
        defer { server.stop() }
        let clock = ImmediateClock()
        let result = await GateRunner(clock: clock).run(
            try spec(initialDelay: "5s"), check: HTTPCheck(url: URL(string: server.url)!, status: 200, body: "ok"))
        #expect(result.passed)
        #expect(result.measurements.count == 3)
        #expect(result.measurements.allSatisfy { $0.detail.hasPrefix("200 in ") })
        #expect(clock.sleeps == [.seconds(5), .seconds(2), .seconds(2)])
    }

    @Test("a failure past the failure limit fails the gate at once, saying what was seen")
    func failsClosed() async throws {
        let server = try WebhookServer(statuses: [200, 503, 503, 200])
        defer { server.stop() }
        let result = await GateRunner(clock: ImmediateClock()).run(
            try spec(times: 5, failureLimit: 1), check: HTTPCheck(url: URL(string: server.url)!, status: 200))
        #expect(!result.passed)
        #expect(result.measurements.map(\.passed) == [true, false, false])
        #expect(result.reason?.hasPrefix("gate smoke failed: 503 in ") == true)
        #expect(result.reason?.hasSuffix(", expected 200 (2 of 3 measurements failed, 1 allowed)") == true)
    }

    @Test("a body that does not match, and a target that does not answer, both fail")
    func bodyAndUnreachable() async throws {
        let server = try WebhookServer(statuses: [200], responseBody: "degraded\n")
        let port = server.port
        let body = await HTTPCheck(url: URL(string: server.url)!, body: "ok").measure()
        #expect(!body.passed)
        #expect(body.detail.hasSuffix("body does not contain \"ok\""))
        server.stop()
        let gone = await HTTPCheck(url: URL(string: "http://127.0.0.1:\(port)/health")!, within: .seconds(2)).measure()
        #expect(!gone.passed)
        #expect(gone.detail.hasPrefix("no answer from 127.0.0.1"))
    }

    @Test("the worst case adds the initial delay, the intervals and each measurement's limit")
    func worstCase() throws {
        #expect(GateRunner.worstCase(try spec(times: 3, every: "2s", initialDelay: "5s"), measurementLimit: .seconds(1)) == .seconds(12))
    }
}
