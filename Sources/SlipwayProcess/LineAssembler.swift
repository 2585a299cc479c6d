/// Turns a stream of byte chunks into masked lines of text.
///
/// Chunks arrive wherever a pipe read happened to stop, so a line, a UTF-8 character or a secret
/// may be split across two chunks. Lines are emitted only when complete (or when one grows past
/// `maximumLineLength`, in which case the assembler keeps back enough bytes that a secret straddling
/// the cut is still seen whole), so masking never sees half a secret.
public struct LineAssembler: Sendable {
    public let masker: SecretMasker
    public let maximumLineLength: Int
    private var pending: [UInt8] = []

    public init(masker: SecretMasker, maximumLineLength: Int = 64 * 1024) {
        self.masker = masker
        self.maximumLineLength = max(maximumLineLength, masker.longestSecret * 2)
    }

    /// Adds a chunk and returns the lines it completed, masked, without their line terminators.
    public mutating func append(_ chunk: some Sequence<UInt8>) -> [String] {
        pending.append(contentsOf: chunk)
        var lines: [String] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines.append(masked(pending[start..<end]))
            start = newline + 1
        }
        if start > 0 { pending.removeFirst(start) }
        if pending.count > maximumLineLength { lines.append(flushLongLine()) }
        return lines
    }

    /// Returns what is left once the stream has ended (a last line with no newline), if anything.
    public mutating func finish() -> String? {
        guard !pending.isEmpty else { return nil }
        defer { pending.removeAll() }
        return masked(pending[...])
    }

    private func masked(_ bytes: ArraySlice<UInt8>) -> String {
        let ranges = masker.occurrences(in: bytes)
        let clean = ranges.isEmpty ? Array(bytes) : masker.replacing(ranges, in: bytes)
        return String(decoding: clean, as: UTF8.self)
    }

    /// Emits most of an over-long line, keeping back a tail that may hold the start of a secret.
    private mutating func flushLongLine() -> String {
        let keep = max(masker.longestSecret - 1, 0)
        var cut = pending.count - keep
        for range in masker.occurrences(in: pending[...]) where range.contains(cut) && range.lowerBound != cut {
            cut = range.upperBound
        }
        // Never cut a UTF-8 character in two: back up to the start of a scalar.
        while cut > 0, cut < pending.count, pending[cut] & 0b1100_0000 == 0b1000_0000 { cut -= 1 }
        let head = masked(pending[..<cut])
        pending.removeFirst(cut)
        return head
    }
}
