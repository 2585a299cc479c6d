import Foundation
import SlipwayCore
import SlipwayPipeline
import Synchronization

/// Serialised writes to a file descriptor, so lines from concurrent streams never interleave.
public final class Console: Sendable {
    private let fd: Int32
    private let lock = Mutex(())

    public init(fd: Int32 = 1) { self.fd = fd }

    public static let standardOutput = Console(fd: STDOUT_FILENO)
    public static let standardError = Console(fd: STDERR_FILENO)

    public func write(_ text: String) {
        lock.withLock { _ in
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { buffer in
                    Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
            bytes.removeAll()
        }
    }

    public var isTerminal: Bool { isatty(fd) == 1 }
}

/// How output should look, decided once from the environment and the terminal.
public struct OutputStyle: Sendable, Hashable {
    /// A live view that redraws a status line.
    public var live: Bool
    public var colour: Bool

    public init(live: Bool, colour: Bool) {
        self.live = live
        self.colour = colour
    }

    /// A terminal outside CI gets the live view. Colour needs a terminal and no NO_COLOR (set and
    /// not empty, per no-color.org); CI gets plain lines.
    public static func detect(console: Console, environment: [String: String]) -> OutputStyle {
        let ci = environment["CI"].map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false
        let terminal = console.isTerminal && environment["TERM"] != "dumb"
        let noColor = !(environment["NO_COLOR"] ?? "").isEmpty
        return OutputStyle(live: terminal && !ci, colour: terminal && !ci && !noColor)
    }

    public func paint(_ text: String, _ code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    public func red(_ text: String) -> String { paint(text, "31") }
    public func green(_ text: String) -> String { paint(text, "32") }
    public func yellow(_ text: String) -> String { paint(text, "33") }
    public func blue(_ text: String) -> String { paint(text, "34") }
    public func dim(_ text: String) -> String { paint(text, "2") }
    public func bold(_ text: String) -> String { paint(text, "1") }
}
