import Foundation
import SlipwayCore
import Yams

// An environment's `freeze:` windows.
extension PipelineReader {
    func freezeList(_ node: Node) -> [FreezeWindow] {
        let example =
            "e.g. `- { from: \"2026-12-20 00:00\", to: \"2027-01-02 00:00\", zone: Europe/Paris, reason: holidays }` "
            + "or `- { weekly: { from: \"fri 16:00\", to: \"mon 08:00\" }, zone: America/New_York, reason: weekend }`"
        guard let items = sequence(node, "freeze", hint: example) else { return [] }
        var windows: [FreezeWindow] = []
        for item in items {
            guard let pairs = mapping(item, "a freeze window", hint: example) else { continue }
            checkKeys(pairs, allowed: ["from", "to", "weekly", "zone", "reason"], in: "a freeze window")
            var zone = TimeZone(identifier: "UTC")!
            if let zoneNode = pairs["zone"], let name = string(zoneNode, "zone") {
                if let found = TimeZone(identifier: name) {
                    zone = found
                } else {
                    error(zoneNode, "unknown time zone '\(name)'", hint: "use an IANA name such as Europe/Paris, America/New_York or UTC")
                }
            }
            let reason = pairs["reason"].flatMap { string($0, "reason") } ?? "freeze"
            if let weekly = pairs["weekly"] {
                guard let w = mapping(weekly, "weekly", hint: "e.g. `weekly: { from: \"fri 16:00\", to: \"mon 08:00\" }`") else { continue }
                checkKeys(w, allowed: ["from", "to"], in: "weekly")
                guard
                    let from = required(w, "from", in: weekly, context: "weekly", hint: "a day and time: \"fri 16:00\"").flatMap({
                        dayTime($0)
                    }),
                    let to = required(w, "to", in: weekly, context: "weekly", hint: "a day and time: \"mon 08:00\"").flatMap({ dayTime($0) }
                    )
                else { continue }
                windows.append(
                    FreezeWindow(
                        period: .weekly(fromDay: from.0, fromMinute: from.1, toDay: to.0, toMinute: to.1), zone: zone,
                        reason: reason, location: location(item)))
            } else {
                guard let from = required(pairs, "from", in: item, context: "a freeze window", hint: example).flatMap({ localTime($0) }),
                    let to = required(pairs, "to", in: item, context: "a freeze window", hint: example).flatMap({ localTime($0) })
                else { continue }
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = zone
                if let start = calendar.date(from: from), let end = calendar.date(from: to), end <= start, let toNode = pairs["to"] {
                    error(toNode, "this freeze window ends before it starts", hint: "`to` must be later than `from`")
                    continue
                }
                windows.append(FreezeWindow(period: .dates(from: from, to: to), zone: zone, reason: reason, location: location(item)))
            }
        }
        return windows
    }

    /// `fri 16:00` → (5, 960).
    func dayTime(_ node: Node) -> (Int, Int)? {
        guard let text = string(node, "a day and time") else { return nil }
        let parts = text.lowercased().split(separator: " ")
        guard parts.count == 2, let day = FreezeWindow.dayNames.firstIndex(of: String(parts[0].prefix(3))),
            let minute = minuteOfDay(parts[1])
        else {
            error(node, "'\(text)' is not a day and time", hint: "write a day and a 24-hour time, e.g. \"fri 16:00\"")
            return nil
        }
        return (day, minute)
    }

    func minuteOfDay(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else {
            return nil
        }
        return h * 60 + m
    }

    /// `2026-12-20 00:00` (or `2026-12-20`) as calendar components, read in the window's zone later.
    func localTime(_ node: Node) -> DateComponents? {
        guard let text = string(node, "a date and time") else { return nil }
        let parts = text.split(separator: " ")
        let date = parts.first.map { $0.split(separator: "-").compactMap { Int($0) } } ?? []
        let minute = parts.count > 1 ? minuteOfDay(parts[1]) : 0
        guard date.count == 3, parts.count <= 2, let minute else {
            error(
                node, "'\(text)' is not a date and time", hint: "write \"YYYY-MM-DD HH:MM\" in the window's zone, e.g. \"2026-12-20 18:00\""
            )
            return nil
        }
        let components = DateComponents(year: date[0], month: date[1], day: date[2], hour: minute / 60, minute: minute % 60)
        // The calendar would roll 2026-02-30 over into March: a date must exist as written.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard (1...9999).contains(date[0]), (1...12).contains(date[1]),
            let day = calendar.date(from: DateComponents(year: date[0], month: date[1], day: 1)),
            let days = calendar.range(of: .day, in: .month, for: day), days.contains(date[2])
        else {
            error(
                node, "'\(text)' is not a date that exists",
                hint: "write \"YYYY-MM-DD HH:MM\" with a real month and day, e.g. \"2026-12-20 18:00\"")
            return nil
        }
        return components
    }
}
