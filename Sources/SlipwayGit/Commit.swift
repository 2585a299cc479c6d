import CLibGit2
public import Foundation

/// A commit as a changelog needs it.
public struct Commit: Sendable, Hashable, Codable {
    public var sha: String
    public var subject: String
    public var body: String
    public var author: String
    public var email: String
    public var date: Date
    public var parentCount: Int

    public var shortSHA: String { String(sha.prefix(7)) }
    public var isMerge: Bool { parentCount > 1 }
}

extension Repository {
    /// Hands each commit reachable from `head` and not from `base` (all of `head`'s history when
    /// `base` is nil) to `body` as it is read, newest first, until `body` returns false: a long
    /// range is never held in memory twice. `firstParentOnly` follows only the first parent of
    /// merges, as the history of the branch itself. Returns whether `base` is an ancestor of
    /// `head`, found on the way: it is exactly when a commit of the range has `base` as a parent.
    @discardableResult
    public func forEachCommit(
        from base: String?, to head: String, firstParentOnly: Bool = false,
        _ body: (Commit) throws(GitError) -> Bool
    ) throws(GitError) -> Bool {
        if base == head { return true }
        if isShallow {
            try walkIDs(from: head, hiding: base, firstParentOnly: firstParentOnly) { oid throws(GitError) in try body(try commit(&oid)) }
            guard let base else { return true }
            return try isAncestor(base, of: head)
        }
        // Each commit is read once, by the walk, and handed over as it was read.
        var walk = try CommitWalk(repository: handle, firstParent: firstParentOnly)
        defer { walk.close() }
        var parentOfSome = false
        var finished = true
        try walk.run(from: try Self.oid(head), hiding: try base.map { sha throws(GitError) in try Self.oid(sha) }) {
            _, visit throws(GitError) in
            if visit.isChildOfBase { parentOfSome = true }
            let keepGoing = try body(Self.read(visit))
            if !keepGoing { finished = false }
            return keepGoing
        }
        return try baseIsAncestor(base, of: head, parentOfSome: parentOfSome, wholeRange: finished && !firstParentOnly)
    }

    /// Every commit of the range, newest first, as `prepare` makes it, and whether `base` is an
    /// ancestor of `head` (as ``forEachCommit(from:to:firstParentOnly:_:)`` returns). `prepare`
    /// must depend on the commit alone: over a long range it runs on a second thread while the
    /// walk reads on (a commit the walk later finds hidden is prepared for nothing and left out).
    public func commits<Prepared: Sendable>(
        from base: String?, to head: String, firstParentOnly: Bool = false,
        prepared prepare: @escaping @Sendable (Commit) -> Prepared
    ) throws(GitError) -> (values: [Prepared], baseIsAncestor: Bool) {
        guard let base, base != head, !isShallow else {
            var values: [Prepared] = []
            let ancestor = try forEachCommit(from: base, to: head, firstParentOnly: firstParentOnly) { commit in
                values.append(prepare(commit))
                return true
            }
            return (values, ancestor)
        }
        var walk = try CommitWalk(repository: handle, firstParent: firstParentOnly)
        defer { walk.close() }
        let ahead = PreparedAhead(prepare)
        var shown: [Int] = []
        var parentOfSome = false
        try walk.run(from: try Self.oid(head), hiding: try Self.oid(base), limited: { ahead.add($0) }) { position, visit in
            if visit.isChildOfBase { parentOfSome = true }
            shown.append(position!)
            return true
        }
        var values = ahead.finish()
        // A commit the limiting took and later found hidden (clock skew across a merge).
        if shown.count != values.count { values = shown.map { values[$0] } }
        return (values, try baseIsAncestor(base, of: head, parentOfSome: parentOfSome, wholeRange: !firstParentOnly))
    }

    /// `base` is an ancestor of `head` exactly when a commit of the whole range has it as a parent;
    /// with first parents only, or a walk stopped early, the range may not show it: ask the graph.
    private func baseIsAncestor(_ base: String?, of head: String, parentOfSome: Bool, wholeRange: Bool) throws(GitError) -> Bool {
        guard let base else { return true }
        if !parentOfSome && !wholeRange { return try isAncestor(base, of: head) }
        return parentOfSome
    }

    /// One commit, read at once into Swift values.
    public func commit(_ sha: String) throws(GitError) -> Commit {
        var oid = try Self.oid(sha)
        return try commit(&oid)
    }

