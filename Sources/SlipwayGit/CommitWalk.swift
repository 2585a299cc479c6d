import CLibGit2
import Foundation

/// A history walk that reads each commit once: libgit2's own revwalk parses a commit's parents
/// and date when it queues it, and a changelog then looked the commit up again for its message,
/// inflating every commit twice (half the time of a 50,000-commit changelog). This walk keeps
/// the object it read and hands it over.
///
/// The order is libgit2's `GIT_SORT_NONE` walk (revwalk.c: `prepare_walk`, `limit_list`,
/// `add_parents_to_list`, `mark_parents_uninteresting`, `still_interesting`), step for step, so
/// every changelog lists its commits as before: parents are queued by commit date (after those of
/// the same date), and with a hidden base the whole range is limited first, as git does, then
/// handed over newest first.
struct CommitWalk {
    /// One commit met on the walk.
    struct Node {
        var oid: git_oid
        /// Committer time, as libgit2 and git order by.
        var time: Int64 = 0
        var parents: [Int32] = []
        var parsed = false
        var seen = false
        var added = false
        var uninteresting = false
        /// The commit object from its `author` line on (the tree and parent lines are read
        /// into the node), until it is handed over.
        var raw: [UInt8] = []
    }

    /// A commit handed over by the walk.
    struct Visit {
        var oid: git_oid
        /// The commit object from its `author` line on: signatures, other headers, message.
        var raw: [UInt8]
        var parentCount: Int
        /// Whether the hidden base is one of its parents.
        var isChildOfBase: Bool
    }

    /// A 20-byte object id as a dictionary key.
    private struct Key: Hashable {
        let high: UInt64
        let middle: UInt64
        let low: UInt32

        // An object id is already uniformly distributed: its first eight bytes are hash enough.
        func hash(into hasher: inout Hasher) { hasher.combine(high) }

        init(_ oid: git_oid) {
            (high, middle, low) = withUnsafeBytes(of: oid) { bytes in
                (
                    bytes.loadUnaligned(as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                    bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
                )
            }
        }
    }

    /// How many uninteresting commits to look at after the last interesting one (clock skew).
    private static let slop = 5

    private(set) var nodes: [Node] = []
    // Room for a long range from the start (growing it rehashes every id met so far).
    private var index: [Key: Int32] = Dictionary(minimumCapacity: 1 << 16)
    private let odb: OpaquePointer
    private let firstParent: Bool
    private var baseIndex: Int32?

    init(repository handle: OpaquePointer, firstParent: Bool) throws(GitError) {
        var odb: OpaquePointer?
        try GitError.check(git_repository_odb(&odb, handle), "opening the object database")
        self.odb = odb!
        self.firstParent = firstParent
    }

    func close() { git_odb_free(odb) }

    /// Walks from `head`, hiding `base` and its ancestors, handing each commit to `visit` until
    /// `visit` returns false. With a base the range is limited first: `limited` sees each commit
    /// (with its bytes, which `visit` then no longer gets) as the limiting takes it, in order (a
    /// few may still turn out hidden), and `visit` is then told each commit's position in that order.
    mutating func run(
        from head: git_oid, hiding base: git_oid?, limited onLimited: ((Visit) -> Void)? = nil,
        _ visit: (_ position: Int?, Visit) throws(GitError) -> Bool
    ) throws(GitError) {
        // prepare_walk: the user's input in push order (a hide goes to the front), not by date.
        let headIndex = node(head)
        var input = [headIndex]
        if let base {
            let baseIndex = node(base)
            self.baseIndex = baseIndex
            nodes[Int(baseIndex)].uninteresting = true
            input.insert(baseIndex, at: 0)
        }
        // The list, front last: popLast() takes the front.
        var list: [Int32] = []
        for commit in input {
            try parse(commit)
            if nodes[Int(commit)].uninteresting { markParentsUninteresting(commit) }
            if !nodes[Int(commit)].seen {
                nodes[Int(commit)].seen = true
                list.insert(commit, at: 0)
            }
        }
        guard base != nil else {
            // Not limited: get_revision, one commit at a time.
            while let commit = list.popLast() {
                try addParents(commit, to: &list)
                if nodes[Int(commit)].uninteresting { continue }
                guard try visit(nil, take(commit)) else { return }
            }
            return
        }
        // limit_list: the whole range first.
        var time = Int64.max
        var slop = Self.slop
        var limited: [Int32] = []
        while let commit = list.popLast() {
            try addParents(commit, to: &list)
            if nodes[Int(commit)].uninteresting {
                markParentsUninteresting(commit)
                slop = stillInteresting(list, time: time, slop: slop)
                if slop != 0 { continue }
                break
            }
            time = nodes[Int(commit)].time
            limited.append(commit)
            // Its bytes go with it: what prepares it frees them.
            if let onLimited { onLimited(take(commit)) }
        }
        for (position, commit) in limited.enumerated() where !nodes[Int(commit)].uninteresting {
            guard try visit(position, take(commit)) else { return }
        }
    }

