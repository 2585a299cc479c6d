import SlipwayCore
import SlipwayPipeline

/// Keeps a step's output for the run record: whole up to `limit` bytes, then the first and last
/// halves with a marker saying how much was left out.
public struct OutputCapture: Sendable {
    public let limit: Int
    private var head: [String] = []
    private var headBytes = 0
    private var tail: [String] = []
    private var tailStart = 0
    private var tailBytes = 0
    private var droppedLines = 0
    private var droppedBytes = 0
    public private(set) var totalBytes = 0

    public init(limit: Int) { self.limit = max(limit, 256) }

    public var truncated: Bool { droppedLines > 0 }

    public mutating func append(_ line: String) {
        let size = line.utf8.count + 1
        totalBytes += size
        if tail.isEmpty, headBytes + size <= limit / 2 {
            head.append(line)
            headBytes += size
            return
        }
        tail.append(line)
        tailBytes += size
        while tailBytes > limit - limit / 2, tail.count - tailStart > 1 {
            tailBytes -= tail[tailStart].utf8.count + 1
            droppedBytes += tail[tailStart].utf8.count + 1
            droppedLines += 1
            tailStart += 1
        }
        if tailStart > 1024 {
            tail.removeFirst(tailStart)
            tailStart = 0
        }
    }

    /// The text to record.
    public var text: String {
        var lines = head
        if droppedLines > 0 {
            lines.append(
                "[… \(droppedLines) lines (\(droppedBytes) bytes) left out; the record keeps the first and last \(limit / 2) bytes …]")
        }
        lines += tail[tailStart...]
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }
}
