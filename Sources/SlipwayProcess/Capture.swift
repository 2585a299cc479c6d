import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension ProcessLaunching {
    /// Runs `spec` to completion and returns how it ended with everything it printed (masked),
    /// one line per line; `onLine` sees each line as it arrives.
    public func capture(
        _ spec: ProcessSpec, masker: SecretMasker = .none, onLine: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> (termination: ProcessTermination, output: String) {
        let lines = Mutex<[String]>([])
        let termination = try await run(
            spec, masker: masker, onStart: { _ in },
            onOutput: { line in
                lines.withLock { $0.append(line.text) }
                onLine(line.text)
            })
        return (termination, lines.withLock { $0.joined(separator: "\n") })
    }
}

/// Ports on the loopback interface.
public enum LoopbackPort {
    /// A TCP port on 127.0.0.1 that nobody listens on now (bound, read and released).
    public static func free() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
