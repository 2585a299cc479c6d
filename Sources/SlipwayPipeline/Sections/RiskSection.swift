import Foundation
import SlipwayCore
import Yams

// `risk:`: which changed paths the change-risk report flags.
extension PipelineReader {
    func riskMap(_ node: Node) -> [(name: String, patterns: [String])] {
        guard let pairs = mapping(node, "risk", hint: "e.g. `risk: { migration: [\"db/migrations/**\"] }`") else { return [] }
        var result: [(String, [String])] = []
        for (keyNode, name, value) in pairs.entries {
            if !isValidIdentifier(name) {
                error(
                    keyNode, "risk category \(shown(name)) is not valid" + tooLong(name),
                    hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
                continue
            }
            result.append(
                (
                    name,
                    stringList(
                        value, "the patterns of risk category '\(name)'",
                        hint: "a list of globs such as \"db/migrations/**\" or \"*.sql\"; [] switches a default category off")
                ))
        }
        return result
    }
}
