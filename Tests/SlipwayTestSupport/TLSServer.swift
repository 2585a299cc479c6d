import Foundation

/// `openssl s_server` serving a fresh self-signed certificate valid for `days`, on a free port.
public struct TLSServer: Sendable {
    public let directory: TemporaryDirectory
    public let process: DeployProcess
    public let port: UInt16
    public var url: String { "https://127.0.0.1:\(port)" }

    public static func start(days: Int) async throws -> TLSServer {
        let directory = try TemporaryDirectory("checklist-tls")
        _ = try await GitFixture.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", String(days), "-subj", "/CN=slipway-test",
                "-keyout", directory.file("key.pem"), "-out", directory.file("cert.pem"),
            ], in: directory.path)
        let port = try ContainerServices.freePort()
        let process = try DeployProcess(
            executable: "/usr/bin/openssl",
            arguments: [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", directory.file("cert.pem"), "-key", directory.file("key.pem"), "-www",
            ], directory: directory.path, environment: [:])
        // It says ACCEPT once it listens.
        guard await process.waitForLine(containing: "ACCEPT") else {
            process.signal(SIGKILL)
            throw DeployProcessError(message: "openssl s_server did not start: \(process.output.joined(separator: "\n"))")
        }
        return TLSServer(directory: directory, process: process, port: port)
    }

    public func stop() async {
        process.signal(SIGTERM)
        _ = try? await process.wait()
        directory.remove()
    }
}
