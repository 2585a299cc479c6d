public import Foundation
import SlipwayCore

/// A window when an environment takes no deploys: a fixed period, or a weekly one, in a time zone.
public struct FreezeWindow: Sendable, Hashable {
    public enum Period: Sendable, Hashable {
        /// From one moment to another (local times in `zone`).
        case dates(from: DateComponents, to: DateComponents)
        /// Every week: from a day and time to a day and time (wrapping over the weekend is fine).
        case weekly(fromDay: Int, fromMinute: Int, toDay: Int, toMinute: Int)
    }

    public var period: Period
    public var zone: TimeZone
    public var reason: String
    public var location: SourceLocation?

    public init(period: Period, zone: TimeZone, reason: String, location: SourceLocation? = nil) {
        self.period = period
        self.zone = zone
        self.reason = reason
        self.location = location
    }

    /// Days as the pipeline spells them, Sunday first (Calendar's weekday 1).
    public static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// True when `date` falls inside the window.
    public func contains(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        switch period {
        case .dates(let from, let to):
            guard let start = calendar.date(from: from), let end = calendar.date(from: to) else { return false }
            return start <= date && date < end
        case .weekly(let fromDay, let fromMinute, let toDay, let toMinute):
            let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
            let minuteOfWeek = ((parts.weekday! - 1) * 24 * 60) + parts.hour! * 60 + parts.minute!
            let start = fromDay * 24 * 60 + fromMinute
            let end = toDay * 24 * 60 + toMinute
            return start <= end ? (start <= minuteOfWeek && minuteOfWeek < end) : (minuteOfWeek >= start || minuteOfWeek < end)
        }
    }

    /// `weekly fri 16:00 – mon 08:00 Europe/Paris` or `2026-12-20 00:00 – 2027-01-02 00:00 UTC`.
    public var description: String {
        switch period {
        case .dates(let from, let to):
            func text(_ c: DateComponents) -> String {
                String(format: "%04d-%02d-%02d %02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
            }
            return "\(text(from)) – \(text(to)) \(zone.identifier)"
        case .weekly(let fromDay, let fromMinute, let toDay, let toMinute):
            return String(
                format: "weekly %@ %02d:%02d – %@ %02d:%02d %@", Self.dayNames[fromDay], fromMinute / 60, fromMinute % 60,
                Self.dayNames[toDay], toMinute / 60, toMinute % 60, zone.identifier)
        }
    }
}
