import Foundation

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
        var said = Data()
        while !String(decoding: said, as: UTF8.self).contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said.append(chunk)
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Ends sqlite3's input: it rolls back, lets go of the lock and exits.
    public func release() throws {
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
