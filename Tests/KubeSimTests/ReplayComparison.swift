import Foundation
import KubeSim
import SlipwayTestSupport

/// Replaces what differs between any two clusters: generated names, uids, times, addresses.
enum Normalize {
    static let hashAlphabet = "[bcdfghjklmnpqrstvwxz2456789]"

    static func names(_ text: String) -> String {
        var text = text
        text = text.replacing(
            try! Regex("\\b(web|hello)-\(hashAlphabet){8,10}-\(hashAlphabet){5}\\b"), with: { "\($0.output[1].substring ?? "")-POD" })
        text = text.replacing(try! Regex("\\b(web|hello)-\(hashAlphabet){8,10}\\b"), with: { "\($0.output[1].substring ?? "")-RS" })
        text = text.replacing(try! Regex("\\bweb-\(hashAlphabet){5}\\b"), with: "web-SLICE")
        text = text.replacing(try! Regex("kube-api-access-[a-z0-9]{5}"), with: "kube-api-access-X")
        text = text.replacing(try! Regex("pod-template-hash=\(hashAlphabet)+"), with: "pod-template-hash=HASH")
        return text
    }

    static func text(_ text: String, ages: Bool = false) -> String {
        var text = names(text)
        text = text.replacing(try! Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), with: "UID")
        text = text.replacing(try! Regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ"), with: "TIME")
        text = text.replacing(try! Regex("https://127\\.0\\.0\\.1:\\d+"), with: "https://SERVER")
        text = text.replacing(try! Regex("\\b(10\\.244|127\\.\\d+)\\.\\d+\\.\\d+\\b"), with: "IP")
        text = text.replacingOccurrences(of: "lab-node-1", with: "kube-sim")
        if ages {
            text = text.replacing(try! Regex("(\\s)\\d+(s|m\\d+s|m|h\\d+m|h|d)(?=\\s|$)"), with: { "\($0.output[1].substring ?? "")AGE" })
        }
        text = text.replacing(try! Regex(" +"), with: " ")
        return text
    }

    /// kubectl's own log lines (klog) are not part of what the transcripts kept of stderr.
    static func withoutKlog(_ text: String) -> String {
        let klog = try! Regex("^[IWEF]\\d{4} \\d\\d:\\d\\d:\\d\\d")
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { (try? klog.prefixMatch(in: String($0))) == nil }.joined(separator: "\n")
    }

    /// `path: value` for every leaf, values normalized, list items in a stable order; managedFields
    /// (times and field sets of other writers) and resource versions (a counter) left out.
    static func flatten(_ json: JSON) -> [String: String] {
        var result: [String: String] = [:]
        func walk(_ node: JSON, _ path: String) {
            if path.hasSuffix(".managedFields") || path.hasSuffix(".resourceVersion") { return }
            switch node {
            case .object(let fields):
                for (key, value) in fields { walk(value, "\(path).\(key)") }
            case .array(let items):
                var ordered = path.hasSuffix(".items") ? items.sorted { sortKey($0) < sortKey($1) } : items
                if path.hasSuffix(".conditions") {
                    ordered = items.sorted { ($0["type"]?.string ?? "") < ($1["type"]?.string ?? "") }
                }
                for (index, item) in ordered.enumerated() { walk(item, "\(path)[\(index)]") }
            case .string(let value):
                let hash = try! Regex("^\(hashAlphabet){8,10}$")
                result[path] = (try? hash.wholeMatch(in: value)) != nil ? "HASH" : text(value)
            default:
                result[path] = node.serialized()
            }
        }
        walk(json, "")
        return result
    }

