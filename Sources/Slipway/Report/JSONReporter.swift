import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore

/// One JSON object per line for machines: `{"event":"stage.started","time":"…",…}`.
public struct JSONReporter: Reporting {
    let console: Console

    public init(console: Console = .standardOutput) { self.console = console }

    public func report(_ event: RunEvent) {
        guard let data = try? Self.encoder.encode(Line(event: event, time: Date().formatted(.iso8601))) else { return }
        console.write(String(decoding: data, as: UTF8.self) + "\n")
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The event's own fields, and when it was reported.
    struct Line: Encodable {
        var event: RunEvent
        var time: String
        enum Key: String, CodingKey { case time }
        func encode(to encoder: any Encoder) throws {
            try event.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(time, forKey: .time)
        }
    }
}
