import Foundation
import SlipwayCore
import Yams

// `gates:`.
extension PipelineReader {
    func gateMap(_ node: Node) -> [GateSpec] {
        guard let pairs = mapping(node, "gates") else { return [] }
        var result: [GateSpec] = []
        for (keyNode, name, value) in pairs.entries {
            if !isValidIdentifier(name) {
                error(
                    keyNode, "gate name \(shown(name)) is not valid" + tooLong(name), hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
            }
            guard let settings = mapping(value, "gate '\(name)'") else { continue }
            let kinds = ["http", "prometheus", "command", "readiness", "template"]
            let templateKeys = ["url", "metric", "histogram", "status_label", "window", "quantile"]
            let isTemplate = settings["template"] != nil
            checkKeys(
                settings,
                allowed: kinds + [
                    "below", "above", "every", "times", "failure_limit", "initial_delay", "timeout", "inconclusive_limit",
                    "relative_to", "at_most", "margin", "staleness",
                ] + (isTemplate ? templateKeys : []),
                in: "gate '\(name)'")
            let present = settings.entries.filter { kinds.contains($0.key) }
            guard present.count == 1 else {
                error(
                    keyNode, present.isEmpty ? "gate '\(name)' checks nothing" : "gate '\(name)' has more than one check",
                    hint: "give it exactly one of: http, prometheus, command, readiness, template")
                continue
            }
            var template: GateTemplate?
            let check: GateSpec.Check
            if isTemplate {
                guard let found = gateTemplate(settings, node: present[0].value, gate: name) else { continue }
                template = found.template
                check = found.check
            } else {
                guard let found = gateCheck(kind: present[0].key, node: present[0].value, gate: name) else { continue }
                check = found
            }
            var comparison = template?.comparison
            if let relative = settings["relative_to"] {
                if string(relative, "relative_to") != "stable" {
                    error(relative, "relative_to can only be `stable`", hint: "e.g. `relative_to: stable, at_most: 1.5`")
                }
                guard case .prometheus = check else {
                    error(relative, "gate '\(name)': only a Prometheus gate can compare with the stable release")
                    continue
                }
                comparison = GateSpec.Comparison(
                    atMost: settings["at_most"].flatMap { number($0, "at_most") } ?? comparison?.atMost ?? 1,
                    margin: settings["margin"].flatMap { number($0, "margin") } ?? comparison?.margin ?? 0)
            } else if let extra = settings["at_most"] ?? settings["margin"] {
                if let base = comparison {
                    comparison = GateSpec.Comparison(
                        atMost: settings["at_most"].flatMap { number($0, "at_most") } ?? base.atMost,
                        margin: settings["margin"].flatMap { number($0, "margin") } ?? base.margin)
                } else {
                    error(extra, "gate '\(name)': at_most and margin bound a comparison", hint: "add `relative_to: stable`")
                }
            }
            if let staleness = settings["staleness"], !check.isPrometheus {
                error(staleness, "gate '\(name)': staleness is about scrapes, so only a Prometheus gate has one")
            }
            let below = settings["below"].flatMap { number($0, "below") }
            let above = settings["above"].flatMap { number($0, "above") }
            result.append(
                GateSpec(
                    name: name, location: location(keyNode), check: check,
                    below: below ?? (above == nil && settings["relative_to"] == nil ? template?.below : nil),
                    above: above,
                    every: settings["every"].flatMap { duration($0, "every") },
                    times: settings["times"].flatMap { integer($0, "times", in: 1...100_000) },
                    failureLimit: settings["failure_limit"].flatMap { integer($0, "failure_limit", in: 0...100_000) },
                    initialDelay: settings["initial_delay"].flatMap { duration($0, "initial_delay") },
                    timeout: settings["timeout"].flatMap { duration($0, "timeout") },
                    inconclusiveLimit: settings["inconclusive_limit"].flatMap { integer($0, "inconclusive_limit", in: 0...100_000) },
                    comparison: comparison,
                    staleness: settings["staleness"].flatMap { duration($0, "staleness") },
                    template: template?.name))
        }
        return result
    }

    func gateCheck(kind: String, node: Node, gate: String) -> GateSpec.Check? {
        switch kind {
        case "command":
            let argv = stringList(node, "command", hint: "an argv array, e.g. `command: [Hooks/check, \"${TARGET_URL}\"]`")
            if argv.isEmpty { error(node, "gate '\(gate)': command is empty"); return nil }
            checkReferences(argv: argv, node: node, allowed: nil)
            return .command(argv)
        case "readiness":
            if !isNull(node), let pairs = mapping(node, "readiness", hint: "`readiness: {}` takes no settings") {
                checkKeys(pairs, allowed: [], in: "readiness")
            }
            return .readiness
        case "http":
            guard let pairs = mapping(node, "http", hint: "e.g. `http: { url: \"${TARGET_URL}/health\", status: 200 }`") else { return nil }
            checkKeys(pairs, allowed: ["url", "status", "body", "within"], in: "http")
            guard let url = required(pairs, "url", in: node, context: "http", hint: "add `url:`").flatMap({ string($0, "url") }) else {
                return nil
            }
            return .http(
                url: url, status: pairs["status"].flatMap { integer($0, "status", in: 100...599) },
                body: pairs["body"].flatMap { string($0, "body") },
                within: pairs["within"].flatMap { duration($0, "within") })
        default:
            guard let pairs = mapping(node, "prometheus") else { return nil }
            checkKeys(pairs, allowed: ["url", "query"], in: "prometheus")
            let url = pairs["url"].flatMap { string($0, "url") } ?? prometheusURL
            if pairs["url"] == nil, prometheusURL == nil {
                error(
                    node, "gate '\(gate)': no Prometheus to ask",
                    hint: "add `url:` here, or `prometheus: { url: \"http://127.0.0.1:9090\" }` at the top of the pipeline")
            }
            let query = required(pairs, "query", in: node, context: "prometheus", hint: "add `query:`").flatMap { string($0, "query") }
            guard let url, let query else { return nil }
            return .prometheus(url: url, query: query)
        }
    }
}

// Gate templates (`template: error-rate`) and the pipeline's Prometheus (`prometheus: { url: … }`).
extension PipelineReader {
    func gateTemplate(_ settings: Mapping, node: Node, gate: String) -> (template: GateTemplate, check: GateSpec.Check)? {
        guard let name = string(node, "template") else { return nil }
        guard let template = GateTemplate.named(name) else {
            error(
                node, "gate '\(gate)': there is no gate template '\(name)'",
                hint: "use one of: \(GateTemplate.all.map(\.name).joined(separator: ", ")) (docs/analysis.md)")
            return nil
        }
        for key in ["metric", "histogram", "status_label", "quantile"] {
            if let extra = settings[key], !template.parameters.contains(where: { $0.name == key }) {
                error(
                    extra, "the \(name) template takes no \(key)",
                    hint: "it takes: \(template.parameters.map(\.name).joined(separator: ", ")), url")
            }
        }
        var values: [String: String] = [:]
        for (parameter, defaultValue) in template.parameters {
            let given = settings[parameter].flatMap { string($0, parameter) } ?? defaultValue
            if let node = settings[parameter], !Self.isPromQLToken(given, parameter: parameter) {
                error(node, "\(parameter) \(shown(given)) cannot go into a query", hint: Self.promQLHint(parameter))
            }
            values[parameter] = given
        }
        let url = settings["url"].flatMap { string($0, "url") } ?? prometheusURL
        guard let url else {
            error(
                node, "gate '\(gate)': no Prometheus to ask",
                hint: "add `url:` to the gate, or `prometheus: { url: \"http://127.0.0.1:9090\" }` at the top of the pipeline")
            return nil
        }
        return (template, .prometheus(url: url, query: template.query(values)))
    }