    func commit(_ oid: inout git_oid) throws(GitError) -> Commit {
        var pointer: OpaquePointer?
        try GitError.check(git_commit_lookup(&pointer, handle, &oid), "reading commit \(Self.string(&oid).prefix(7))")
        defer { git_commit_free(pointer) }
        return Self.read(pointer!, oid: &oid)
    }

    static func read(_ pointer: OpaquePointer, oid: inout git_oid) -> Commit {
        // A message written in another encoding says so in its `encoding` header (git log
        // converts it; so do we). Without one, it is UTF-8.
        let encoding = git_commit_message_encoding(pointer).flatMap { textEncoding(named: String(cString: $0)) }
        let message = git_commit_message(pointer).map { decode($0, encoding) } ?? ""
        let (subject, body) = split(message)
        let signature = git_commit_author(pointer)
        return Commit(
            sha: string(&oid), subject: subject, body: body,
            author: signature?.pointee.name.map { decode($0, encoding) } ?? "",
            email: signature?.pointee.email.map { String(cString: $0) } ?? "",
            date: Date(timeIntervalSince1970: TimeInterval(signature?.pointee.when.time ?? 0)),
            parentCount: Int(git_commit_parentcount(pointer)))
    }

    /// A commit the walk read, as `read(_:oid:)` reads one through libgit2.
    static func read(_ visit: CommitWalk.Visit) -> Commit {
        var oid = visit.oid
        return read(RawCommit(visit.raw), oid: &oid, parentCount: visit.parentCount)
    }

    static func read(_ raw: RawCommit, oid: inout git_oid, parentCount: Int) -> Commit {
        let encoding = raw.encoding.flatMap { textEncoding(named: String(decoding: raw.bytes[$0], as: UTF8.self)) }
        let (subject, body) = split(decode(raw.bytes[raw.messageStart...], encoding))
        let signature = raw.author.map { RawCommit.nameAndEmail(of: raw.bytes[$0]) }
        return Commit(
            sha: string(&oid), subject: subject, body: body,
            author: signature.map { decode($0.name, encoding) } ?? "",
            email: signature.map { String(decoding: $0.email, as: UTF8.self) } ?? "",
            date: Date(timeIntervalSince1970: TimeInterval(raw.author.map { RawCommit.time(of: raw.bytes[$0]) } ?? 0)),
            parentCount: parentCount)
    }

