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
}
