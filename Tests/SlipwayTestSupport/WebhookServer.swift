import Foundation
import Synchronization

/// A tiny HTTP server on 127.0.0.1 for webhook and gate tests: it answers each request with the
/// next status from its script (the last one repeats) and a fixed body, and keeps the bodies it was sent.
public final class WebhookServer: Sendable {
    public let port: UInt16
    private let socket: Int32
    private let statuses: [Int]
    private let responseBody: String
    private let received = Mutex<[Data]>([])
    private let done = DispatchSemaphore(value: 0)

    public init(statuses: [Int], responseBody: String = "") throws {
        self.statuses = statuses
        self.responseBody = responseBody
        (socket, port) = try LoopbackListener.open()
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    public var url: String { "http://127.0.0.1:\(port)/hook" }

    /// The request bodies received so far, decoded as JSON objects.
    public var bodies: [[String: Any]] {
        received.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    public var requestCount: Int { received.withLock { $0.count } }

    /// Stops accepting and waits for the serving thread to end.
    public func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
        done.wait()
    }

    private func serve() {
        defer { done.signal() }
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 { return }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var bodyStart: Int?
        var length = 0
        while true {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
            if bodyStart == nil, let range = data.range(of: Data("\r\n\r\n".utf8)) {
                bodyStart = range.upperBound
                let header = String(decoding: data[..<range.lowerBound], as: UTF8.self).lowercased()
                for line in header.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let start = bodyStart, data.count - start >= length { break }
        }
        let body = bodyStart.map { Data(data[$0...]) } ?? Data()
        let index = received.withLock { list -> Int in
            list.append(body)
            return list.count - 1
        }
        let status = statuses[min(index, statuses.count - 1)]
        let response = "HTTP/1.1 \(status) Status\r\nContent-Length: \(responseBody.utf8.count)\r\nConnection: close\r\n\r\n\(responseBody)"
        _ = response.withCString { write(client, $0, strlen($0)) }
    }
}

/// A TCP socket listening on 127.0.0.1, on a port the kernel picks.
enum LoopbackListener {
    static func open() throws -> (socket: Int32, port: UInt16) {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DeployProcessError(message: "socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw DeployProcessError(message: "bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}
