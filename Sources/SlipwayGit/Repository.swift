import CLibGit2
import Foundation

/// An open git repository. Owns its libgit2 handle and frees it exactly once; nothing of libgit2
/// leaves this module.
public final class Repository {
    let handle: OpaquePointer
    /// The working directory (nil for a bare repository).
    public let workdir: String?
    /// The `.git` directory.
    public let gitdir: String
    private var cachedTags: [Tag]?
    /// A shallow clone's hand walks, by start and mode (each is the whole reachable history).
    private var reachableCache: [String: [(sha: String, time: Int64)]] = [:]

    /// Opens the repository containing `path`, searching upwards as git does. A repository owned
    /// by another user is opened when git's own `safe.directory` (in the global or system
    /// configuration: `*` or that directory) trusts it, and refused with git's explanation
    /// otherwise, as git does (libgit2 1.5 neither knows `*` nor says why).
    public init(discoveringFrom path: String) throws(GitError) {
        LibGit2.ensureInitialised()
        var repository: OpaquePointer?
        var code = git_repository_open_ext(&repository, path, 0, nil)
        if code < 0, let foreign = Self.foreignRepository(above: path) {
            guard Self.safeDirectories().contains(where: { $0 == "*" || Self.samePath($0, foreign.directory) }) else {
                throw GitError(
                    operation: "opening the repository at \(foreign.directory)",
                    message:
                        "detected dubious ownership: it is owned by uid \(foreign.owner), and deploy runs as uid \(geteuid()); git refuses it too. "
                        + "If it is yours to trust, run `git config --global --add safe.directory \(foreign.directory)` "
                        + "(or `safe.directory '*'`, as container CI jobs often do)",
                    code: GIT_EOWNER.rawValue)
            }
            LibGit2.trustForeignOwners()
            repository = nil
            code = git_repository_open_ext(&repository, path, 0, nil)
        }
        if code == GIT_ENOTFOUND.rawValue {
            throw GitError(
                operation: "opening a repository", message: "\(path) is not inside a git repository (nor is any folder above it)",
                code: code)
        }
        try GitError.check(code, "opening the repository at \(path)")
        guard let repository else {
            throw GitError(operation: "opening the repository at \(path)", message: "libgit2 returned no repository")
        }
        handle = repository
        workdir = git_repository_workdir(repository).map { String(cString: $0) }
        gitdir = String(cString: git_repository_path(repository))
    }

    /// Starts libgit2 on another thread now, so that the first repository opens without waiting
    /// for it (see ``LibGit2/initialiseInBackground()``). Harmless if nothing opens one.
    public static func prepareInBackground() { LibGit2.initialiseInBackground() }

    /// The nearest directory at or above `path` holding a `.git`, when someone else owns it.
    static func foreignRepository(above path: String) -> (directory: String, owner: uid_t)? {
        var directory = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        while true {
            var info = stat()
            if lstat(directory + "/.git", &info) == 0 {
                var top = stat()
                guard stat(directory, &top) == 0 else { return nil }
                return top.st_uid == geteuid() ? nil : (directory, top.st_uid)
            }
            guard directory != "/", let slash = directory.lastIndex(of: "/") else { return nil }
            directory = slash == directory.startIndex ? "/" : String(directory[..<slash])
        }
    }

    /// The `safe.directory` values of the global and system configuration (git reads no other).
    static func safeDirectories() -> [String] {
        var config: OpaquePointer?
        guard git_config_open_default(&config) == 0 else { return [] }
        defer { git_config_free(config) }
        var values: [String] = []
        var iterator: OpaquePointer?
        guard git_config_multivar_iterator_new(&iterator, config, "safe.directory", nil) == 0 else { return [] }
        defer { git_config_iterator_free(iterator) }
        var entry: UnsafeMutablePointer<git_config_entry>?
        while git_config_next(&entry, iterator) == 0 {
            if let value = entry?.pointee.value {
                let text = String(cString: value)
                // An empty value resets the list, as in git.
                if text.isEmpty { values.removeAll() } else { values.append(text) }
            }
        }
        return values
    }

    static func samePath(_ a: String, _ b: String) -> Bool {
        func clean(_ path: String) -> String { path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path }
        return clean(a) == clean(b)
    }

