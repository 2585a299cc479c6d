import Foundation

/// Durations as people write them in pipeline files: `500ms`, `30s`, `5m`, `4h`, `1h30m`, `2d`.
public enum DurationParser {
    /// The longest duration a pipeline or a command line may write (366 days): anything longer is
    /// a typo, and every sum of durations on the run path stays far from overflowing.
    public static let maximum = Duration.seconds(366 * 86400)
    public static let maximumText = "366d"

    /// What a text says as a duration.
    public enum Reading: Sendable, Equatable {
        case duration(Duration)
        /// Written as a duration, but longer than ``maximum``.
        case tooLong
        case invalid
    }

    /// A duration up to ``maximum``; nil when the text is not one or is longer.
    public static func parse(_ text: String) -> Duration? {
        if case .duration(let value) = read(text) { value } else { nil }
    }

    /// Reads `text` (`90`, `1h30m`, `2.5s`); the sum is made in floating point, so no text can
    /// overflow it, and compared with ``maximum`` once.
    public static func read(_ text: String) -> Reading {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return .invalid }
        let scales: [String: Double] = ["ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400]
        var seconds = 0.0
        var number = ""
        var unit = ""
        func flush() -> Bool {
            // Plain digits are seconds.
            guard let value = Double(number), value.isFinite, let scale = unit.isEmpty ? 1 : scales[unit] else { return false }
            seconds += value * scale
            number = ""
            unit = ""
            return true
        }
        for character in text {
            if (character.isASCII && character.isNumber) || character == "." {
                if !unit.isEmpty { guard flush() else { return .invalid } }
                number.append(character)
            } else if character.isASCII && character.isLetter {
                guard !number.isEmpty else { return .invalid }
                unit.append(character)
            } else {
                return .invalid
            }
        }
        // A unit is needed unless the whole text is one plain whole number of seconds.
        guard !unit.isEmpty || text.allSatisfy({ $0.isASCII && $0.isNumber }), flush() else { return .invalid }
        guard seconds.isFinite, seconds <= Double(maximum / .seconds(1)) else { return .tooLong }
        return .duration(.milliseconds(Int64((seconds * 1000).rounded())))
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