    static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ encoding: String.Encoding?) -> String {
        guard let encoding, encoding != .utf8 else { return String(decoding: bytes, as: UTF8.self) }
        return String(data: Data(bytes), encoding: encoding) ?? String(decoding: bytes, as: UTF8.self)
    }

    static func decode(_ text: UnsafePointer<CChar>, _ encoding: String.Encoding?) -> String {
        decode(UnsafeRawBufferPointer(start: text, count: strlen(text)), encoding)
    }

    /// The encodings an `encoding` header names that Foundation converts on every platform.
    static func textEncoding(named name: String) -> String.Encoding? {
        switch name.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "utf-8", "utf8": .utf8
        case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1": .isoLatin1
        case "iso-8859-2", "iso8859-2", "latin2", "latin-2": .isoLatin2
        case "windows-1252", "cp1252": .windowsCP1252
        case "windows-1250", "cp1250": .windowsCP1250
        case "windows-1251", "cp1251": .windowsCP1251
        case "shift-jis", "sjis", "cp932": .shiftJIS
        case "euc-jp", "eucjp": .japaneseEUC
        case "iso-2022-jp": .iso2022JP
        case "us-ascii", "ascii": .ascii
        default: nil
        }
    }

    /// Subject (the first paragraph, on one line) and body. Works on UTF-8 bytes: this runs once
    /// per commit of a changelog, tens of thousands of times.
    static func split(_ message: String) -> (String, String) {
        let bytes = Array(message.utf8)
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        // The subject ends at the first blank line (a newline, optional spaces, a newline).
        var subjectEnd = end
        var bodyStart = end
        var index = start
        search: while index < end {
            if bytes[index] == 0x0A {
                var next = index + 1
                while next < end, bytes[next] == 0x20 || bytes[next] == 0x09 || bytes[next] == 0x0D { next += 1 }
                if next < end, bytes[next] == 0x0A {
                    subjectEnd = index
                    bodyStart = next
                    break search
                }
            }
            index += 1
        }
        while subjectEnd > start, isSpace(bytes[subjectEnd - 1]) { subjectEnd -= 1 }
        while bodyStart < end, isSpace(bytes[bodyStart]) { bodyStart += 1 }
        var subject = Array(bytes[start..<subjectEnd])
        if subject.contains(0x0A) {
            // A subject wrapped over several lines reads as one.
            subject = subject.split(separator: 0x0A).map { line in
                Array(line.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
            }.joined(separator: [0x20]).map { $0 }
        }
        return (String(decoding: subject, as: UTF8.self), String(decoding: bytes[bodyStart..<end], as: UTF8.self))
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    public func isAncestor(_ ancestor: String, of descendant: String) throws(GitError) -> Bool {
        if ancestor == descendant { return true }
        if isShallow { return try reachable(from: descendant, firstParentOnly: false).contains { $0.sha == ancestor } }
        var a = try Self.oid(ancestor)
        var d = try Self.oid(descendant)
        let result = git_graph_descendant_of(handle, &d, &a)
        try GitError.check(result, "comparing \(ancestor.prefix(7)) with \(descendant.prefix(7))")
        return result == 1
    }

    /// True when the commit is in the repository (a shallow clone or a rewritten history may lack it).
    public func contains(_ sha: String) -> Bool {
        guard var oid = try? Self.oid(sha) else { return false }
        var pointer: OpaquePointer?
        guard git_commit_lookup(&pointer, handle, &oid) == 0 else { return false }
        git_commit_free(pointer)
        return true
    }

    /// The paths that differ between two commits' trees (every file of `head` when `base` is nil).
    public func changedFiles(from base: String?, to head: String) throws(GitError) -> [String] {
        let headTree = try tree(of: head)
        defer { git_tree_free(headTree) }
        let baseTree = try base.map { sha throws(GitError) in try tree(of: sha) }
        defer { if let baseTree { git_tree_free(baseTree) } }
        return try changedPaths(from: baseTree, to: headTree)
    }

    private func changedPaths(from baseTree: OpaquePointer?, to headTree: OpaquePointer) throws(GitError) -> [String] {
        var diff: OpaquePointer?
        try GitError.check(git_diff_tree_to_tree(&diff, handle, baseTree, headTree, nil), "comparing trees")
        defer { git_diff_free(diff) }
        var paths: [String] = []
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index) else { continue }
            if let path = delta.pointee.new_file.path { paths.append(String(cString: path)) }
            if delta.pointee.status == GIT_DELTA_RENAMED, let old = delta.pointee.old_file.path { paths.append(String(cString: old)) }
        }
        return paths
    }

    /// The files a commit changed, as `git log --cc` counts them: against its parent, or for a
    /// merge, only the files that differ from every parent (what the merge itself did: the
    /// side branch's own changes belong to the side branch's commits). Reads the commit and each
    /// parent once (a first deploy's changelog asks this of every commit in the history).
    public func filesChangedBy(_ sha: String) throws(GitError) -> [String] {
        var oid = try Self.oid(sha)
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, handle, &oid), "reading commit \(sha.prefix(7))")
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try GitError.check(git_commit_tree(&tree, commit), "reading the tree of \(sha.prefix(7))")
        defer { git_tree_free(tree) }
        let parentCount = git_commit_parentcount(commit)
        guard parentCount > 0 else { return try changedPaths(from: nil, to: tree!) }
        var files: Set<String>?
        for index in 0..<parentCount where files?.isEmpty != true {
            var parent: OpaquePointer?
            try GitError.check(git_commit_parent(&parent, commit, index), "reading a parent of \(sha.prefix(7))")
            defer { git_commit_free(parent) }
            var parentTree: OpaquePointer?
            try GitError.check(git_commit_tree(&parentTree, parent), "reading the tree of a parent of \(sha.prefix(7))")
            defer { git_tree_free(parentTree) }
            let changed = Set(try changedPaths(from: parentTree, to: tree!))
            files = files.map { $0.intersection(changed) } ?? changed
        }
        return (files ?? []).sorted()
    }

    /// A partial clone (`--filter=…`): objects it lacks are fetched by git from the promisor
    /// remote when needed, which libgit2 cannot do.
    public var isPartialClone: Bool {
        guard let text = try? String(contentsOfFile: gitdir + "config", encoding: .utf8) else { return false }
        return text.lowercased().contains("partialclone") || text.lowercased().contains("promisor = true")
    }

    private func tree(of sha: String) throws(GitError) -> OpaquePointer {
        var oid = try Self.oid(sha)
        var commit: OpaquePointer?
        try GitError.check(git_commit_lookup(&commit, handle, &oid), "reading commit \(sha.prefix(7))")
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try GitError.check(git_commit_tree(&tree, commit), "reading the tree of \(sha.prefix(7))")
        return tree!
    }

    /// The version tags, by the commit they point at (`stableOnly` leaves out pre-releases,
    /// `skipping` the tags on that commit).
    func versionTagsByCommit(stableOnly: Bool, skipping: String?) throws(GitError) -> [String: [(tag: Tag, version: SemanticVersion)]] {
        var byCommit = try allVersionTagsByCommit()
        if let skipping { byCommit[skipping] = nil }
        if stableOnly {
            byCommit = byCommit.compactMapValues { tags in
                let stable = tags.filter { !$0.version.isPrerelease }
                return stable.isEmpty ? nil : stable
            }
        }
        return byCommit
    }

    private func allVersionTagsByCommit() throws(GitError) -> [String: [(tag: Tag, version: SemanticVersion)]] {
        var byCommit: [String: [(tag: Tag, version: SemanticVersion)]] = [:]
        for tag in try tags() {
            guard let version = tag.version else { continue }
            byCommit[tag.sha, default: []].append((tag, version))
        }
        return byCommit
    }

    /// The version tag `git describe --tags` would name from `sha`: of the first tagged commits a
    /// newest-first walk meets (at most 10, git's `--candidates` default), the one with the fewest
    /// commits between it and `sha`; on that commit, or among commits at the same distance, the
    /// highest version. `stableOnly` skips pre-release tags; `skipping` ignores tags on that commit.
    public func nearestVersionTag(from sha: String, stableOnly: Bool = false, skipping: String? = nil) throws(GitError) -> (
        tag: Tag, version: SemanticVersion
    )? {
        let byCommit = try versionTagsByCommit(stableOnly: stableOnly, skipping: skipping)
        guard !byCommit.isEmpty else { return nil }
        var best: (distance: Int, tag: Tag, version: SemanticVersion)?
        var walked = 0
        var candidates = 0
        try walk(from: sha) { commit throws(GitError) in
            // Walking newest first, the commits met before this one are newer than it, so none
            // is its ancestor: its distance is at least `walked`. Past the best distance found,
            // no later tag can be nearer (git stops its walk on the same ground).
            if let best, walked > best.distance { return false }
            walked += 1
            guard let top = byCommit[commit]?.max(by: { $0.version < $1.version }) else { return true }
            candidates += 1
            let distance = commit == sha ? 0 : try count(from: commit, to: sha)
            if best == nil || distance < best!.distance || (distance == best!.distance && best!.version < top.version) {
                best = (distance, top.tag, top.version)
            }
            return candidates < 10
        }
        return best.map { (tag: $0.tag, version: $0.version) }
    }

    /// The highest version among the tags reachable from `sha` (`stableOnly`: stable ones only;
    /// `skipping`: not those on that commit): where a changelog starts, so that a hotfix tag
    /// merged back never makes it list again what a newer release already shipped.
    public func newestVersionTag(reachableFrom sha: String, stableOnly: Bool, skipping: String? = nil) throws(GitError) -> (
        tag: Tag, version: SemanticVersion
    )? {
        let byCommit = try versionTagsByCommit(stableOnly: stableOnly, skipping: skipping)
        let all = byCommit.values.flatMap { $0 }
        // The newest is nearly always reachable: ask the graph about it first (no sorting of
        // thousands), then about the next few, and walk the whole history once only when they
        // are all on other branches.
        guard let newest = all.max(by: { $0.version < $1.version }) else { return nil }
        if try isAncestor(newest.tag.sha, of: sha) { return newest }
        let ranked = all.sorted { $0.version > $1.version }
        for candidate in ranked.prefix(20) where candidate.tag != newest.tag {
            if try isAncestor(candidate.tag.sha, of: sha) { return candidate }
        }
        guard ranked.count > 20 else { return nil }
        var reachable = Set<String>()
        try walk(from: sha) { commit in
            if byCommit[commit] != nil { reachable.insert(commit) }
            return true
        }
        return ranked.dropFirst(20).first { reachable.contains($0.tag.sha) }
    }

    /// Every version some tag spells: a suggested next version must be none of them.
    public func taggedVersions() throws(GitError) -> Set<SemanticVersion> {
        Set(try tags().compactMap(\.version))
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines.
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
