import Foundation

/// What to run: an argv array, never a shell string.
public struct ProcessSpec: Sendable, Hashable {
    /// The program: a path, or a name looked up on `PATH` of `environment`.
    public var executable: String
    public var arguments: [String]
    /// The child's whole environment (the caller decides what it inherits).
    public var environment: [String: String]
    public var workingDirectory: String?
    /// Ends the child's process group once this long has passed.
    public var timeout: Duration?
    /// How long the group has between SIGTERM and SIGKILL when it is stopped.
    public var gracePeriod: Duration
    /// Leave running what the child started in its process group once it exits (a daemon started
    /// on purpose). Otherwise the group is stopped when the child exits, and the output says so.
    public var keepBackground: Bool

    public init(
        executable: String,
        arguments: [String] = [],
        environment: [String: String],
        workingDirectory: String? = nil,
        timeout: Duration? = nil,
        gracePeriod: Duration = .seconds(5),
        keepBackground: Bool = false
    ) {
        self.keepBackground = keepBackground
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
        self.gracePeriod = gracePeriod
    }

    /// The argv as one line for people to read (quoted where needed); never handed to a shell.
    public var displayCommand: String {
        ([executable] + arguments).map(Self.quoteForDisplay).joined(separator: " ")
    }

    public static func quoteForDisplay(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@+%".contains($0) }
        if plain && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// Which pipe a line came from.
public enum OutputStream: String, Sendable, Codable {
    case stdout
    case stderr
}

/// One line of a child's output, already masked.
public struct OutputLine: Sendable, Hashable {
    public var stream: OutputStream
    public var text: String

    public init(stream: OutputStream, text: String) {
        self.stream = stream
        self.text = text
    }
}

/// How a child ended.
public enum ProcessTermination: Sendable, Hashable, CustomStringConvertible {
    /// It exited by itself with this status.
    case exited(Int32)
    /// A signal ended it (not one of ours).
    case signalled(Int32)
    /// Its timeout passed and we stopped its process group.
    case timedOut
    /// The run was cancelled (Ctrl-C, SIGTERM) and we stopped its process group.
    case cancelled

    public var succeeded: Bool { self == .exited(0) }

    /// The exit code a shell would report (128 + signal for a signal).
    public var exitCode: Int32? {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        case .timedOut, .cancelled: nil
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        case .timedOut: "timed out"
        case .cancelled: "cancelled"
        }
    }
}

/// A child that could not be started at all.
public struct ProcessLaunchError: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var reason: String

    public init(command: String, reason: String) {
        self.command = command
        self.reason = reason
    }

    public var description: String { "cannot start \(command): \(reason)" }
}
