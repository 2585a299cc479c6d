import SlipwayCore
import SlipwayPipeline

/// An environment that cannot be deployed now: held by another deploy, locked by a person, or frozen.
public struct EnvironmentUnavailable: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?

    public init(message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message)\n    hint: \($0)" } ?? message }
}
