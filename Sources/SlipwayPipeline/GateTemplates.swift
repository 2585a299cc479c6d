import SlipwayCore

/// Ready-made Prometheus gates for the thresholds production-readiness checklists state: a gate
/// written `{ template: error-rate, below: 0.01 }` becomes a `prometheus:` gate with the query
/// below. Every query selects the measured instance by `slipway_instance="${INSTANCE}"`, the label
/// the scrape discovery gives each release's containers or pods (docs/analysis.md).
///
/// A new template is one entry in ``all``.
public struct GateTemplate: Sendable {
    public var name: String
    /// What it measures, in a sentence (docs and `deploy validate`'s hints).
    public var summary: String
    /// The parameters it takes, with their defaults.
    public var parameters: [(name: String, defaultValue: String)]
    /// The bound when the gate sets none.
    public var below: Double?
    /// The comparison with the stable release when the gate sets none.
    public var comparison: GateSpec.Comparison?
    /// The query, from the parameters' values.
    public var query: @Sendable ([String: String]) -> String

    static let instance = "slipway_instance=\"${INSTANCE}\""

    public static let all: [GateTemplate] = [
        GateTemplate(
            name: "error-rate", summary: "the share of requests answered with a 5xx status",
            parameters: [("metric", "http_requests_total"), ("status_label", "status"), ("window", "1m")], below: 0.01,
            query: { errorRate($0) }),
        GateTemplate(
            name: "latency-p99", summary: "the 99th percentile of request latency, in seconds, from a histogram",
            parameters: [("histogram", "http_request_duration_seconds"), ("quantile", "0.99"), ("window", "1m")], below: 0.5,
            query: { p in
                "histogram_quantile(\(p["quantile"]!), sum by (le) (rate(\(p["histogram"]!)_bucket{\(instance)}[\(p["window"]!)])))"
            }),
        GateTemplate(
            name: "error-spike", summary: "the 5xx share, against the stable release's in the same tick",
            parameters: [("metric", "http_requests_total"), ("status_label", "status"), ("window", "1m")],
            comparison: GateSpec.Comparison(atMost: 2, margin: 0.01), query: { errorRate($0) }),
        GateTemplate(
            name: "restarts",
            summary: "how often the release's processes started again (changes of process_start_time_seconds)",
            parameters: [("metric", "process_start_time_seconds"), ("window", "5m")], below: 1,
            query: { p in "sum(changes(\(p["metric"]!){\(instance)}[\(p["window"]!)]))" }),
    ]

    static func errorRate(_ p: [String: String]) -> String {
        let metric = p["metric"]!
        let window = p["window"]!
        // No 5xx series at all is a rate of 0 (`or vector(0)`); no requests at all stays empty: no data.
        return "(sum(rate(\(metric){\(instance),\(p["status_label"]!)=~\"5..\"}[\(window)])) or vector(0))"
            + " / sum(rate(\(metric){\(instance)}[\(window)]))"
    }

    public static func named(_ name: String) -> GateTemplate? { all.first { $0.name == name } }
}
