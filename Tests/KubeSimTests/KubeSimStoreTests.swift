import Foundation
import KubeSim
import SlipwayTestSupport
import Testing

/// The store's resource-version and watch semantics, and the patch and selector rules, in process.
@Suite("kube-sim store, watches, patches and selectors")
struct KubeSimStoreTests {
    let configMaps = ResourceCatalog.builtIn.first { $0.resource == "configmaps" }!

    func configMap(_ name: String, _ value: String) -> JSON {
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name)], "data": ["a": .string(value)]]
    }

    @Test("a watch from a resource version history no longer holds gets 410 Gone; a recent one replays what followed")
    func watchHistory() async throws {
        let store = try await Store(stateDirectory: nil, historyLimit: 5)
        var versions: [Int] = []
        for index in 0..<10 {
            let created = try await store.create(
                configMaps, namespace: "default", object: configMap("c\(index)", "x"), writer: Writer(manager: "test"))
            versions.append(Int(created[path: ["metadata", "resourceVersion"]]?.string ?? "") ?? 0)
        }
        #expect(versions == versions.sorted() && Set(versions).count == 10)
        await #expect(throws: APIError.self) {
            _ = try await store.watch(self.configMaps, namespace: "default", labels: .everything, fields: nil, since: versions[1])
        }
        do {
            _ = try await store.watch(configMaps, namespace: "default", labels: .everything, fields: nil, since: versions[1])
        } catch {
            #expect(error.code == 410 && error.reason == "Expired")
        }
        let (id, events) = try await store.watch(configMaps, namespace: "default", labels: .everything, fields: nil, since: versions[7])
        var iterator = events.makeAsyncIterator()
        let first = await iterator.next()
        let second = await iterator.next()
        #expect(first?.object[path: ["metadata", "name"]] == "c8" && second?.object[path: ["metadata", "name"]] == "c9")
        await store.bookmark(id, type: configMaps)
        let bookmark = await iterator.next()
        #expect(bookmark?.type == "BOOKMARK")
        #expect(bookmark?.object[path: ["metadata", "resourceVersion"]] == .string(String(versions[9])))
        await store.stopWatching(id)
    }

    @Test("an update with a stale resourceVersion conflicts; one that changes nothing is no write")
    func optimisticConcurrency() async throws {
        let store = try await Store(stateDirectory: nil)
        let created = try await store.create(configMaps, namespace: "default", object: configMap("c", "1"), writer: Writer(manager: "test"))
        let stale = created[path: ["metadata", "resourceVersion"]]?.string
        let updated = try await store.update(
            configMaps, namespace: "default", name: "c", object: configMap("c", "2"), writer: Writer(manager: "test"),
            expectedVersion: stale)
        #expect(updated["data"]?["a"] == "2")
        await #expect(throws: APIError.self) {
            _ = try await store.update(
                self.configMaps, namespace: "default", name: "c", object: self.configMap("c", "3"), writer: Writer(manager: "test"),
                expectedVersion: stale)
        }
        let same = try await store.update(
            configMaps, namespace: "default", name: "c", object: updated, writer: Writer(manager: "test"))
        #expect(same[path: ["metadata", "resourceVersion"]] == updated[path: ["metadata", "resourceVersion"]])
    }

    @Test("objects survive a restart of the store on the same directory")
    func persistence() async throws {
        let directory = try TemporaryDirectory("kube-sim-store")
        defer { directory.remove() }
        let url = URL(fileURLWithPath: directory.path)
        let first = try await Store(stateDirectory: url)
        _ = try await first.create(configMaps, namespace: "default", object: configMap("kept", "v"), writer: Writer(manager: "test"))
        await first.save()
        let second = try await Store(stateDirectory: url)
        let kept = try await second.get(configMaps, namespace: "default", name: "kept")
        #expect(kept["data"]?["a"] == "v")
        #expect(await second.resourceVersion >= Int(kept[path: ["metadata", "resourceVersion"]]?.string ?? "") ?? 0)
    }

    @Test("label selectors: equality, sets, existence")
    func selectors() throws {
        let selector = try LabelSelector(parsing: "app=web,tier in (front, edge),!legacy,track!=canary")
        #expect(selector.matches(["app": "web", "tier": "edge"]))
        #expect(!selector.matches(["app": "web", "tier": "db"]))
        #expect(!selector.matches(["app": "web", "tier": "front", "legacy": "yes"]))
        #expect(!selector.matches(["app": "web", "tier": "front", "track": "canary"]))
        let fields = try FieldSelector(parsing: "metadata.name=web")
        #expect(fields.matches(["metadata": ["name": "web"]]))
        #expect(!fields.matches(["metadata": ["name": "api"]]))
    }
}
