import Foundation
import SlipwayCore
import Yams

// Reading typed values from YAML nodes, each with a diagnostic at the node when it is not what
// it should be.
extension PipelineReader {
    // MARK: Typed values

    struct Mapping {
        var entries: [(keyNode: Node, key: String, value: Node)]

        init(entries: [(keyNode: Node, key: String, value: Node)]) { self.entries = entries }

        /// The mapping's entries, with YAML merge keys (`<<: *base`, or `<<: [*a, *b]`) applied:
        /// merged entries come after the mapping's own and never replace them.
        init(_ mapping: Node.Mapping) {
            var own: [(keyNode: Node, key: String, value: Node)] = []
            var merged: [(keyNode: Node, key: String, value: Node)] = []
            for (key, value) in mapping {
                guard key.string == "<<" else {
                    own.append((keyNode: key, key: key.string ?? "", value: value))
                    continue
                }
                let sources: [Node] =
                    switch value {
                    case .mapping: [value]
                    case .sequence(let items): Array(items)
                    default: []
                    }
                for case .mapping(let source) in sources {
                    for entry in Mapping(source).entries where !merged.contains(where: { $0.key == entry.key }) {
                        merged.append(entry)
                    }
                }
            }
            entries = own + merged.filter { entry in !own.contains { $0.key == entry.key } }
        }

        subscript(key: String) -> Node? { entries.first { $0.key == key }?.value }
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            if scalar.style == .plain, Int(scalar.string) != nil || Double(scalar.string) != nil { return "the number \(scalar.string)" }
            return "the string '\(scalar.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func mapping(_ node: Node, _ what: String, hint: String? = nil) -> Mapping? {
        guard case .mapping(let mapping) = node else {
            error(node, "\(what) must be a mapping of keys to values, found \(describe(node))", hint: hint)
            return nil
        }
        let result = Mapping(mapping)
        for entry in result.entries where entry.keyNode.string == nil || { if case .scalar = entry.keyNode { false } else { true } }() {
            error(entry.keyNode, "a key in \(what) must be a plain word")
        }
        return result
    }

    func sequence(_ node: Node, _ what: String, hint: String? = nil) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error(node, "\(what) must be a list, found \(describe(node))", hint: hint)
            return nil
        }
        return Array(sequence)
    }

    func string(_ node: Node, _ what: String, hint: String? = nil) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            error(node, "\(what) must be a string, found \(describe(node))", hint: hint)
            return nil
        }
        return scalar.string
    }

    func stringList(_ node: Node, _ what: String, hint: String? = nil) -> [String] {
        guard let items = sequence(node, what, hint: hint) else { return [] }
        return items.compactMap { string($0, "each item of \(what)") }
    }

    func integer(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            error(node, "\(what) must be a whole number, found \(describe(node))")
            return nil
        }
        return value
    }

    /// A whole number within `range`, else an error naming the range.
    func integer(_ node: Node, _ what: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = integer(node, what) else { return nil }
        guard range.contains(value) else {
            error(node, "\(what) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
            return nil
        }
        return value
    }

    func positive(_ node: Node, _ what: String) -> Int? {
        guard let value = integer(node, what) else { return nil }
        if value < 1 { error(node, "\(what) must be at least 1, not \(value)"); return nil }
        return value
    }

    func number(_ node: Node, _ what: String) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string) else {
            error(node, "\(what) must be a number, found \(describe(node))")
            return nil
        }
        return value
    }

    func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar(let scalar) = node else {
            error(node, "\(what) must be true or false, found \(describe(node))")
            return nil
        }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(node, "\(what) must be true or false, found \(describe(node))")
            return nil
        }
    }

    func duration(_ node: Node, _ what: String) -> Duration? {
        if case .scalar(let scalar) = node, DurationParser.read(scalar.string) == .tooLong {
            error(
                node, "\(what) is longer than deploy allows: at most \(DurationParser.maximumText)",
                hint: "write a duration from 0s to \(DurationParser.maximumText), e.g. 30s, 5m, 1h30m or 2d")
            return nil
        }
        guard case .scalar(let scalar) = node, let value = DurationParser.parse(scalar.string) else {
            error(node, "\(what) must be a duration such as 30s, 5m, 1h30m or 500ms, found \(describe(node))")
            return nil
        }
        return value
    }

    func size(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = SizeParser.parse(scalar.string), value > 0 else {
            error(
                node,
                "\(what) must be a size from 1 byte to \(SizeParser.maximumText), such as 512KiB, 1MiB or 65536, found \(describe(node))")
            return nil
        }
        return value
    }

    func required(_ pairs: Mapping, _ key: String, in node: Node, context: String, hint: String) -> Node? {
        guard let value = pairs[key] else {
            error(node, "\(context) has no '\(key)'", hint: hint)
            return nil
        }
        if isNull(value) {
            error(value, "'\(key)' is empty", hint: hint)
            return nil
        }
        return value
    }

    func checkKeys(_ pairs: Mapping, allowed: [String], in context: String) {
        for entry in pairs.entries where !allowed.contains(entry.key) {
            let guess = suggestion(for: entry.key, among: allowed)
            let hint =
                guess.map { "did you mean '\($0)'?" }
                ?? (allowed.isEmpty ? "\(context) takes no settings" : "allowed here: \(allowed.joined(separator: ", "))")
            error(entry.keyNode, "unknown key '\(entry.key)' in \(context)", hint: hint)
        }
    }

    /// A name as a message shows it: quoted, and cut short (with its length) when it is long.
    func shown(_ name: String) -> String {
        name.count <= 40 ? "'\(name)'" : "'\(name.prefix(40))…' (\(name.count) characters)"
    }

    /// What a message adds for a name over the limit of 63 characters.
    func tooLong(_ name: String) -> String { name.count > 63 ? ": it is longer than 63 characters" : "" }

    func isValidIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 63
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
            }
            && name.first != "-" && name.first != "."
    }
}
