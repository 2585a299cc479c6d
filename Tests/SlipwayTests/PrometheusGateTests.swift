import Foundation
import Slipway
import SlipwayTestSupport
import Testing

/// Prometheus gates against a real Prometheus (the project's `scripts/services` starts one of the
/// test's own) scraping the real example app (Examples/hello/app, run with the host's busybox):
/// real counters, real PromQL, and every way a measurement can fail to be taken.
@Suite("Prometheus gates against a real Prometheus", .timeLimit(.minutes(4)))
struct PrometheusGateTests {
    /// A pipeline's gate, as the file declares it (the templates expand here).
    static func gate(_ yaml: String, prometheus: String) throws -> GateSpec {
        let file = """
            app: hello
            prometheus: { url: "\(prometheus)" }
            gates:
              g: \(yaml)
            stages:
              - { name: a, run: ["true"] }
            """
        return try #require(try PipelineLoader.parse(yaml: file, file: "p.yml").pipeline.gates.first)
    }

    static func query(_ gate: GateSpec, instance: String) -> String {
        guard case .prometheus(_, let query) = gate.check else { return "" }
        return query.replacingOccurrences(of: "${INSTANCE}", with: instance)
    }

    /// A Prometheus scraping two hello apps, `canary` and `stable`, each with requests counted.
    static func withApps(_ body: @Sendable (PrometheusServer, HelloProcess, HelloProcess) async throws -> Void) async throws {
        let state = try TemporaryDirectory("store")
        defer { state.remove() }
        try await PrometheusServer.with(stateFile: state.file("state.sqlite")) { prometheus in
            let canary = try await HelloProcess(version: "2.0.0")
            let stable: HelloProcess
            do { stable = try await HelloProcess(version: "1.0.0") } catch {
                await canary.stop()
                throw error
            }
            do {
                try prometheus.publish("apps", targets: [(canary.address, "canary"), (stable.address, "stable")])
                // Scraped once before the requests (the counters at 0), then once after: rate() sees them.
                for instance in ["canary", "stable"] { try await prometheus.waitFor("up{slipway_instance=\"\(instance)\"}") { $0 == 1 } }
                await canary.requests(5)
                await stable.requests(5)
                for instance in ["canary", "stable"] {
                    try await prometheus.waitFor("hello_requests_total{slipway_instance=\"\(instance)\",path=\"/\",status=\"200\"}") {
                        $0 >= 5
                    }
                }
                try await body(prometheus, canary, stable)
            } catch {
                await canary.stop()
                await stable.stop()
                throw error
            }
            await canary.stop()
            await stable.stop()
        }
    }

    @Test("templates expand to PromQL over the app's metrics; the error rate rises once the app answers 500")
    func templates() async throws {
        try await Self.withApps { prometheus, canary, _ in
            let errors = try Self.gate("{ template: error-rate, metric: hello_requests_total, window: 30s }", prometheus: prometheus.url)
            #expect(errors.below == 0.01)
            #expect(errors.template == "error-rate")
            let healthy = await PrometheusCheck(url: prometheus.url, query: Self.query(errors, instance: "canary")).measure()
            #expect(healthy.passed)
            #expect(healthy.value == 0)
            let latency = try Self.gate(
                "{ template: latency-p99, histogram: hello_request_duration_seconds, window: 30s }", prometheus: prometheus.url)
            #expect(latency.below == 0.5)
            let p99 = await PrometheusCheck(url: prometheus.url, query: Self.query(latency, instance: "canary")).measure()
            #expect(p99.passed)
            #expect((p99.value ?? 1) < 0.5)

            try canary.setErroring(true)
            await canary.requests(5)
            try await prometheus.waitFor("hello_requests_total{slipway_instance=\"canary\",status=\"500\"}") { $0 >= 5 }
            try await prometheus.waitFor(Self.query(errors, instance: "canary")) { $0 > 0.01 }
            let result = await GateRunner(clock: ImmediateClock()).run(
                errors,
                check: BoundedCheck(inner: PrometheusCheck(url: prometheus.url, query: Self.query(errors, instance: "canary")), below: 0.01)
            )
            #expect(!result.passed)
            #expect(result.reason?.contains("not below 0.01") == true)
        }
    }