    /// The commit for its visitor (its bytes released from the walk's keeping).
    private mutating func take(_ commit: Int32) -> Visit {
        let visit = visitOf(commit)
        nodes[Int(commit)].raw = []
        return visit
    }

    private func visitOf(_ commit: Int32) -> Visit {
        let node = nodes[Int(commit)]
        return Visit(
            oid: node.oid, raw: node.raw, parentCount: node.parents.count,
            isChildOfBase: baseIndex.map { node.parents.contains($0) } ?? false)
    }

    private mutating func node(_ oid: git_oid) -> Int32 {
        let key = Key(oid)
        if let found = index[key] { return found }
        let position = Int32(nodes.count)
        nodes.append(Node(oid: oid))
        index[key] = position
        return position
    }

    private mutating func addParents(_ commit: Int32, to list: inout [Int32]) throws(GitError) {
        if nodes[Int(commit)].added { return }
        nodes[Int(commit)].added = true
        if nodes[Int(commit)].uninteresting {
            for parent in nodes[Int(commit)].parents {
                nodes[Int(parent)].uninteresting = true
                try parse(parent)
                markParentsUninteresting(parent)
                nodes[Int(parent)].seen = true
                insertByDate(parent, into: &list)
            }
            return
        }
        for parent in nodes[Int(commit)].parents {
            try parse(parent)
            if !nodes[Int(parent)].seen {
                nodes[Int(parent)].seen = true
                insertByDate(parent, into: &list)
            }
            if firstParent { break }
        }
    }

    /// Before the first commit of the list older than `commit`: after those of its own date.
    private func insertByDate(_ commit: Int32, into list: inout [Int32]) {
        let time = nodes[Int(commit)].time
        var position = list.count - 1
        while position >= 0 {
            if nodes[Int(list[position])].time < time { break }
            position -= 1
        }
        list.insert(commit, at: position + 1)
    }

    private mutating func markParentsUninteresting(_ commit: Int32) {
        guard nodes[Int(commit)].parsed else { return }
        var pending = nodes[Int(commit)].parents
        while let parent = pending.popLast() {
            var current: Int32? = parent
            while let next = current {
                if nodes[Int(next)].uninteresting { break }
                nodes[Int(next)].uninteresting = true
                // A commit reached some other way already: its parents too.
                guard nodes[Int(next)].parsed else { break }
                pending.append(contentsOf: nodes[Int(next)].parents)
                current = nodes[Int(next)].parents.first
            }
        }
    }

    private func stillInteresting(_ list: [Int32], time: Int64, slop: Int) -> Int {
        guard let front = list.last else { return 0 }
        if time <= nodes[Int(front)].time { return Self.slop }
        for commit in list.reversed() where !nodes[Int(commit)].uninteresting || nodes[Int(commit)].time > time {
            return Self.slop
        }
        return slop - 1
    }