    deinit { git_repository_free(handle) }

    /// True for a shallow clone (history below the graft point is missing).
    public var isShallow: Bool { git_repository_is_shallow(handle) == 1 }

    /// True when HEAD names a branch with no commit yet (a new repository). libgit2's own
    /// `git_repository_is_empty` answers false when that branch is not called `master`.
    public var isEmpty: Bool { git_repository_head_unborn(handle) == 1 }

    /// The URL of a remote (`origin` by default), for an image's `org.opencontainers.image.source`.
    public func remoteURL(_ name: String = "origin") -> String? {
        var remote: OpaquePointer?
        guard git_remote_lookup(&remote, handle, name) == 0 else { return nil }
        defer { git_remote_free(remote) }
        return git_remote_url(remote).map { String(cString: $0) }
    }

    // MARK: - HEAD

    public struct Head: Sendable, Hashable {
        /// The commit HEAD points at.
        public var sha: String
        /// The branch's short name, or nil when HEAD is detached.
        public var branch: String?
        public var detached: Bool { branch == nil }
    }

    /// Where HEAD is. Throws a clear error for a repository with no commits.
    public func head() throws(GitError) -> Head {
        var reference: OpaquePointer?
        let code = git_repository_head(&reference, handle)
        if code == GIT_EUNBORNBRANCH.rawValue || code == GIT_ENOTFOUND.rawValue {
            throw GitError(operation: "reading HEAD", message: "the repository has no commits yet: commit something first", code: code)
        }
        try GitError.check(code, "reading HEAD")
        defer { git_reference_free(reference) }
        let commit = try peelToCommit(reference!, what: "HEAD")
        let detached = git_repository_head_detached(handle) == 1
        let branch = detached ? nil : git_reference_shorthand(reference).map { String(cString: $0) }
        return Head(sha: commit, branch: branch)
    }

    private func peelToCommit(_ reference: OpaquePointer, what: String) throws(GitError) -> String {
        var object: OpaquePointer?
        try GitError.check(git_reference_peel(&object, reference, GIT_OBJECT_COMMIT), "resolving \(what) to a commit")
        defer { git_object_free(object) }
        return Self.string(git_object_id(object))
    }

    /// The commit a revision names (`HEAD~2`, a tag, a sha), as a full sha.
    public func resolve(_ revision: String) throws(GitError) -> String {
        var object: OpaquePointer?
        let code = git_revparse_single(&object, handle, "\(revision)^{commit}")
        if code == GIT_ENOTFOUND.rawValue || code == GIT_EAMBIGUOUS.rawValue {
            throw GitError(
                operation: "resolving '\(revision)'",
                message: code == GIT_EAMBIGUOUS.rawValue
                    ? "'\(revision)' is ambiguous: give more characters of the sha"
                    : "no commit, tag or branch is called '\(revision)' here"
                        + (isShallow ? " (this is a shallow clone: fetch more history)" : ""),
                code: code)
        }
        try GitError.check(code, "resolving '\(revision)'")
        defer { git_object_free(object) }
        return Self.string(git_object_id(object))
    }

    // MARK: - Working tree

