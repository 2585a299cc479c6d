public import Foundation
import SlipwayCore
public import SlipwayPipeline

/// One look at a gate: did it hold, and what was seen.
public struct GateMeasurement: Sendable, Hashable, Codable {
    public var at: Date
    public var passed: Bool
    /// What was seen, in a few words: `200 in 12ms`, `503 Service Unavailable`, `connection refused`.
    public var detail: String
    /// The number measured, for gates that compare one (latency in seconds, a query's value).
    public var value: Double?

    public init(at: Date, passed: Bool, detail: String, value: Double? = nil) {
        self.at = at
        self.passed = passed
        self.detail = detail
        self.value = value
    }
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
/// an error, a timeout or an unreachable target is a failed measurement, never a pass.
public protocol GateChecking: Sendable {
    func measure() async -> GateMeasurement
}

/// Runs a gate: waits `initial_delay`, then measures `times` times, `every` apart, and fails as soon
/// as more than `failure_limit` measurements have failed.
public struct GateRunner: Sendable {
    public let clock: any Clock<Duration>

    public init(clock: any Clock<Duration> = ContinuousClock()) {
        self.clock = clock
    }

    public func run(_ spec: GateSpec, check: any GateChecking, onMeasurement: @Sendable (GateMeasurement) -> Void = { _ in }) async
        -> GateResult
    {
        var measurements: [GateMeasurement] = []
        let times = spec.times ?? 1
        let limit = spec.failureLimit ?? 0
        do {
            if let delay = spec.initialDelay { try await clock.sleep(for: delay) }
            for index in 0..<times {
                let measurement = await check.measure()
                measurements.append(measurement)
                onMeasurement(measurement)
                let failures = measurements.filter { !$0.passed }.count
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
        return GateResult(gate: spec.name, passed: true, measurements: measurements, reason: nil)
    }

    /// The longest the gate can take before it decides: the initial delay, every interval, and each
    /// measurement's own time limit.
    public static func worstCase(_ spec: GateSpec, measurementLimit: Duration) -> Duration {
        let times = spec.times ?? 1
        return [spec.initialDelay ?? .zero, (spec.every ?? .zero).saturatingTimes(times - 1), measurementLimit.saturatingTimes(times)]
            .saturatingSum()
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
