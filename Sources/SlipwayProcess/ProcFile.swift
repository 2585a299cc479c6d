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
            var pid: Int32 = 0
            var numeric = true
            withUnsafeBytes(of: entry.pointee.d_name) { name in
                for byte in name {
                    if byte == 0 { break }
                    guard byte >= 0x30, byte <= 0x39 else {
                        numeric = false
                        break
                    }
                    pid = pid &* 10 &+ Int32(byte - 0x30)
                }
            }
            if numeric, pid > 0 { pids.append(pid) }
        }
        return pids
    }

    /// A process's state letter and process group from `/proc/<pid>/stat`, parsed from its bytes
    /// (after the command name's closing parenthesis: state, ppid, pgrp); nil once it is gone.
    public static func stateAndGroup(of pid: Int32) -> (state: UInt8, group: Int32)? {
        let descriptor = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer -> (UInt8, Int32)? in
            var count = 0
            repeat { count = Glibc.read(descriptor, buffer.baseAddress, buffer.count) } while count < 0 && errno == EINTR
            guard count > 0, let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
            // ") S 123 456 ": the state, then ppid, then pgrp.
            var index = close + 2
            guard index < count else { return nil }
            let state = buffer[index]
            var field = 0
            var group: Int32 = 0
            index += 1
            while index < count {
                let byte = buffer[index]
                if byte == UInt8(ascii: " ") {
                    field += 1
                    if field == 3 { return (state, group) }
                } else if field == 2 {
                    group = group &* 10 &+ Int32(byte &- 0x30)
                }
                index += 1
            }
            return nil
        }
    }

    /// The last process id the kernel handed out (the last field of /proc/loadavg).
    public static func lastProcessID() -> Int32? {
        let descriptor = open("/proc/loadavg", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer -> Int32? in
            var count = 0
            repeat { count = Glibc.read(descriptor, buffer.baseAddress, buffer.count) } while count < 0 && errno == EINTR
            // "0.10 0.05 0.01 1/123 45678\n": the digits after the last space.
            guard count > 0, let space = buffer[0..<count].lastIndex(of: UInt8(ascii: " ")) else { return nil }
            var pid: Int32 = 0
            for byte in buffer[(space + 1)..<count] where byte >= 0x30 && byte <= 0x39 { pid = pid &* 10 &+ Int32(byte - 0x30) }
            return pid > 0 ? pid : nil
        }
    }
}
