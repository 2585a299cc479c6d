import Foundation

/// Files under /proc, read with open(2) and read(2) to their end.
///
/// Not Foundation's `String(contentsOfFile:)`: it stops after the first page of a /proc file,
/// whose size says 0 (/proc/net/unix on a machine with more than about fifty Unix sockets lost the
/// rest, and with it nginx's control socket); and when the process exits between the open and the
/// read, it fails and leaks its buffer (LeakSanitizer saw 4 KiB in `readBytesFromFile`).
public enum ProcFile {
    public static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every process id in /proc, read with readdir (no strings made for the entries).
    public static func processIDs() -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var pids: [Int32] = []
        while let entry = readdir(directory) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { name in decimal(name.prefix { $0 != 0 }) }
            if let pid { pids.append(pid) }
        }
        return pids
    }

    /// A process's state letter and process group from `/proc/<pid>/stat`, parsed from its bytes
    /// (after the command name's closing parenthesis: state, ppid, pgrp); nil once it is gone.
    public static func stateAndGroup(of pid: Int32) -> (state: UInt8, group: Int32)? {
        withSmallFile("/proc/\(pid)/stat") { bytes -> (UInt8, Int32)? in
            // ") S 123 456 ": the state, then ppid, then pgrp.
            guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.endIndex else { return nil }
            let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "), maxSplits: 3)
            guard fields.count > 3, let state = fields[0].first, let group = decimal(fields[2]) else { return nil }
            return (state, group)
        }
    }

    /// The last process id the kernel handed out (the last field of /proc/loadavg).
    public static func lastProcessID() -> Int32? {
        withSmallFile("/proc/loadavg") { bytes in
            // "0.10 0.05 0.01 1/123 45678\n": the digits after the last space.
            guard let space = bytes.lastIndex(of: UInt8(ascii: " ")) else { return nil }
            return decimal(bytes[(space + 1)...].prefix { $0 != UInt8(ascii: "\n") })
        }
    }

    /// Reads a /proc file of a few hundred bytes with one read(2) into a stack buffer, and hands
    /// `body` what was read (the sweep after every step reads these: no allocation per file).
    static func withSmallFile<T>(_ path: String, _ body: (UnsafeMutableBufferPointer<UInt8>.SubSequence) -> T?) -> T? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer -> T? in
            var count = 0
            repeat { count = Glibc.read(descriptor, buffer.baseAddress, buffer.count) } while count < 0 && errno == EINTR
            return count > 0 ? body(buffer[0..<count]) : nil
        }
    }

    /// A positive decimal number spelled by `bytes` (digits only), else nil.
    static func decimal(_ bytes: some Collection<UInt8>) -> Int32? {
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let value = bytes.reduce(Int32(0)) { $0 &* 10 &+ Int32($1 - 0x30) }
        return value > 0 ? value : nil
    }
}
