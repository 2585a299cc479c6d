import Foundation

/// Durations as people write them in pipeline files: `500ms`, `30s`, `5m`, `4h`, `1h30m`, `2d`.
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if let seconds = Int(text) { return seconds >= 0 ? .seconds(seconds) : nil }
        var total = Duration.zero
        var number = ""
        var unit = ""
        func flush() -> Bool {
            guard let value = Double(number) else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return false
            }
            total += .milliseconds(Int64((value * scale * 1000).rounded()))
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isLetter {
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
    public static func parse(_ text: String) -> Int? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isNumber }
        guard let value = Int(digits) else { return nil }
        let multipliers: [String: Int] = [
            "": 1, "B": 1, "K": 1024, "KB": 1000, "KiB": 1024, "M": 1 << 20, "MB": 1_000_000, "MiB": 1 << 20,
            "G": 1 << 30, "GB": 1_000_000_000, "GiB": 1 << 30,
        ]
        guard let multiplier = multipliers[text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)] else { return nil }
        return value * multiplier
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