    @Test("no data, NaN, a query error, several series and a stale scrape are each named, never passed")
    func inconclusiveKinds() async throws {
        try await Self.withApps { prometheus, _, _ in
            func measure(_ query: String, staleness: Duration? = nil, instance: String? = nil) async -> GateMeasurement {
                await PrometheusCheck(url: prometheus.url, query: query, staleness: staleness, instance: instance).measure()
            }
            let none = await measure("hello_requests_total{slipway_instance=\"nobody\"}")
            #expect(none.inconclusive == "no data")
            #expect(!none.passed)
            let nan = await measure("sum(rate(hello_requests_total{slipway_instance=\"canary\"}[30s])) * 0 / 0")
            #expect(nan.inconclusive == "NaN")
            let broken = await measure("sum(rate(hello_requests_total[30s]")
            #expect(broken.inconclusive == "query error")
            #expect(broken.detail.contains("bad_data"))
            let several = await measure("hello_requests_total{path=\"/\",status=\"200\"}")
            #expect(several.inconclusive == "several series")
            #expect(several.detail.contains("the query returned 2 series"))
            // An instance that is not scraped any more: its newest scrape is gone stale.
            let fresh = await measure("vector(1)", staleness: .seconds(30), instance: "stable")
            #expect(fresh.passed)
            try prometheus.publish("apps", targets: [])
            try await prometheus.waitFor("absent(up{slipway_instance=\"stable\"})")
            let stale = await measure("vector(1)", staleness: .seconds(30), instance: "stable")
            #expect(stale.inconclusive == "stale")
            #expect(stale.detail.contains("no scrape of stable on record"))
        }
    }

    @Test("an inconclusive measurement fails the gate unless inconclusive_limit allows it; then it fails at the limit")
    func inconclusivePolicy() async throws {
        try await Self.withApps { prometheus, _, _ in
            let query = "hello_requests_total{slipway_instance=\"nobody\"}"
            let strict = try Self.gate(
                "{ prometheus: { query: '\(query)' }, times: 5, every: 1s, failure_limit: 1 }", prometheus: prometheus.url)
            let check = PrometheusCheck(url: prometheus.url, query: query)
            // Without the policy each counts as a failure: the second one is past failure_limit 1.
            let failed = await GateRunner(clock: ImmediateClock()).run(strict, check: check)
            #expect(!failed.passed)
            #expect(failed.measurements.count == 2)
            #expect(failed.measurements.allSatisfy { $0.verdict == .inconclusive })
            #expect(failed.reason?.contains("counted as a failure") == true)

            let lenient = try Self.gate(
                "{ prometheus: { query: '\(query)' }, times: 5, every: 1s, inconclusive_limit: 2 }", prometheus: prometheus.url)
            let atLimit = await GateRunner(clock: ImmediateClock()).run(lenient, check: check)
            #expect(!atLimit.passed)
            #expect(atLimit.measurements.count == 3)
            #expect(atLimit.reason?.contains("3 inconclusive measurements, 2 allowed") == true)

            // Within the limit but never conclusive: still no pass.
            let never = try Self.gate(
                "{ prometheus: { query: '\(query)' }, times: 2, inconclusive_limit: 5 }", prometheus: prometheus.url)
            let silent = await GateRunner(clock: ImmediateClock()).run(never, check: check)
            #expect(!silent.passed)
            #expect(silent.reason?.contains("not one of its 2 measurements was conclusive") == true)
        }
    }

    @Test("relative_to: stable measures both releases in the same tick and bounds the canary by the stable one")
    func relativeToStable() async throws {
        try await Self.withApps { prometheus, canary, _ in
            let spike = try Self.gate("{ template: error-spike, metric: hello_requests_total, window: 30s }", prometheus: prometheus.url)
            #expect(spike.comparison == GateSpec.Comparison(atMost: 2, margin: 0.01))
            func check() -> RelativeCheck {
                RelativeCheck(
                    candidate: PrometheusCheck(url: prometheus.url, query: Self.query(spike, instance: "canary")),
                    stable: PrometheusCheck(url: prometheus.url, query: Self.query(spike, instance: "stable")),
                    comparison: spike.comparison!)
            }
            let same = await check().measure()
            #expect(same.passed)
            #expect(same.stableValue == 0)
            try canary.setErroring(true)
            await canary.requests(5)
            try await prometheus.waitFor(Self.query(spike, instance: "canary")) { $0 > 0.01 }
            let worse = await check().measure()
            #expect(!worse.passed)
            #expect(worse.stableValue == 0)
            #expect(worse.detail.contains("against stable 0, above 2× + 0.01"))
            let alone = await RelativeCheck(
                candidate: PrometheusCheck(url: prometheus.url, query: "vector(1)"), stable: nil, comparison: spike.comparison!
            ).measure()
            #expect(alone.inconclusive == "no stable release")
        }
    }

    @Test("a Prometheus that accepts the connection and never answers is cut at the gate's timeout; one that is gone is unreachable")
    func hangingAndGone() async throws {
        let silent = try SilentServer()
        defer { silent.stop() }
        let gate = try Self.gate("{ prometheus: { query: 'up' }, timeout: 1s }", prometheus: silent.url)
        #expect(gate.measurementLimit == .seconds(1))
        let result = await GateRunner(clock: ImmediateClock()).run(gate, check: PrometheusCheck(url: silent.url, query: "up"))
        #expect(!result.passed)
        #expect(result.measurements.first?.inconclusive == "timed out")
        #expect(result.measurements.first?.detail.contains("no answer within 1s") == true)

        let port = try ContainerServices.freePort()
        let gone = await PrometheusCheck(url: "http://127.0.0.1:\(port)", query: "up").measure()
        #expect(gone.inconclusive == "unreachable")
    }
}