    /// A metric or label name, a duration (`30s`, `1m`) or a number: what a template parameter may be.
    static func isPromQLToken(_ text: String, parameter: String) -> Bool {
        switch parameter {
        case "window": return text.range(of: #"^[0-9]+(ms|s|m|h|d)$"#, options: .regularExpression) != nil
        case "quantile": return Double(text).map { $0 > 0 && $0 < 1 } ?? false
        default: return text.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*$"#, options: .regularExpression) != nil
        }
    }

    static func promQLHint(_ parameter: String) -> String {
        switch parameter {
        case "window": "a PromQL duration, e.g. 30s, 1m or 5m"
        case "quantile": "a number between 0 and 1, e.g. 0.99"
        default: "a Prometheus name: letters, digits, '_' and ':'"
        }
    }

    func prometheusSetting(_ node: Node) -> String? {
        guard let pairs = mapping(node, "prometheus", hint: "e.g. `prometheus: { url: \"http://127.0.0.1:9090\" }`") else { return nil }
        checkKeys(pairs, allowed: ["url"], in: "prometheus")
        return required(pairs, "url", in: node, context: "prometheus", hint: "add `url:`").flatMap { string($0, "url") }
    }
}

extension GateSpec.Check {
    public var isPrometheus: Bool {
        if case .prometheus = self { return true }
        return false
    }
}
