public import Foundation
import SlipwayCore
public import SlipwayPipeline
public import SlipwayStore

/// One look at a gate: did it hold, and what was seen.
public struct GateMeasurement: Sendable, Hashable, Codable {
    public var at: Date
    public var passed: Bool
    /// What was seen, in a few words: `200 in 12ms`, `503 Service Unavailable`, `connection refused`.
    public var detail: String
    /// The number measured, for gates that compare one (latency in seconds, a query's value).
    public var value: Double?
    /// Set when nobody could take the measurement, naming why: `no data`, `NaN`, `query error`,
    /// `stale`, `several series`, `timed out`, `unreachable`. Such a measurement never passes.
    public var inconclusive: String?
    /// The stable release's value in the same tick (a gate `relative_to: stable`).
    public var stableValue: Double?
    /// The query or request after substitution.
    public var query: String?

    public init(at: Date, passed: Bool, detail: String, value: Double? = nil) {
        self.at = at
        self.passed = passed
        self.detail = detail
        self.value = value
    }

    static func inconclusive(_ kind: String, _ detail: String, query: String? = nil) -> GateMeasurement {
        var measurement = GateMeasurement(at: Date(), passed: false, detail: "inconclusive (\(kind)): \(detail)")
        measurement.inconclusive = kind
        measurement.query = query
        return measurement
    }

    public var verdict: MeasurementVerdict { passed ? .pass : inconclusive != nil ? .inconclusive : .fail }
}

/// A gate's verdict, with every measurement taken to reach it.
public struct GateResult: Sendable, Hashable, Codable {
    public var gate: String
    public var passed: Bool
    public var measurements: [GateMeasurement]
    /// Why it failed, in a sentence (nil when it passed).
    public var reason: String?
}

/// Something a gate can measure. The real ones talk to the outside world; every one fails closed:
/// an error, a timeout or an unreachable target is a failed (or inconclusive) measurement, never a pass.
public protocol GateChecking: Sendable {
    func measure() async -> GateMeasurement
    /// Whether a measurement cut at its time limit is inconclusive (a query nobody answered) rather
    /// than failed (a release too slow to answer its health check).
    var timeoutIsInconclusive: Bool { get }
}

extension GateChecking {
    public var timeoutIsInconclusive: Bool { false }
}

/// Runs a gate: waits `initial_delay`, then measures `times` times, `every` apart, each cut at the
/// gate's timeout; fails as soon as more than `failure_limit` measurements have failed or more than
/// `inconclusive_limit` were inconclusive (without that limit an inconclusive one is a failure),
/// and fails too when not one measurement passed.
public struct GateRunner: Sendable {
    public let clock: any Clock<Duration>

    public init(clock: any Clock<Duration> = ContinuousClock()) {
        self.clock = clock
    }

    public func run(
        _ spec: GateSpec, check: any GateChecking, limit measurementLimit: Duration? = nil,
        onMeasurement: @Sendable (GateMeasurement) async -> Void = { _ in }
    ) async -> GateResult {
        var measurements: [GateMeasurement] = []
        let times = spec.times ?? 1
        let limit = spec.failureLimit ?? 0
        let cut = measurementLimit ?? spec.measurementLimit
        do {
            if let delay = spec.initialDelay { try await clock.sleep(for: delay) }
            for index in 0..<times {
                var measurement = await Self.measure(check, within: cut)
                if measurement.inconclusive != nil, spec.inconclusiveLimit == nil {
                    measurement.detail += ", counted as a failure"
                }
                measurements.append(measurement)
                await onMeasurement(measurement)
                if Task.isCancelled { throw CancellationError() }
                let inconclusive = measurements.filter { $0.inconclusive != nil }.count
                if let allowed = spec.inconclusiveLimit, measurement.inconclusive != nil, inconclusive > allowed {
                    return GateResult(
                        gate: spec.name, passed: false, measurements: measurements,
                        reason:
                            "gate \(spec.name) failed: \(measurement.detail) (\(inconclusive) inconclusive measurements, \(allowed) allowed)"
                    )
                }
                let failures = measurements.filter { !$0.passed && ($0.inconclusive == nil || spec.inconclusiveLimit == nil) }.count
                if failures > limit {
                    return GateResult(
                        gate: spec.name, passed: false, measurements: measurements,
                        reason: "gate \(spec.name) failed: \(measurement.detail)"
                            + (times > 1 ? " (\(failures) of \(measurements.count) measurements failed, \(limit) allowed)" : ""))
                }
                if index < times - 1, let every = spec.every { try await clock.sleep(for: every) }
            }
        } catch {
            return GateResult(gate: spec.name, passed: false, measurements: measurements, reason: "gate \(spec.name) was cancelled")
        }
        if !measurements.contains(where: \.passed) {
            return GateResult(
                gate: spec.name, passed: false, measurements: measurements,
                reason: "gate \(spec.name) failed: not one of its \(measurements.count) measurements was conclusive (never a silent pass)")
        }
        return GateResult(gate: spec.name, passed: true, measurements: measurements, reason: nil)
    }

