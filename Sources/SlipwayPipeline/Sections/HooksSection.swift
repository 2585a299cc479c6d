import Foundation
import SlipwayCore
import Yams

// `hooks:`.
extension PipelineReader {
    func hookMap(_ node: Node) -> [HookSpec] {
        guard let pairs = mapping(node, "hooks") else { return [] }
        var hooks: [HookSpec] = []
        let names = HookEvent.allCases.map(\.rawValue)
        for (keyNode, key, value) in pairs.entries {
            guard let event = HookEvent(rawValue: key) else {
                let guess = suggestion(for: key.replacingOccurrences(of: "_", with: "-"), among: names)
                error(
                    keyNode, "unknown hook '\(key)'",
                    hint: guess.map { "did you mean '\($0)'?" } ?? "hooks are: \(names.joined(separator: ", "))")
                continue
            }
            var command: [String]
            var timeout = Duration.seconds(300)
            if case .scalar = value {
                command = string(value, "hook \(key)").map { [$0] } ?? []
            } else if case .mapping = value, let settings = mapping(value, "hook \(key)") {
                checkKeys(settings, allowed: ["run", "timeout"], in: "hook \(key)")
                command =
                    settings["run"].map { node in
                        if case .scalar = node { return string(node, "run").map { [$0] } ?? [] }
                        return stringList(node, "run")
                    } ?? []
                timeout = settings["timeout"].flatMap { duration($0, "timeout") } ?? timeout
            } else {
                command = stringList(value, "hook \(key)")
            }
            guard !command.isEmpty, !command[0].isEmpty else {
                error(value, "hook '\(key)' names no executable", hint: "e.g. `\(key): Hooks/\(key)`")
                continue
            }
            hooks.append(HookSpec(event: event, location: location(keyNode), command: command, timeout: timeout))
        }
        return hooks
    }
}
