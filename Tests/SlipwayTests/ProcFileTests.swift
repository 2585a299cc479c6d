import Foundation
import Slipway
import SlipwayTestSupport
import Testing

/// /proc files are read to their end (their size says 0; Foundation stops after one page).
@Suite("Reading /proc")
struct ProcFileTests {
    @Test("/proc/net/unix is read whole: a socket bound after hundreds of others is found")
    func unixTableWhole() throws {
        let directory = try TemporaryDirectory("proc-unix")
        defer { directory.remove() }
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        for index in 0..<300 {
            let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            try #require(descriptor >= 0)
            descriptors.append(descriptor)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = directory.file("s\(index)")
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                path.utf8CString.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(buffer.count))) }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(bound == 0)
            listen(descriptor, 1)
        }
        let table = try #require(NginxRouter.readProcFile("/proc/net/unix"))
        #expect(table.contains(directory.file("s0")))
        #expect(table.contains(directory.file("s299")))
        #expect(table.split(separator: "\n").count > 300)
    }
}
