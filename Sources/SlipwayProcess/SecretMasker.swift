/// Replaces every occurrence of a secret value with `***`.
///
/// Longer secrets are matched first, so a secret that contains another is masked whole.
/// A multi-line secret is also masked line by line, because output is handled a line at a time.
public struct SecretMasker: Sendable {
    /// What stands in place of a secret.
    public static let mask = "***"

    /// Values shorter than this are not treated as secrets: masking `a` or `1` would mangle every line.
    public static let minimumLength = 3

    let secrets: [[UInt8]]

    /// The longest secret in bytes; a streaming reader keeps this many bytes minus one in hand.
    public var longestSecret: Int { secrets.first?.count ?? 0 }

    public init(secrets: some Sequence<String>) {
        var values = Set<String>()
        for secret in secrets where secret.utf8.count >= Self.minimumLength {
            values.insert(secret)
            for line in secret.split(whereSeparator: \.isNewline) where line.utf8.count >= Self.minimumLength {
                values.insert(String(line))
            }
        }
        self.secrets = values.map { Array($0.utf8) }.sorted { $0.count > $1.count }
    }

    /// An empty masker that masks nothing.
    public static let none = SecretMasker(secrets: [])

    public var isEmpty: Bool { secrets.isEmpty }

    /// The text with every secret replaced.
    public func mask(_ text: String) -> String {
        guard !isEmpty else { return text }
        let bytes = Array(text.utf8)
        let ranges = occurrences(in: bytes[...])
        guard !ranges.isEmpty else { return text }
        return String(decoding: replacing(ranges, in: bytes[...]), as: UTF8.self)
    }

    /// The byte ranges of every secret in `bytes`, left to right, not overlapping.
    func occurrences(in bytes: ArraySlice<UInt8>) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var index = bytes.startIndex
        search: while index < bytes.endIndex {
            for secret in secrets where bytes.endIndex - index >= secret.count {
                if bytes[index] == secret[0], bytes[index..<index + secret.count].elementsEqual(secret) {
                    found.append(index..<index + secret.count)
                    index += secret.count
                    continue search
                }
            }
            index += 1
        }
        return found
    }

    func replacing(_ ranges: [Range<Int>], in bytes: ArraySlice<UInt8>) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var cursor = bytes.startIndex
        for range in ranges {
            result.append(contentsOf: bytes[cursor..<range.lowerBound])
            result.append(contentsOf: Self.mask.utf8)
            cursor = range.upperBound
        }
        result.append(contentsOf: bytes[cursor..<bytes.endIndex])
        return result
    }
}