    /// Paths that differ from HEAD as `git status` sees them: modified, staged, deleted or
    /// untracked (ignored files are not counted), a submodule checked out at another commit or
    /// with changes inside it; files a sparse checkout leaves out of the working tree (the
    /// index's skip-worktree bit, which libgit2 1.5 does not honour) are not changes.
    public func changedPaths(limit: Int = 50) throws(GitError) -> (paths: [String], total: Int) {
        guard workdir != nil else { return ([], 0) }
        var options = git_status_options()
        try GitError.check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)), "preparing a status")
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
        var list: OpaquePointer?
        try GitError.check(git_status_list_new(&list, handle, &options), "reading the working tree's status")
        defer { git_status_list_free(list) }
        var index: OpaquePointer?
        if git_repository_index(&index, handle) != 0 { index = nil }
        defer { if let index { git_index_free(index) } }
        let skipWorktree = UInt16(GIT_INDEX_ENTRY_SKIP_WORKTREE.rawValue)
        var paths: [String] = []
        var total = 0
        for position in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, position) else { continue }
            let delta = entry.pointee.index_to_workdir ?? entry.pointee.head_to_index
            guard let raw = delta?.pointee.new_file.path ?? delta?.pointee.old_file.path else { continue }
            // Only deleted from the working tree, and marked skip-worktree: left out by a sparse checkout.
            if entry.pointee.status.rawValue == GIT_STATUS_WT_DELETED.rawValue, let index,
                let indexed = git_index_get_bypath(index, raw, 0), indexed.pointee.flags_extended & skipWorktree != 0
            {
                continue
            }
            total += 1
            if paths.count < limit { paths.append(String(cString: raw)) }
        }
        return (paths, total)
    }

    /// The paths of the files the index tracks (what `git ls-files` lists), relative to the working directory.
    public func trackedFiles() throws(GitError) -> [String] {
        var index: OpaquePointer?
        try GitError.check(git_repository_index(&index, handle), "reading the index")
        defer { git_index_free(index) }
        var paths: [String] = []
        for position in 0..<git_index_entrycount(index) {
            guard let entry = git_index_get_byindex(index, position), let path = entry.pointee.path else { continue }
            paths.append(String(cString: path))
        }
        return paths
    }

    // MARK: - Tags

    public struct Tag: Sendable, Hashable {
        public let name: String
        /// The commit it points at (an annotated tag peeled to its commit).
        public let sha: String
        public let annotated: Bool
        /// The version its name spells, if it spells one (parsed once: there may be thousands).
        public let version: SemanticVersion?

        public init(name: String, sha: String, annotated: Bool) {
            self.name = name
            self.sha = sha
            self.annotated = annotated
            version = SemanticVersion(name)
        }
    }

    /// Every tag that points (perhaps through an annotated tag object) at a commit; read once
    /// per repository handle (a changelog asks several times, and there may be thousands).
    public func tags() throws(GitError) -> [Tag] {
        if let cachedTags { return cachedTags }
        let tags = try readTags()
        cachedTags = tags
        return tags
    }

    /// Reads `refs/tags/*` in one pass over the references (no lookup by name), asking the object
    /// database only for each target's type (a header read; a lightweight tag's commit is never
    /// parsed); annotated tags are followed to their commit.
    private func readTags() throws(GitError) -> [Tag] {
        var iterator: OpaquePointer?
        try GitError.check(git_reference_iterator_glob_new(&iterator, handle, "refs/tags/*"), "listing tags")
        defer { git_reference_iterator_free(iterator) }
        var database: OpaquePointer?
        try GitError.check(git_repository_odb(&database, handle), "opening the object database")
        defer { git_odb_free(database) }
        var tags: [Tag] = []
        var reference: OpaquePointer?
        while git_reference_next(&reference, iterator) == 0 {
            defer { git_reference_free(reference) }
            guard let name = git_reference_name(reference).map({ String(cString: $0) }), name.hasPrefix("refs/tags/") else { continue }
            // A direct reference names its object; only a symbolic one is resolved (resolving a
            // direct one looks it up again by name: a stat of the loose and packed refs each).
            var resolved: OpaquePointer?
            if git_reference_type(reference) == GIT_REFERENCE_SYMBOLIC {
                guard git_reference_resolve(&resolved, reference) == 0 else { continue }
            }
            defer { if let resolved { git_reference_free(resolved) } }
            guard var target = git_reference_target(resolved ?? reference)?.pointee else { continue }
            var size = 0
            var type = GIT_OBJECT_INVALID
            guard git_odb_read_header(&size, &type, database, &target) == 0 else { continue }
            var annotated = false
            if type == GIT_OBJECT_TAG {
                annotated = true
                var object: OpaquePointer?
                guard git_object_lookup(&object, handle, &target, GIT_OBJECT_TAG) == 0 else { continue }
                defer { git_object_free(object) }
                var commit: OpaquePointer?
                guard git_object_peel(&commit, object, GIT_OBJECT_COMMIT) == 0 else { continue }
                target = git_object_id(commit).pointee
                git_object_free(commit)
            } else if type != GIT_OBJECT_COMMIT {
                continue
            }
            tags.append(Tag(name: String(name.dropFirst("refs/tags/".count)), sha: Self.string(&target), annotated: annotated))
        }
        return tags
    }

    // MARK: - History

    /// How many commits are reachable from `head` but not from `base` (`git rev-list --count base..head`).
    public func count(from base: String?, to head: String) throws(GitError) -> Int {
        var count = 0
        try walk(from: head, hiding: base) { _ in
            count += 1
            return true
        }
        return count
    }

    /// Walks commits from `head` (newest first by commit time), hiding `base` and its ancestors,
    /// calling `visit` with each sha until it returns false.
    public func walk(
        from head: String, hiding base: String? = nil, firstParentOnly: Bool = false,
        _ visit: (String) throws(GitError) -> Bool
    ) throws(GitError) {
        try walkIDs(from: head, hiding: base, firstParentOnly: firstParentOnly) { oid throws(GitError) in try visit(Self.string(&oid)) }
    }

    /// The same walk (``CommitWalk``, libgit2's order), handing over commit ids without converting them to text.
    func walkIDs(
        from head: String, hiding base: String?, firstParentOnly: Bool,
        _ visit: (inout git_oid) throws(GitError) -> Bool
    ) throws(GitError) {
        if isShallow {
            // The walk below (like libgit2 1.5's, which does not know shallow grafts) fails at the
            // first missing parent. Walk by hand, treating a missing parent as the end of history.
            for sha in try shallowHistory(from: head, hiding: base, firstParentOnly: firstParentOnly) {
                var oid = try Self.oid(sha)
                guard try visit(&oid) else { return }
            }
            return
        }
        var walk = try CommitWalk(repository: handle, firstParent: firstParentOnly)
        defer { walk.close() }
        try walk.run(from: try Self.oid(head), hiding: try base.map { sha throws(GitError) in try Self.oid(sha) }) {
            _, commit throws(GitError) in
            var oid = commit.oid
            return try visit(&oid)
        }
    }

    /// The commits of a shallow clone reachable from `head` and not from `base`, newest first.
    private func shallowHistory(from head: String, hiding base: String?, firstParentOnly: Bool) throws(GitError) -> [String] {
        let hidden = try base.map { sha throws(GitError) in Set(try reachable(from: sha, firstParentOnly: false).map(\.sha)) } ?? []
        return try reachable(from: head, firstParentOnly: firstParentOnly)
            .filter { !hidden.contains($0.sha) }
            .sorted { $0.time > $1.time }
            .map(\.sha)
    }

    func reachable(from start: String, firstParentOnly: Bool) throws(GitError) -> [(sha: String, time: Int64)] {
        let key = start + (firstParentOnly ? "^1" : "")
        if let cached = reachableCache[key] { return cached }
        let found = try walkReachable(from: start, firstParentOnly: firstParentOnly)
        reachableCache[key] = found
        return found
    }

    private func walkReachable(from start: String, firstParentOnly: Bool) throws(GitError) -> [(sha: String, time: Int64)] {
        var found: [(String, Int64)] = []
        var seen: Set<String> = []
        var pending = [start]
        while let sha = pending.popLast() {
            guard seen.insert(sha).inserted else { continue }
            var oid = try Self.oid(sha)
            var commit: OpaquePointer?
            guard git_commit_lookup(&commit, handle, &oid) == 0 else {
                if sha == start {
                    throw GitError(
                        operation: "reading commit \(sha.prefix(7))", message: "it is not in this shallow clone: fetch more history",
                        code: GIT_ENOTFOUND.rawValue)
                }
                continue  // beyond the shallow boundary
            }
            defer { git_commit_free(commit) }
            found.append((sha, Int64(git_commit_time(commit))))
            let parents = firstParentOnly ? min(git_commit_parentcount(commit), 1) : git_commit_parentcount(commit)
            for index in 0..<parents {
                if let parent = git_commit_parent_id(commit, index) { pending.append(Self.string(parent)) }
            }
        }
        return found
    }

    // MARK: - Plumbing

    static func string(_ oid: UnsafePointer<git_oid>?) -> String {
        var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
        git_oid_tostr(&buffer, buffer.count, oid)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func oid(_ sha: String) throws(GitError) -> git_oid {
        var oid = git_oid()
        try GitError.check(git_oid_fromstr(&oid, sha), "reading the commit id '\(sha)'")
        return oid
    }
}
