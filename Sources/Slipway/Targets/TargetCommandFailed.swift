/// A command a target ran (docker, kubectl) that failed: its command line, how it ended and the
/// last lines it printed.
public struct TargetCommandFailed: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var termination: String
    public var output: String

    public init(command: String, termination: String, output: String) {
        self.command = command
        self.termination = termination
        self.output = output
    }

    public var description: String {
        let tail = output.split(separator: "\n").suffix(5).joined(separator: "\n    ")
        return "`\(command)` \(termination)" + (tail.isEmpty ? "" : ":\n    \(tail)")
    }
}
