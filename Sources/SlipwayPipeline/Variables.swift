import Foundation
import SlipwayCore

/// `${NAME}` references in argv elements and gate settings.
///
/// Expansion replaces a reference by the value as one piece of one argument: no word splitting,
/// no globbing, no shell. `$${` stands for a literal `${`.
public enum Variables {
    /// The names every step can use, with what they hold.
    public static let builtins: [(name: String, meaning: String)] = [
        ("VERSION", "the release's version (a tag such as 1.4.2, or describe-style 1.4.2-3-gabc1234)"),
        ("SHA", "the release's full git commit id"),
        ("SHORT_SHA", "the first 7 characters of SHA"),
        ("ENV", "the environment being deployed"),
        ("RUN_ID", "this run's id in the run store"),
        ("APP", "the pipeline's app name"),
        ("IMAGE", "the pipeline's image repository"),
        ("STAGE", "the name of the stage running"),
    ]

    /// Names only gates can use: the new release's own address (straight to its container), the
    /// environment's address (through the proxy, where users reach it), and the measured
    /// instance's name (the `slipway_instance` label its metrics carry).
    public static let gateOnly = ["TARGET_URL", "SERVICE_URL", "INSTANCE"]

    /// Every built-in name, also under its `DEPLOY_` spelling (the environment variables steps get).
    public static var builtinNames: [String] {
        builtins.map(\.name) + builtins.map { "DEPLOY_" + $0.name }
    }

    public struct Reference: Sendable, Hashable {
        public var name: String
        /// Offset of the `$` in the string, in characters.
        public var offset: Int
    }

    public enum ScanError: Error, Sendable, Hashable {
        case unterminated(offset: Int)
        case badName(String, offset: Int)
    }

    /// The references in `text`, or the first malformed one.
    public static func references(in text: String) -> Result<[Reference], ScanError> {
        var found: [Reference] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            if chars[i] == "$", i + 2 < chars.count, chars[i + 1] == "$", chars[i + 2] == "{" {
                i += 3
                continue
            }
            if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "{" {
                guard let close = chars[(i + 2)...].firstIndex(of: "}") else { return .failure(.unterminated(offset: i)) }
                let name = String(chars[(i + 2)..<close])
                guard isValidName(name) else { return .failure(.badName(name, offset: i)) }
                found.append(Reference(name: name, offset: i))
                i = close + 1
                continue
            }
            i += 1
        }
        return .success(found)
    }

    /// Replaces every reference by its value; a name with no value is an error naming it.
    public static func expand(_ text: String, with values: [String: String]) throws(UnknownVariable) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            if chars[i] == "$", i + 2 < chars.count, chars[i + 1] == "$", chars[i + 2] == "{" {
                result += "${"
                i += 3
                continue
            }
            if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "{", let close = chars[(i + 2)...].firstIndex(of: "}") {
                let name = String(chars[(i + 2)..<close])
                guard let value = values[name] else { throw UnknownVariable(name: name) }
                result += value
                i = close + 1
                continue
            }
            result.append(chars[i])
            i += 1
        }
        return result
    }

    public struct UnknownVariable: Error, Sendable, CustomStringConvertible {
        public var name: String
        public var description: String { "variable ${\(name)} has no value in this run" }
    }

    /// Environment-variable style: a letter or underscore, then letters, digits, underscores.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }
}
