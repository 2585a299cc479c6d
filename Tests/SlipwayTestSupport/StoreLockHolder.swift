import Foundation
import Synchronization

/// Another process (the sqlite3 command) holding a database's write lock until `release()`:
/// how a long `sqlite3` session or a backup keeps a run store busy.
public final class StoreLockHolder: Sendable {
    private let process: Process
    private let input: Pipe

    /// Returns once sqlite3 holds the lock (it says so).
    public init(_ path: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path]
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("BEGIN IMMEDIATE;\nSELECT 'locked';\n".utf8))
        // Ready once sqlite3 says so; it has 20 seconds.
        let ready = DispatchSemaphore(value: 0)
        let said = Mutex(Data())
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            let done = said.withLock { data in
                data.append(chunk)
                return chunk.isEmpty || String(decoding: data, as: UTF8.self).contains("locked")
            }
            if done {
                handle.readabilityHandler = nil
                ready.signal()
            }
        }
        guard ready.wait(timeout: .now() + 20) == .success, String(decoding: said.withLock { $0 }, as: UTF8.self).contains("locked") else {
            process.terminate()
            throw DeployProcessError(message: "sqlite3 did not take the lock of \(path) within 20 s")
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Ends sqlite3's input: it rolls back, lets go of the lock and exits.
    public func release() throws {
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
