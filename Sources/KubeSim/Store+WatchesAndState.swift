public import Foundation

extension Store {
    // MARK: Watching

    struct WatchFilter: Sendable {
        var storeKey: String
        var namespace: String?
        var labels: LabelSelector
        var fields: FieldSelector?

        func matches(_ object: JSON) -> Bool {
            (namespace == nil || object[path: ["metadata", "namespace"]]?.string == namespace)
                && labels.matches(object[path: ["metadata", "labels"]]?.stringMap ?? [:])
                && (fields?.matches(object) ?? true)
        }

        /// The event this watcher sees, if any: an object leaving the selection is DELETED for it.
        func view(_ event: WatchEvent) -> WatchEvent? {
            guard event.storeKey == storeKey else { return nil }
            let now = matches(event.object)
            let before = event.previous.map(matches) ?? false
            switch (event.type, before, now) {
            case ("MODIFIED", false, true):
                var added = event
                added.type = "ADDED"
                return added
            case ("MODIFIED", true, false):
                var removed = event
                removed.type = "DELETED"
                return removed
            default:
                return now ? event : nil
            }
        }
    }

    /// Events after `since` (every current object as ADDED when `since` is nil or 0), then live ones.
    /// Throws 410 when history no longer reaches back to `since`.
    public func watch(
        _ type: ResourceType, namespace: String?, labels: LabelSelector, fields: FieldSelector?, since: Int?
    ) throws(APIError) -> (id: UUID, events: AsyncStream<WatchEvent>) {
        let filter = WatchFilter(storeKey: type.storeKey, namespace: namespace, labels: labels, fields: fields)
        var backlog: [WatchEvent] = []
        if let since, since > 0 {
            guard since >= historyStart - 1 || since >= resourceVersion else {
                throw APIError.gone("too old resource version: \(since) (\(historyStart))")
            }
            backlog = history.filter { $0.resourceVersion > since }.compactMap(filter.view)
        } else {
            backlog = list(type, namespace: namespace, labels: labels, fields: fields).items.map {
                WatchEvent(
                    type: "ADDED", object: $0, resourceVersion: Int($0[path: ["metadata", "resourceVersion"]]?.string ?? "") ?? 0,
                    storeKey: type.storeKey)
            }
        }
        let (stream, continuation) = AsyncStream<WatchEvent>.makeStream(bufferingPolicy: .unbounded)
        for event in backlog { continuation.yield(event) }
        let id = UUID()
        watchers[id] = (filter, continuation)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.stopWatching(id) }
        }
        return (id, stream)
    }

    /// A BOOKMARK event to one watcher: the current resource version, no object change.
    public func bookmark(_ id: UUID, type: ResourceType) {
        let object: JSON = [
            "kind": .string(type.kind), "apiVersion": .string(type.groupVersion),
            "metadata": ["resourceVersion": .string(String(resourceVersion))],
        ]
        watchers[id]?.continuation.yield(
            WatchEvent(type: "BOOKMARK", object: object, resourceVersion: resourceVersion, storeKey: type.storeKey))
    }

    public func stopWatching(_ id: UUID) {
        watchers[id]?.continuation.finish()
        watchers[id] = nil
    }

    /// Wakes on every write (the controllers' trigger).
    public func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        changeContinuations[id] = continuation
        continuation.onTermination = { [weak self] _ in Task { await self?.dropChangeListener(id) } }
        return stream
    }

    func dropChangeListener(_ id: UUID) { changeContinuations[id] = nil }

    func record(_ event: WatchEvent) {
        history.append(event)
        if history.count > historyLimit {
            let drop = history.count - historyLimit
            historyStart = history[drop - 1].resourceVersion + 1
            history.removeFirst(drop)
        }
        for (_, watcher) in watchers {
            if let seen = watcher.filter.view(event) { watcher.continuation.yield(seen) }
        }
        for continuation in changeContinuations.values { continuation.yield() }
        scheduleSave()
    }

    /// Ends every watch (shutdown).
    public func finishWatches() {
        for (_, watcher) in watchers { watcher.continuation.finish() }
        watchers = [:]
        for continuation in changeContinuations.values { continuation.finish() }
        changeContinuations = [:]
    }

    // MARK: Persistence

    func scheduleSave() {
        guard stateFile != nil, !saveScheduled else { return }
        saveScheduled = true
        Task {
            try? await Task.sleep(for: .milliseconds(100))
            self.save()
        }
    }

    /// Writes every object to the state file (atomically: a crash keeps the previous file).
    public func save() {
        saveScheduled = false
        guard let stateFile else { return }
        var entries: [JSON] = []
        for (storeKey, members) in objects.sorted(by: { $0.key < $1.key }) {
            for (_, object) in members.sorted(by: { $0.key < $1.key }) {
                entries.append(["store": .string(storeKey), "object": object])
            }
        }
        let document: JSON = ["resourceVersion": .int(resourceVersion), "objects": .array(entries)]
        do {
            try Data(document.serialized().utf8).write(to: stateFile, options: .atomic)
            lastSaveError = nil
        } catch {
            lastSaveError = "cannot write \(stateFile.path): \(error)"
        }
    }
}
