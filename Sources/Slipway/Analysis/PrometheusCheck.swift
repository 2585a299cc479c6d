import Foundation
import SlipwayCore
public import SlipwayPipeline

/// A Prometheus gate: an instant query (`/api/v1/query`) that must answer with one number. What
/// keeps a measurement from being taken is named, never passed over: no data, NaN, a query error,
/// an unreachable or silent Prometheus, several series, and (with `staleness:`) a measured
/// instance whose newest scrape is too old. The gate's policy (``GateRunner``) decides what an
/// inconclusive measurement counts as.
public struct PrometheusCheck: GateChecking {
    public var url: String
    public var query: String
    /// The newest scrape of `instance` may be at most this old.
    public var staleness: Duration?
    /// The measured instance's name (its `slipway_instance` label), for the staleness query.
    public var instance: String?
    public var limit: Duration

    public static let defaultLimit = Duration.seconds(10)

    public init(url: String, query: String, staleness: Duration? = nil, instance: String? = nil, limit: Duration = defaultLimit) {
        self.url = url
        self.query = query
        self.staleness = staleness
        self.instance = instance
        self.limit = limit
    }

    public var timeoutIsInconclusive: Bool { true }

    /// The query asking how old the newest scrape of `instance` is, in seconds.
    static func stalenessQuery(instance: String) -> String {
        "time() - max(timestamp(up{slipway_instance=\"\(instance)\"}))"
    }

    public func measure() async -> GateMeasurement {
        async let main = Self.sample(url: url, query: query, limit: limit)
        if let staleness, let instance {
            switch await Self.sample(url: url, query: Self.stalenessQuery(instance: instance), limit: limit) {
            case .inconclusive(let kind, _) where kind == "no data":
                _ = await main
                return .inconclusive("stale", "Prometheus has no scrape of \(instance) on record", query: query)
            case .value(let seconds, _) where seconds > Double(staleness.components.seconds):
                _ = await main
                return .inconclusive(
                    "stale", "the newest scrape of \(instance) is \(Int(seconds)) s old, \(DurationParser.format(staleness)) allowed",
                    query: query)
            default:
                break
            }
        }
        switch await main {
        case .inconclusive(let kind, let detail) where kind == "no data" && instance != nil:
            return .inconclusive(kind, detail + "; " + (await Self.scrapes(of: instance!, url: url, limit: limit)), query: query)
        case .inconclusive(let kind, let detail):
            return .inconclusive(kind, detail, query: query)
        case .value(let value, let text):
            var measurement = GateMeasurement(at: Date(), passed: true, detail: "value \(text)", value: value)
            measurement.query = query
            return measurement
        }
    }

