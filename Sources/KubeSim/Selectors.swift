import Foundation

/// A label selector in the query-string syntax (`app=web,tier!=db,env in (a,b),!legacy`) or from a
/// `LabelSelector` object (`matchLabels`, `matchExpressions`).
public struct LabelSelector: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, [String])
        case notIn(String, [String])
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement]

    public static let everything = LabelSelector(requirements: [])

    public var isEmpty: Bool { requirements.isEmpty }

    public init(parsing text: String) throws(APIError) {
        var requirements: [Requirement] = []
        for term in Self.splitTerms(text) {
            let term = term.trimmingSpaces
            if term.isEmpty { continue }
            if let range = term.range(of: " notin ") ?? term.range(of: " in ") {
                let key = String(term[..<range.lowerBound]).trimmingSpaces
                let isNot = term[range].contains("notin")
                var values = String(term[range.upperBound...]).trimmingSpaces
                guard values.hasPrefix("("), values.hasSuffix(")") else {
                    throw APIError.badRequest("unable to parse requirement: found '\(values)', expected: '('")
                }
                values = String(values.dropFirst().dropLast())
                let list = values.split(separator: ",").map { String($0).trimmingSpaces }
                requirements.append(isNot ? .notIn(key, list) : .isIn(key, list))
            } else if let range = term.range(of: "!=") {
                requirements.append(
                    .notEquals(String(term[..<range.lowerBound]).trimmingSpaces, String(term[range.upperBound...]).trimmingSpaces))
            } else if let range = term.range(of: "==") ?? term.range(of: "=") {
                requirements.append(
                    .equals(String(term[..<range.lowerBound]).trimmingSpaces, String(term[range.upperBound...]).trimmingSpaces))
            } else if term.hasPrefix("!") {
                requirements.append(.doesNotExist(String(term.dropFirst()).trimmingSpaces))
            } else {
                requirements.append(.exists(term))
            }
        }
        self.requirements = requirements
    }

    init(requirements: [Requirement]) { self.requirements = requirements }

    /// From a `spec.selector` object; nil matches nothing (an absent selector).
    public init?(object: JSON?) {
        guard let object, case .object = object else { return nil }
        var requirements: [Requirement] = []
        for (key, value) in (object["matchLabels"]?.stringMap ?? [:]).sorted(by: { $0.key < $1.key }) {
            requirements.append(.equals(key, value))
        }
        for expression in object["matchExpressions"]?.array ?? [] {
            let key = expression["key"]?.string ?? ""
            let values = expression["values"]?.array?.compactMap(\.string) ?? []
            switch expression["operator"]?.string {
            case "In": requirements.append(.isIn(key, values))
            case "NotIn": requirements.append(.notIn(key, values))
            case "Exists": requirements.append(.exists(key))
            case "DoesNotExist": requirements.append(.doesNotExist(key))
            default: return nil
            }
        }
        self.requirements = requirements
    }

    /// A selector of equalities, from a Service's `spec.selector` map.
    public init(equalities: [String: String]) {
        requirements = equalities.sorted { $0.key < $1.key }.map { .equals($0.key, $0.value) }
    }

    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .isIn(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(labels[key].map(values.contains) ?? false)
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            }
        }
    }

    /// Commas split terms except inside parentheses.
    static func splitTerms(_ text: String) -> [String] {
        var terms: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                terms.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        terms.append(current)
        return terms
    }
}

/// A field selector: `metadata.name=web`, `status.phase!=Running`.
public struct FieldSelector: Sendable, Equatable {
    var requirements: [(field: String, value: String, equal: Bool)]

    public static func == (left: FieldSelector, right: FieldSelector) -> Bool {
        left.requirements.map { "\($0.field)\($0.equal)\($0.value)" } == right.requirements.map { "\($0.field)\($0.equal)\($0.value)" }
    }

    public init(parsing text: String) throws(APIError) {
        var requirements: [(String, String, Bool)] = []
        for term in text.split(separator: ",") {
            let term = String(term)
            if let range = term.range(of: "!=") {
                requirements.append((String(term[..<range.lowerBound]), String(term[range.upperBound...]), false))
            } else if let range = term.range(of: "==") ?? term.range(of: "=") {
                requirements.append((String(term[..<range.lowerBound]), String(term[range.upperBound...]), true))
            } else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(term)'")
            }
        }
        self.requirements = requirements
    }

    public func matches(_ object: JSON) -> Bool {
        requirements.allSatisfy { requirement in
            let path = requirement.field.split(separator: ".").map(String.init)
            let value = object[path: path]
            let text: String =
                switch value {
                case .string(let text): text
                case .bool(let flag): flag ? "true" : "false"
                case .int(let number): String(number)
                default: ""
                }
            return (text == requirement.value) == requirement.equal
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
