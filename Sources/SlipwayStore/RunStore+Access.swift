import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// How every access of a ``RunStore`` reaches the database: off the concurrency pool, to its end
/// even when the caller is cancelled, and with errors that say what the store was doing.
extension RunStore {
    /// Where database accesses run: off the Swift concurrency pool (a busy database blocks a thread
    /// of this queue, never one of the two cooperative threads of a two-core machine), and to
    /// their end even when the calling task is cancelled, since a run being stopped (Ctrl-C,
    /// SIGTERM) must still record how far it got. GRDB's own async calls stop at cancellation and
    /// cost a task per access; this costs one hop.
    static let accessQueue = DispatchQueue(label: "slipway.store", attributes: .concurrent)

    func uncancellable<T: Sendable>(_ access: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Self.accessQueue.async { continuation.resume(with: Result { try access() }) }
        }
    }

    func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await uncancellable { try self.writer.read(body) } } catch let error as StoreError { throw error } catch {
            throw storeError(operation, error)
        }
    }

    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            if let done = try writeUnlessBusy(body) { return done }
            return try await uncancellable { try self.writer.write(body) }
        } catch let error as StoreError { throw error } catch {
            throw storeError(operation, error)
        }
    }

    /// The write on the calling thread when no other connection holds the database's write lock
    /// (nearly always: a step's start and end are a few statements, and WAL lets readers be):
    /// no hop to the access queue and back, which was most of what recording a step cost. Nil,
    /// with nothing written, when the lock is held: the caller then waits on the access queue, off
    /// the concurrency pool. The calling thread can still be held by an occasional WAL checkpoint.
    private func writeUnlessBusy<T>(_ body: (Database) throws -> T) throws -> T? {
        guard let wait = busyTimeoutMS else { return nil }
        return try writer.writeWithoutTransaction { db in
            // Cached: every step's records pass here.
            if wait > 0 { try db.cachedStatement(sql: "PRAGMA busy_timeout = 0").execute() }
            defer { if wait > 0 { try? db.cachedStatement(sql: "PRAGMA busy_timeout = \(wait)").execute() } }
            do {
                try db.beginTransaction(.immediate)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return nil
            }
            do {
                let value = try body(db)
                try db.commit()
                return value
            } catch {
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
        }
    }

    /// What went wrong, in words: a store held busy past the wait names the processes that have it open.
    func storeError(_ operation: String, _ error: any Error) -> StoreError {
        Self.storeError(operation, error, path: writer.path)
    }

    static func storeError(_ operation: String, _ error: any Error, path: String) -> StoreError {
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            let holders = Self.processes(holding: path).filter { $0 != getpid() }
            return StoreError(
                operation: operation,
                underlying: "the run store \(path) stayed locked by another process past the wait"
                    + (holders.isEmpty ? "" : " (open in pid \(holders.map(String.init).joined(separator: ", ")))")
                    + "; nothing was recorded: try again, or wait longer with --wait",
                isBusy: true)
        }
        return StoreError(operation: operation, underlying: "\(error)")
    }

    /// The processes that have `path` open, from /proc (those this user may look into).
    static func processes(holding path: String) -> [Int32] {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return fds.contains { fd in (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) == target }
        }.sorted()
    }
}