    /// Waits until Prometheus at `url` has scraped `instance` successfully (its `up` is 1), asking
    /// every 250 ms on the real clock; throws past `limit`. Prometheus applies a change of its file
    /// discovery within about 10 s (it batches discovery updates every 5 s, twice over).
    static func awaitScrape(of instance: String, url: String, limit: Duration) async throws -> Duration {
        let started = ContinuousClock.now
        var last = ""
        while ContinuousClock.now - started < limit {
            switch await sample(url: url, query: "max(up{slipway_instance=\"\(instance)\"})", limit: .seconds(5)) {
            case .value(let up, _) where up == 1: return ContinuousClock.now - started
            case .value: last = "its scrapes of \(instance) fail (up 0)"
            case .inconclusive(let kind, let detail): last = kind == "no data" ? "it has not scraped \(instance)" : detail
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw ScrapeNotSeen(
            description: "Prometheus at \(url) has not scraped \(instance) within \(DurationParser.format(limit)) (\(last)): "
                + "does its file discovery read the scrape/ directory beside the run store? (docs/analysis.md)")
    }

    struct ScrapeNotSeen: Error, CustomStringConvertible {
        var description: String
    }

    /// What Prometheus knows of `instance`'s scrapes, in words: why a query about it may be empty.
    static func scrapes(of instance: String, url: String, limit: Duration) async -> String {
        let selector = "up{slipway_instance=\"\(instance)\"}"
        async let seen = sample(url: url, query: "sum(count_over_time(\(selector)[1m]))", limit: limit)
        async let upNow = sample(url: url, query: "min(\(selector))", limit: limit)
        switch await (seen, upNow) {
        case (.value(let count, _), .value(let up, _)):
            return up == 1
                ? "Prometheus scraped \(instance) \(Int(count)) times in the last minute: the series the query asks for are not there (yet?)"
                : "Prometheus's last scrape of \(instance) failed (up 0): see its targets page"
        case (.inconclusive(let kind, _), _) where kind == "no data":
            return
                "Prometheus has not scraped \(instance) in the last minute: is it in its file discovery (the scrape/ directory beside the run store)?"
        default:
            return "what Prometheus knows of \(instance)'s scrapes could not be read"
        }
    }

    enum Sample: Sendable {
        case value(Double, String)
        case inconclusive(String, String)
    }

    /// One instant query, as one number or why there is none.
    static func sample(url: String, query: String, limit: Duration) async -> Sample {
        guard var components = URLComponents(string: url.hasSuffix("/") ? url + "api/v1/query" : url + "/api/v1/query"),
            components.host != nil
        else {
            return .inconclusive("query error", "'\(url)' is not a URL")
        }
        components.queryItems = [URLQueryItem(name: "query", value: query)]
        guard let address = components.url else { return .inconclusive("query error", "'\(url)' is not a URL") }
        let response: HTTP.Response
        do {
            response = try await HTTP.get(address.absoluteString, timeout: limit)
        } catch {
            return .inconclusive("unreachable", "no answer from Prometheus at \(url): \(error)")
        }
        struct Answer: Decodable {
            struct Data: Decodable {
                var resultType: String
                var result: Result
            }
            enum Result: Decodable {
                case vector([Series])
                case scalar([Value])
                init(from decoder: any Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let series = try? container.decode([Series].self) {
                        self = .vector(series)
                    } else {
                        self = .scalar(try container.decode([Value].self))
                    }
                }
            }
            struct Series: Decodable {
                var metric: [String: String]?
                var value: [Value]?
                var values: [[Value]]?
            }
            enum Value: Decodable {
                case number(Double)
                case text(String)
                init(from decoder: any Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let number = try? container.decode(Double.self) {
                        self = .number(number)
                    } else {
                        self = .text(try container.decode(String.self))
                    }
                }
            }
            var status: String
            var data: Data?
            var error: String?
            var errorType: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body.utf8)) else {
            return .inconclusive("query error", "Prometheus answered \(response.status) with no result it could give")
        }
        guard answer.status == "success", response.status == 200, let data = answer.data else {
            return .inconclusive("query error", "\(answer.errorType ?? "error"): \(answer.error ?? "status \(response.status)")")
        }
        let pair: [Answer.Value]
        switch data.result {
        case .scalar(let value):
            pair = value
        case .vector(let series):
            if series.isEmpty { return .inconclusive("no data", "the query returned no series") }
            if series.count > 1 {
                let shown = series.prefix(3).map { ($0.metric ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" } }
                    .map { "{\($0.joined(separator: ","))}" }.joined(separator: ", ")
                return .inconclusive(
                    "several series",
                    "the query returned \(series.count) series (\(shown)\(series.count > 3 ? ", …" : "")); aggregate them, e.g. sum(…)")
            }
            guard data.resultType == "vector", let value = series[0].value else {
                return .inconclusive("query error", "a \(data.resultType) is not one number: use an instant vector or a scalar")
            }
            pair = value
        }
        guard pair.count == 2, case .text(let text) = pair[1], let value = Double(text) else {
            return .inconclusive("query error", "Prometheus's answer holds no sample value")
        }
        if value.isNaN { return .inconclusive("NaN", "the query's value is NaN (0/0: nothing to measure yet?)") }
        return .value(value, text)
    }
}

/// A gate `relative_to: stable`: the candidate's value and the stable release's, measured in the
/// same tick; the candidate passes when it is at most `atMost` times the stable value plus `margin`.
public struct RelativeCheck: GateChecking {
    public var candidate: PrometheusCheck
    public var stable: PrometheusCheck?
    public var comparison: GateSpec.Comparison

    public init(candidate: PrometheusCheck, stable: PrometheusCheck?, comparison: GateSpec.Comparison) {
        self.candidate = candidate
        self.stable = stable
        self.comparison = comparison
    }

    public var timeoutIsInconclusive: Bool { true }

    public func measure() async -> GateMeasurement {
        guard let stable else {
            return .inconclusive("no stable release", "nothing serves besides the candidate, so there is nothing to compare with")
        }
        async let ours = candidate.measure()
        async let theirs = stable.measure()
        var (measured, baseline) = await (ours, theirs)
        if measured.inconclusive != nil { return measured }
        if let kind = baseline.inconclusive {
            var result = GateMeasurement.inconclusive(kind, "the stable release: \(baseline.detail)", query: candidate.query)
            result.value = measured.value
            return result
        }
        guard let value = measured.value, let base = baseline.value else {
            return .inconclusive("query error", "no number to compare", query: candidate.query)
        }
        let bound = base * comparison.atMost + comparison.margin
        measured.stableValue = base
        measured.passed = value <= bound
        measured.detail =
            "\(Self.format(value)) against stable \(Self.format(base))"
            + (measured.passed ? ", within" : ", above") + " \(Self.format(comparison.atMost))× + \(Self.format(comparison.margin))"
        baseline.query = nil
        return measured
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.4g", value)
    }
}
