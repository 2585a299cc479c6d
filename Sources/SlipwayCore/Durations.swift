import Foundation

/// Durations as people write them in pipeline files: `500ms`, `30s`, `5m`, `4h`, `1h30m`, `2d`.
public enum DurationParser {
    /// The longest duration a pipeline or a command line may write (366 days): anything longer is
    /// a typo, and every sum of durations on the run path stays far from overflowing.
    public static let maximum = Duration.seconds(366 * 86400)
    public static let maximumText = "366d"

    /// A duration up to ``maximum``; nil when the text is not one or is longer.
    public static func parse(_ text: String) -> Duration? {
        switch parseUnbounded(text) {
        case .some(let value) where value <= maximum: value
        default: nil
        }
    }

    /// Whether `text` is written as a duration, however long (to tell "too long" from "not a duration").
    public static func isDuration(_ text: String) -> Bool { parseUnbounded(text) != nil || parseOverflows(text) }

    private static func parseOverflows(_ text: String) -> Bool {
        let text = text.trimmingCharacters(in: .whitespaces)
        return !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isNumber || $0.isLetter || $0 == ".") } && text.first!.isNumber
            && text.contains { $0.isNumber }
    }

    private static func parseUnbounded(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let seconds = Int64(text) else { return nil }
            return .seconds(seconds)
        }
        var total = Duration.zero
        var number = ""
        var unit = ""
        func flush() -> Bool {
            guard let value = Double(number), value.isFinite else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return false
            }
            let milliseconds = (value * scale * 1000).rounded()
            // Past the maximum already: stop before the arithmetic can overflow.
            guard milliseconds <= Double(maximum / .milliseconds(1)) else { return false }
            total += .milliseconds(Int64(milliseconds))
            guard total <= maximum else { return false }
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if (character.isASCII && character.isNumber) || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isASCII && character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard !unit.isEmpty, flush() else { return nil }
        return total
    }

    /// `1h30m`, `5m`, `2.5s`, `300ms`: the short form people read.
    public static func format(_ duration: Duration) -> String {
        let ms = Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 {
            let tenths = (ms + 50) / 100
            return tenths % 10 == 0 ? "\(tenths / 10)s" : "\(tenths / 10).\(tenths % 10)s"
        }
        let seconds = ms / 1000
        let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60)
        return [h > 0 ? "\(h)h" : "", m > 0 ? "\(m)m" : "", s > 0 ? "\(s)s" : ""].joined()
    }
}

/// Sizes: `65536`, `512KiB`, `1MiB`, `1MB`, `2GiB`.
public enum SizeParser {
    /// The largest size a pipeline may write (1 TiB).
    public static let maximum = 1 << 40
    public static let maximumText = "1TiB"

    /// A size up to ``maximum``; nil when the text is not one or is larger.
    public static func parse(_ text: String) -> Int? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard let value = Int(digits), value <= maximum else { return nil }
        let multipliers: [String: Int] = [
            "": 1, "B": 1, "K": 1024, "KB": 1000, "KiB": 1024, "M": 1 << 20, "MB": 1_000_000, "MiB": 1 << 20,
            "G": 1 << 30, "GB": 1_000_000_000, "GiB": 1 << 30, "T": 1 << 40, "TB": 1_000_000_000_000, "TiB": 1 << 40,
        ]
        guard let multiplier = multipliers[text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)] else { return nil }
        let (size, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow || size > maximum ? nil : size
    }
}

extension Duration {
    /// Longer than anything a deploy can wait for (about 34,000 years): sums of user-written
    /// durations stop here instead of overflowing.
    public static let saturated = Duration.seconds(Int64(1) << 40)

    /// `self * count`, stopping at ``saturated``.
    public func saturatingTimes(_ count: Int) -> Duration {
        guard count > 0, self > .zero else { return .zero }
        return (self / .seconds(1)) * Double(count) >= Double(Int64(1) << 40) ? .saturated : self * count
    }

    /// `self + other`, stopping at ``saturated``.
    public func saturatingPlus(_ other: Duration) -> Duration {
        (self / .seconds(1)) + (other / .seconds(1)) >= Double(Int64(1) << 40) ? .saturated : self + other
    }
}

extension Sequence<Duration> {
    /// The sum, stopping at ``Duration/saturated``.
    public func saturatingSum() -> Duration { reduce(.zero) { $0.saturatingPlus($1) } }
}