    /// List items compare in the order of their image, then revision, then normalized name.
    static func sortKey(_ item: JSON) -> String {
        let containers = item[path: ["spec", "template", "spec", "containers"]] ?? item[path: ["spec", "containers"]]
        let image = containers?.array?.first?["image"]?.string ?? ""
        let revision = item[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.string ?? ""
        let ready = item[path: ["status", "conditions"]]?.array?.first { $0["type"]?.string == "Ready" }?["status"]?.string ?? ""
        return "\(image)|\(revision)|\(ready)|\(names(item[path: ["metadata", "name"]]?.string ?? ""))"
    }
}

/// Why a command's output cannot match the capture's exactly, and what is compared instead.
enum Deviation {
    /// kube-sim serves fewer kinds than a kube-apiserver: each row it lists must be one of the capture's.
    case fewerKinds
    /// kube-sim reports 1.32 so that the dispatcher runs the capture's 1.32 client; the capture's
    /// server was 1.28 (so its version skew warning cannot appear): the document's keys are compared.
    case versionReported
    /// Progress lines of `rollout status` depend on when pods turn Ready (the lab's loop and
    /// kube-sim's clock differ by tens of milliseconds): the last line is compared, and every line
    /// must be one of the messages rollout status prints.
    case progressTiming
    /// kube-sim serves 8 group-versions, the capture's server 22: legacy discovery fetches one
    /// document per group-version, in parallel (any order), so kube-sim's fan-out must be the
    /// capture's restricted to the group-versions kube-sim serves.
    case legacyFanOut
    /// A ReplicaSet's generation counts its scaling steps, an EndpointSlice's each change of its
    /// endpoints; how many there are depends on when pods turned Ready (and, for a ReplicaSet, on
    /// proportional scaling when a scale lands mid-rollout).
    case generationsCountSteps
    /// The capture's two lab sessions faked the kubelet differently (01–19: conditions in one order,
    /// no container ids; 20–26: another order, `fake://` container ids, node address 10.1.0.1):
    /// pod conditions compare by type, and container and image ids and the node's address are left out.
    case labKubelet

    static func of(scenario: String, step: Int, arguments: [String]) -> [Deviation] {
        var result: [Deviation] = []
        if arguments.contains("api-resources") { result.append(.fewerKinds) }
        if arguments.contains("version") { result.append(.versionReported) }
        if arguments.starts(with: ["rollout", "status"]) || arguments.dropFirst(2).starts(with: ["rollout", "status"]) {
            result.append(.progressTiming)
        }
        if scenario.hasPrefix("19-") { result.append(.legacyFanOut) }
        if arguments.contains("rs") || arguments.contains("replicasets") || arguments.contains("endpointslices") {
            result.append(.generationsCountSteps)
        }
        if arguments.contains("pods") { result.append(.labKubelet) }
        return result
    }
}

enum Comparison {
    static var progressMessages: [Regex<AnyRegexOutput>] {
        [
            try! Regex("^Waiting for deployment \"\\w+\" rollout to finish: \\d+ out of \\d+ new replicas have been updated\\.\\.\\.$"),
            try! Regex("^Waiting for deployment \"\\w+\" rollout to finish: \\d+ old replicas are pending termination\\.\\.\\.$"),
            try! Regex("^Waiting for deployment \"\\w+\" rollout to finish: \\d+ of \\d+ updated replicas are available\\.\\.\\.$"),
            try! Regex("^Waiting for deployment spec update to be observed\\.\\.\\.$"),
        ]
    }