    /// One measurement, cut at `limit` on the real clock whatever the check does.
    static func measure(_ check: any GateChecking, within limit: Duration) async -> GateMeasurement {
        await withTaskGroup(of: GateMeasurement?.self) { group in
            group.addTask { await check.measure() }
            group.addTask {
                do { try await Task.sleep(for: limit) } catch { return nil }
                let detail = "no answer within \(DurationParser.format(limit))"
                return check.timeoutIsInconclusive
                    ? .inconclusive("timed out", detail) : GateMeasurement(at: Date(), passed: false, detail: detail)
            }
            var result: GateMeasurement?
            while result == nil, let next = await group.next() { result = next }
            group.cancelAll()
            return result ?? GateMeasurement(at: Date(), passed: false, detail: "cancelled")
        }
    }

    /// The longest the gate can take before it decides: the initial delay, every interval, and each
    /// measurement's own time limit.
    public static func worstCase(_ spec: GateSpec, measurementLimit: Duration) -> Duration {
        let times = spec.times ?? 1
        return [spec.initialDelay ?? .zero, (spec.every ?? .zero).saturatingTimes(times - 1), measurementLimit.saturatingTimes(times)]
            .saturatingSum()
    }
}

extension GateSpec {
    /// How long one measurement may take: the gate's `timeout:`, else its kind's own bound.
    public var measurementLimit: Duration {
        if let timeout { return timeout }
        switch check {
        case .http(_, _, _, let within): return (within ?? HTTPCheck.defaultLimit) + .seconds(1)
        case .prometheus: return PrometheusCheck.defaultLimit
        case .command: return CommandCheck.limit
        case .readiness: return .seconds(30)
        }
    }
}

/// An HTTP check: a GET that must answer with the expected status (default: any 2xx), contain the
/// expected text in its body, and answer within the latency bound.
public struct HTTPCheck: GateChecking {
    public var url: URL
    public var status: Int?
    public var body: String?
    public var within: Duration?

    /// How long a request may take when the gate sets no bound.
    public static let defaultLimit = Duration.seconds(10)

    public init(url: URL, status: Int? = nil, body: String? = nil, within: Duration? = nil) {
        self.url = url
        self.status = status
        self.body = body
        self.within = within
    }

    public func measure() async -> GateMeasurement {
        let limit = within ?? Self.defaultLimit
        let started = ContinuousClock.now
        do {
            // A second past the bound, so that a slow answer is measured as slow rather than missing.
            let response = try await HTTP.get(url.absoluteString, timeout: limit + .seconds(1))
            let elapsed = ContinuousClock.now - started
            let code = response.status
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let took = "\(code) in \(DurationParser.format(elapsed))"
            if let status, code != status {
                return GateMeasurement(at: Date(), passed: false, detail: "\(took), expected \(status)", value: seconds)
            }
            if status == nil, !(200..<300).contains(code) {
                return GateMeasurement(at: Date(), passed: false, detail: "\(took), expected a 2xx status", value: seconds)
            }
            if let body, !response.body.contains(body) {
                return GateMeasurement(at: Date(), passed: false, detail: "\(took), body does not contain \"\(body)\"", value: seconds)
            }
            if let within, elapsed > within {
                return GateMeasurement(
                    at: Date(), passed: false, detail: "\(took), slower than \(DurationParser.format(within))", value: seconds)
            }
            return GateMeasurement(at: Date(), passed: true, detail: took, value: seconds)
        } catch {
            return GateMeasurement(
                at: Date(), passed: false, detail: "no answer from \(url.host ?? url.absoluteString): \(error)")
        }
    }
}
