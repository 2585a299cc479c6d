import CLibGit2
import Foundation

/// A libgit2 call that failed: which operation, and libgit2's own message.
public struct GitError: Error, Sendable, CustomStringConvertible {
    /// What we were doing (`opening the repository at /path`, `reading HEAD`).
    public var operation: String
    /// libgit2's message (`git_error_last`), or a sentence of ours.
    public var message: String
    /// libgit2's error code (`GIT_ENOTFOUND` …), when the failure came from libgit2.
    public var code: Int32?

    public init(operation: String, message: String, code: Int32? = nil) {
        self.operation = operation
        self.message = message
        self.code = code
    }

    public var description: String { "git: \(operation): \(message)" }

    /// An object the repository does not have (a shallow or partial clone, a rewritten history).
    public var isMissingObject: Bool { code == GIT_ENOTFOUND.rawValue }

    /// Turns a libgit2 return code into a thrown error, reading `git_error_last` at once.
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(GitError) {
        guard code < 0 else { return }
        throw GitError(operation: operation(), message: lastMessage() ?? "libgit2 error \(code)", code: code)
    }

    static func lastMessage() -> String? {
        guard let error = git_error_last(), let message = error.pointee.message else { return nil }
        return String(cString: message)
    }
}

/// libgit2 is initialised once per process and never shut down (1.5 reads freed memory after the
/// count returns to zero).
enum LibGit2 {
    private static let initialised: Bool = {
        git_libgit2_init()
        // Every walk here reads a commit once (a changelog of 50,000 commits kept them all,
        // 60 MiB, for nothing): commits are not cached; trees and blobs still are.
        _ = slipway_git_set_commit_cache_limit(0)
        // Each object read was hashed again to check its id (SHA-1 with collision detection, a
        // tenth of a long changelog): git itself checks ids in `git fsck`, not on every read.
        _ = slipway_git_set_strict_hash_verification(0)
        return true
    }()

    static func ensureInitialised() { _ = initialised }

    /// Starts libgit2 on a thread of its own. Most of its start is reading the system's CA
    /// bundle for TLS (libgit2 1.5 with mbedTLS parses every certificate at init), which deploy
    /// never uses; a command that will read git starts it while it parses its arguments.
    static func initialiseInBackground() {
        Thread { ensureInitialised() }.start()
    }

    /// Opens repositories whatever their owner: called only once git's own `safe.directory`
    /// configuration has said so (libgit2 1.5 does not understand `*`).
    static func trustForeignOwners() { _ = slipway_git_set_owner_validation(0) }
}