    static func problems(command: Transcript.Command, scenario: String, result: CommandResult, received: [String]) -> [String] {
        let deviations = Deviation.of(scenario: scenario, step: command.step, arguments: command.arguments)
        var problems: [String] = []
        // Requests.
        if deviations.contains(.legacyFanOut) {
            problems += fanOutProblems(expected: command.requests, received: received)
        } else if received != command.requests {
            problems.append(
                "requests differ:\n  expected \(command.requests.joined(separator: "\n           "))\n  received \(received.joined(separator: "\n           "))"
            )
        }
        // Exit code.
        if result.status != command.exit {
            problems.append("exit code \(result.status), the capture's \(command.exit); stderr: \(result.stderr)")
        }
        // Standard output.
        let isTable = command.arguments.contains("get") && !command.arguments.contains("-o")
        let expectedOut = Normalize.text(command.stdout, ages: isTable)
        let actualOut = Normalize.text(result.stdout, ages: isTable)
        if deviations.contains(.fewerKinds) {
            let rows = Set(expectedOut.split(separator: "\n"))
            let extra = actualOut.split(separator: "\n").filter { !rows.contains($0) }
            if !extra.isEmpty { problems.append("rows the capture did not list: \(extra)") }
        } else if deviations.contains(.versionReported) {
            let expected = (try? JSON.parse(command.stdout)).map(Normalize.flatten).map { Set($0.keys) }
            let actual = (try? JSON.parse(result.stdout)).map(Normalize.flatten).map { Set($0.keys) }
            if expected != actual { problems.append("version document keys differ: \(String(describing: actual))") }
        } else if deviations.contains(.progressTiming) {
            let lines = actualOut.split(separator: "\n").map(String.init)
            if lines.last != expectedOut.split(separator: "\n").last.map(String.init) {
                problems.append("last line \(lines.last ?? "(none)"), the capture's \(expectedOut.split(separator: "\n").last ?? "(none)")")
            }
            for line in lines.dropLast() where !progressMessages.contains(where: { (try? $0.wholeMatch(in: line)) != nil }) {
                problems.append("not a rollout status progress line: \(line)")
            }
        } else if command.stdout.hasPrefix("{") {
            if let expected = try? JSON.parse(command.stdout), let actual = try? JSON.parse(result.stdout) {
                var left = Normalize.flatten(expected)
                var right = Normalize.flatten(actual)
                var ignored: [Regex<AnyRegexOutput>] = []
                if deviations.contains(.generationsCountSteps) {
                    ignored.append(try! Regex("^\\.items\\[\\d+\\]\\.(metadata\\.generation|status\\.observedGeneration)$"))
                }
                if deviations.contains(.labKubelet) {
                    ignored.append(try! Regex("\\.(containerID|imageID|hostIP|hostIPs\\[\\d+\\]\\.ip)$"))
                }
                for pattern in ignored {
                    left = left.filter { (try? pattern.firstMatch(in: $0.key)) == nil }
                    right = right.filter { (try? pattern.firstMatch(in: $0.key)) == nil }
                }
                let differing = Set(left.keys).union(right.keys).filter { left[$0] != right[$0] }.sorted()
                if !differing.isEmpty {
                    problems.append(
                        "JSON output differs at:\n"
                            + differing.prefix(20).map { "  \($0): \(left[$0] ?? "—") | \(right[$0] ?? "—")" }.joined(separator: "\n"))
                }
            } else {
                problems.append("stdout is not JSON: \(result.stdout.prefix(300))")
            }
        } else if expectedOut != actualOut {
            problems.append("stdout differs:\n  expected \(expectedOut)\n  printed  \(actualOut)")
        }
        // Standard error (kubectl's log lines aside).
        if !deviations.contains(.versionReported) {
            let expectedErr = Normalize.text(command.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            let actualErr = Normalize.text(Normalize.withoutKlog(result.stderr)).trimmingCharacters(in: .whitespacesAndNewlines)
            if expectedErr != actualErr {
                problems.append("stderr differs:\n  expected \(expectedErr)\n  printed  \(actualErr)")
            }
        }
        return problems
    }

    /// The parallel legacy-discovery GETs as sets, everything else in order.
    static func fanOutProblems(expected: [String], received: [String]) -> [String] {
        let fanOut = try! Regex("^GET /(api/v1|apis/[^/]+/[^/?]+)\\?timeout=32s$")
        func split(_ list: [String]) -> (Set<String>, [String]) {
            var set: Set<String> = []
            var rest: [String] = []
            for request in list {
                if (try? fanOut.wholeMatch(in: request)) != nil { set.insert(request) } else { rest.append(request) }
            }
            return (set, rest)
        }
        let (expectedSet, expectedRest) = split(expected)
        let (receivedSet, receivedRest) = split(received)
        var problems: [String] = []
        if receivedRest != expectedRest { problems.append("requests beyond discovery differ: \(receivedRest) vs \(expectedRest)") }
        let served = Set(
            ResourceCatalog.builtIn.map { "GET /\($0.group.isEmpty ? "api/\($0.version)" : "apis/\($0.group)/\($0.version)")?timeout=32s" })
        if receivedSet != expectedSet.intersection(served) {
            problems.append("legacy discovery fan-out \(receivedSet.sorted()), expected \(expectedSet.intersection(served).sorted())")
        }
        return problems
    }
}
