import Foundation
import SlipwayCore
import Yams

// `secrets:`, `variables:` (top level and per environment) and a build stage's `args:`.
extension PipelineReader {
    func secretList(_ node: Node) -> [(name: String, node: Node)] {
        guard let items = sequence(node, "secrets", hint: "list the names of environment variables, e.g. `secrets: [REGISTRY_TOKEN]`")
        else { return [] }
        var names: [(String, Node)] = []
        for item in items {
            guard let name = string(item, "a secret's name") else { continue }
            if !Variables.isValidName(name) {
                error(
                    item, "secret name '\(name)' is not an environment variable name",
                    hint: "use letters, digits and '_', not starting with a digit, e.g. REGISTRY_TOKEN")
            } else if names.contains(where: { $0.0 == name }) {
                error(item, "secret '\(name)' is listed twice")
            } else {
                names.append((name, item))
            }
        }
        return names
    }

    /// `args:` of a build stage: `--build-arg NAME=VALUE` pairs; values may use `${VERSION}` and the like.
    func buildArguments(_ node: Node) -> [(name: String, value: String)] {
        guard let pairs = mapping(node, "build args", hint: "e.g. `args: { VERSION: \"${VERSION}\" }`") else { return [] }
        var result: [(String, String)] = []
        for (keyNode, key, valueNode) in pairs.entries {
            guard Variables.isValidName(key) else {
                error(keyNode, "build arg name '\(key)' is not valid", hint: "use letters, digits and '_', not starting with a digit")
                continue
            }
            guard let value = string(valueNode, "build arg \(key)") else { continue }
            result.append((key, value))
        }
        return result
    }

    func variableMap(_ node: Node, context: String) -> [(name: String, value: String)] {
        guard let pairs = mapping(node, context) else { return [] }
        var result: [(String, String)] = []
        let builtins = Set(Variables.builtinNames + Variables.gateOnly)
        for (keyNode, key, valueNode) in pairs.entries {
            if !Variables.isValidName(key) {
                error(
                    keyNode, "variable name '\(key)' is not valid",
                    hint: "use letters, digits and '_', not starting with a digit")
                continue
            }
            if builtins.contains(key) {
                error(
                    keyNode, "variable '\(key)' would hide the built-in ${\(key)}",
                    hint: "choose another name; built-ins: \(Variables.builtins.map(\.name).joined(separator: ", "))")
                continue
            }
            guard let value = string(valueNode, "variable \(key)") else { continue }
            result.append((key, value))
        }
        return result
    }
}
