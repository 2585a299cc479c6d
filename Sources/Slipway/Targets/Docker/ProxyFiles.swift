import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The files of an environment's proxy directory, written so that a failure names the path and
/// the reason (`cannot write …/nginx.conf.next: Permission denied`) instead of a Foundation dump,
/// and a replacement is atomic (written beside, then renamed over).
enum ProxyFiles {
    struct Failure: Error, Sendable, CustomStringConvertible {
        var action: String
        var path: String
        var reason: String
        var description: String {
            "cannot \(action) \(path): \(reason)"
                + (reason.contains("ermission") || reason.contains("ead-only")
                    ? " (the proxy directory, beside the run store, must be writable by the user running deploy; --state or SLIPWAY_STATE moves both)"
                    : "")
        }
    }

    static func makeDirectory(_ path: String) throws(Failure) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
            let reason = underlying.map { String(cString: strerror(Int32($0.code))) } ?? error.localizedDescription
            throw Failure(action: "create", path: path, reason: reason)
        }
    }

    /// Writes `data` to `path` (created or truncated). By hand rather than `Data.write`: on Linux
    /// Foundation's error does not carry the system's reason, which the message must name.
    static func write(_ data: Data, to path: String) throws(Failure) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure(action: "write", path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return -1
                }
                offset += count
            }
            return offset
        }
        guard written == data.count else { throw Failure(action: "write", path: path, reason: String(cString: strerror(errno))) }
    }

    static func rename(_ from: String, to path: String) throws(Failure) {
        guard Glibc.rename(from, path) == 0 else { throw Failure(action: "replace", path: path, reason: String(cString: strerror(errno))) }
    }

    /// Writes `data` beside `path`, then renames it over: a reader sees the old file or the new one.
    static func replace(_ path: String, with data: Data) throws(Failure) {
        try write(data, to: path + ".next")
        try rename(path + ".next", to: path)
    }
}