    /// Reads the commit once: its parents and committer time for the walk, its bytes for whoever
    /// it is handed to.
    private mutating func parse(_ commit: Int32) throws(GitError) {
        if nodes[Int(commit)].parsed { return }
        var oid = nodes[Int(commit)].oid
        var object: OpaquePointer?
        try GitError.check(git_odb_read(&object, odb, &oid), "reading commit \(Repository.string(&oid).prefix(7))")
        defer { git_odb_object_free(object) }
        guard git_odb_object_type(object) == GIT_OBJECT_COMMIT else {
            throw GitError(
                operation: "reading commit \(Repository.string(&oid).prefix(7))", message: "the object is not a commit",
                code: GIT_EINVALIDSPEC.rawValue)
        }
        let size = git_odb_object_size(object)
        var raw = [UInt8](UnsafeRawBufferPointer(start: git_odb_object_data(object), count: size))
        let (parentIDs, time, authorLine) = {
            let header = RawCommit(raw)
            return (header.parentIDs, header.committerTime, header.author.map { $0.lowerBound - 7 } ?? 0)
        }()
        var parents: [Int32] = []
        for parentID in parentIDs { parents.append(node(parentID)) }
        nodes[Int(commit)].parents = parents
        nodes[Int(commit)].time = time
        // Kept from the author line on, in the same buffer (no second copy).
        raw.removeSubrange(0..<authorLine)
        nodes[Int(commit)].raw = raw
        nodes[Int(commit)].parsed = true
    }
}

/// A commit object's bytes: `tree`, `parent`…, `author`, `committer`, other headers, a blank
/// line, the message.
struct RawCommit {
    let bytes: [UInt8]
    /// Where the message starts (after the blank line that ends the headers).
    private(set) var messageStart: Int
    private(set) var parentIDs: [git_oid] = []
    private(set) var author: Range<Int>?
    private(set) var committer: Range<Int>?
    private(set) var encoding: Range<Int>?

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        messageStart = bytes.count
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            if end == start {
                messageStart = end + 1
                break
            }
            if Self.has(bytes, "parent ", at: start), end - start >= 47 {
                var oid = git_oid()
                bytes.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.advanced(by: start + 7).withMemoryRebound(to: CChar.self, capacity: 40) { hex in
                        _ = git_oid_fromstrn(&oid, hex, 40)
                    }
                }
                parentIDs.append(oid)
            } else if Self.has(bytes, "author ", at: start) {
                author = (start + 7)..<end
            } else if Self.has(bytes, "committer ", at: start) {
                committer = (start + 10)..<end
            } else if Self.has(bytes, "encoding ", at: start) {
                encoding = (start + 9)..<end
            }
            start = end + 1
        }
        messageStart = min(messageStart, bytes.count)
    }

    private static func has(_ bytes: [UInt8], _ prefix: StaticString, at start: Int) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard start + count <= bytes.count else { return false }
        return prefix.withUTF8Buffer { wanted in
            var index = 0
            while index < count {
                if bytes[start + index] != wanted[index] { return false }
                index += 1
            }
            return true
        }
    }

    /// The time of a signature line (`Name <email> 1700000000 +0000`): the number after the last `>`.
    static func time(of line: ArraySlice<UInt8>) -> Int64 {
        guard let close = line.lastIndex(of: UInt8(ascii: ">")) else { return 0 }
        var index = close + 1
        while index < line.endIndex, line[index] == 0x20 { index += 1 }
        var negative = false
        if index < line.endIndex, line[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value: Int64 = 0
        while index < line.endIndex, line[index] >= 0x30, line[index] <= 0x39 {
            value = value &* 10 &+ Int64(line[index] - 0x30)
            index += 1
        }
        return negative ? -value : value
    }

    var committerTime: Int64 { committer.map { Self.time(of: bytes[$0]) } ?? 0 }

    /// The signature's name and email, as libgit2 reads them: the name trimmed before `<`, the
    /// email between `<` and `>`.
    static func nameAndEmail(of line: ArraySlice<UInt8>) -> (name: ArraySlice<UInt8>, email: ArraySlice<UInt8>) {
        guard let open = line.firstIndex(of: UInt8(ascii: "<")) else {
            return (line[line.startIndex..<line.startIndex], line[line.endIndex...])
        }
        let close = line[open...].firstIndex(of: UInt8(ascii: ">")) ?? line.endIndex
        var nameEnd = open
        var nameStart = line.startIndex
        while nameStart < nameEnd, line[nameStart] == 0x20 { nameStart += 1 }
        while nameEnd > nameStart, line[nameEnd - 1] == 0x20 { nameEnd -= 1 }
        return (line[nameStart..<nameEnd], line[(open + 1)..<close])
    }
}

/// Prepares a limited range's commits on a second thread while the walk reads on: the walk hands
/// over batches as the limiting takes them; `finish` prepares the last batch on the calling
/// thread and returns every commit's value in the order they were added.
final class PreparedAhead<Prepared: Sendable>: @unchecked Sendable {
    // @unchecked: `pending` is touched only by the walking thread; the worker's state is under
    // `lock`, and `results` is read only after the worker has said it is done (`done`).
    private let prepare: @Sendable (Commit) -> Prepared
    private var pending: [CommitWalk.Visit] = []
    private let lock = NSCondition()
    private var batches: [[CommitWalk.Visit]] = []
    private var results: [Prepared] = []
    private var closed = false
    private var workerDone = false
    private var started = false

    /// A batch this size goes to the worker: small ranges never start a thread.
    private static var batchSize: Int { 512 }

    init(_ prepare: @escaping @Sendable (Commit) -> Prepared) {
        self.prepare = prepare
    }

    func add(_ visit: CommitWalk.Visit) {
        pending.append(visit)
        guard pending.count == Self.batchSize else { return }
        lock.lock()
        batches.append(pending)
        if !started {
            started = true
            let thread = Thread { [self] in work() }
            thread.start()
        }
        lock.signal()
        lock.unlock()
        pending.removeAll(keepingCapacity: true)
    }

    private func work() {
        while true {
            lock.lock()
            while batches.isEmpty && !closed { lock.wait() }
            if batches.isEmpty {
                workerDone = true
                lock.broadcast()
                lock.unlock()
                return
            }
            var batch = batches.removeFirst()
            lock.unlock()
            let prepared = batch.map { prepare(Repository.read($0)) }
            batch = []
            lock.lock()
            results.append(contentsOf: prepared)
            lock.unlock()
        }
    }

    /// Every value, in order; waits for the worker.
    func finish() -> [Prepared] {
        let last = pending.map { prepare(Repository.read($0)) }
        pending = []
        lock.lock()
        closed = true
        lock.broadcast()
        if started { while !workerDone { lock.wait() } }
        var all: [Prepared] = []
        swap(&all, &results)
        lock.unlock()
        all.append(contentsOf: last)
        return all
    }
}
