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
            let kinds = ["http", "prometheus", "command", "readiness"]
            checkKeys(
                settings, allowed: kinds + ["below", "above", "every", "times", "failure_limit", "initial_delay"],
                in: "gate '\(name)'")
            let present = settings.entries.filter { kinds.contains($0.key) }
            guard present.count == 1 else {
                error(
                    keyNode, present.isEmpty ? "gate '\(name)' checks nothing" : "gate '\(name)' has more than one check",
                    hint: "give it exactly one of: http, prometheus, command, readiness")
                continue
            }
            guard let check = gateCheck(kind: present[0].key, node: present[0].value, gate: name) else { continue }
            result.append(
                GateSpec(
                    name: name, location: location(keyNode), check: check,
                    below: settings["below"].flatMap { number($0, "below") },
                    above: settings["above"].flatMap { number($0, "above") },
                    every: settings["every"].flatMap { duration($0, "every") },
                    times: settings["times"].flatMap { integer($0, "times", in: 1...100_000) },
                    failureLimit: settings["failure_limit"].flatMap { integer($0, "failure_limit", in: 0...100_000) },
                    initialDelay: settings["initial_delay"].flatMap { duration($0, "initial_delay") }))
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
            let url = required(pairs, "url", in: node, context: "prometheus", hint: "add `url:`").flatMap { string($0, "url") }
            let query = required(pairs, "query", in: node, context: "prometheus", hint: "add `query:`").flatMap { string($0, "query") }
            guard let url, let query else { return nil }
            return .prometheus(url: url, query: query)
        }
    }
}
