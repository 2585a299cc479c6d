import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess

/// Whether a process id belongs to a live process (a zombie counts as dead).
public enum ProcessLiveness {
    public static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno != EPERM { return false }
        #if os(Linux)
            // /proc/<pid>/stat: "pid (comm) S …"; the state follows the last ')'.
            if let stat = ProcFile.read("/proc/\(pid)/stat"),
                let close = stat.lastIndex(of: ")")
            {
                let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
                return state != "Z" && state != "X"
            }
        #endif
        return true
    }

    /// Kills the process group led by `pid` if that process is still alive and still leads its own
    /// session (as every step's child does), which guards against a reused pid. Returns whether it did.
    @discardableResult
    public static func stopOrphanedGroup(_ pid: Int32) -> Bool {
        guard isAlive(pid), leadsOwnSession(pid) else { return false }
        return kill(-pid, SIGKILL) == 0
    }

    static func leadsOwnSession(_ pid: Int32) -> Bool {
        #if os(Linux)
            guard let stat = ProcFile.read("/proc/\(pid)/stat"),
                let close = stat.lastIndex(of: ")")
            else { return false }
            // After "(comm)": state ppid pgrp session …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let group = Int32(fields[2]), let session = Int32(fields[3]) else { return false }
            return group == pid && session == pid
        #else
            return getpgid(pid) == pid
        #endif
    }
}

/// This machine's name, from gethostname(2): no DNS look-up, which can hang when the network is
/// the thing that is broken.
public enum HostName {
    public static var current: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
