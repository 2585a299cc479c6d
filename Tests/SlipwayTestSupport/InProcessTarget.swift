import Foundation
public import Slipway
import Synchronization

/// A ``DeployTarget`` whose instances live in this process: staging a release adds an instance,
/// routing sets the split, retiring removes it, and observing reads exactly that back. It is a
/// real implementation of the protocol (nothing about strategies is scripted in it), so the
/// rollout strategies are tested over it without containers or a proxy.
public final class InProcessTarget: DeployTarget {
    struct State {
        var instances: [TargetInstance] = []
        var routes: [TrafficShare] = []
        var moves: [[TrafficShare]] = []
        var retired: [String] = []
    }

    private let state = Mutex(State())
    /// Images that are gone (a rollback must skip their releases).
    private let missingImages: Set<String>
    /// Versions whose instances never answer (staging them fails).
    private let brokenVersions: Set<String>

    /// The move (counting from 1) that never finishes (until cancelled): a router that hangs.
    private let hangOnMove: Int?

    public init(missingImages: Set<String> = [], brokenVersions: Set<String> = [], hangOnMove: Int? = nil) {
        self.missingImages = missingImages
        self.brokenVersions = brokenVersions
        self.hangOnMove = hangOnMove
    }

    public var kind: String { "in-process" }
    public var serviceURL: String { "inproc://service" }
    public var budget: TargetBudget { TargetBudget(stage: .seconds(1), route: .seconds(1)) }

    /// What an earlier deploy left: `release` serving all traffic, carrying `history`.
    public func seed(_ release: ReleaseReference, history: [ReleaseReference] = []) {
        let instance = TargetInstance(
            name: "r\(release.run)", release: release, url: "inproc://r\(release.run)", goodHistory: history, startedBy: String(release.run)
        )
        state.withLock {
            $0.instances.append(instance)
            $0.routes = [TrafficShare(instance, weight: 100)]
        }
    }

    public func observe() async throws -> TargetObservation {
        state.withLock { TargetObservation(instances: $0.instances, routes: $0.routes) }
    }

    public func stage(
        _ release: ReleaseReference, run: Int64, history: [ReleaseReference], say: @escaping @Sendable (String) -> Void
    ) async throws -> TargetInstance {
        if let version = release.version, brokenVersions.contains(version) {
            throw Refused(description: "r\(run) (\(version)) never answered")
        }
        let instance = TargetInstance(
            name: "r\(run)", release: release, url: "inproc://r\(run)", goodHistory: history, startedBy: String(run))
        state.withLock { $0.instances.append(instance) }
        say("started \(instance.name)")
        return instance
    }

    public func route(_ shares: [TrafficShare]) async throws -> String {
        let live = shares.filter { $0.weight > 0 }
        if let hangOnMove, state.withLock({ $0.moves.count + 1 == hangOnMove }) {
            state.withLock { $0.moves.append([]) }
            // Until the deploy gives up on it: a stream that never yields, ended by cancellation.
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
            await withTaskCancellationHandler {
                for await _ in stream {}
            } onCancel: {
                continuation.finish()
            }
            throw CancellationError()
        }
        try state.withLock { state in
            for share in live where !state.instances.contains(where: { $0.name == share.instance.name }) {
                throw Refused(description: "no instance \(share.instance.name) to send traffic to")
            }
            state.routes = live
            state.moves.append(live)
        }
        return Self.describe(live)
    }

    public func retire(_ instance: TargetInstance) async throws {
        state.withLock { state in
            state.instances.removeAll { $0.name == instance.name }
            state.routes.removeAll { $0.instance.name == instance.name }
            state.retired.append(instance.name)
        }
    }

    public func imageAvailable(_ image: String, say: @escaping @Sendable (String) -> Void) async -> Bool {
        !missingImages.contains(image)
    }

    public func describe(_ operation: TargetOperation) -> String {
        switch operation {
        case .stage(let release, let name): "start \(name) (\(release.image))"
        case .route: "route"
        case .retire(let instance): "retire \(instance.name)"
        case .findImage: "find image"
        }
    }

    public func status() async -> TargetStatus {
        state.withLock { TargetStatus(kind: kind, url: serviceURL, routes: $0.routes) }
    }

    public func teardown() async throws -> [String] {
        state.withLock { state in
            defer { state = State() }
            return state.instances.map { "removed \($0.name)" }
        }
    }

    // MARK: What the tests read

    /// Each split applied, in order: `1.1.0 25%, 1.0.0 75%`.
    public var moves: [String] { state.withLock { $0.moves.map(Self.describe) } }
    /// What serves now: `1.1.0 100%`.
    public var serving: String { state.withLock { Self.describe($0.routes) } }
    /// The instances that exist now, by name.
    public var instances: [String] { state.withLock { $0.instances.map(\.name) } }
    public var retired: [String] { state.withLock { $0.retired } }

    static func describe(_ shares: [TrafficShare]) -> String {
        shares.isEmpty ? "nothing" : shares.map { "\($0.instance.label) \($0.weight)%" }.joined(separator: ", ")
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String
    }
}
