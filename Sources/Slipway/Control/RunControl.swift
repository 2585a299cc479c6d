public import Foundation
import SlipwayCore
public import SlipwayStore
import Synchronization

/// What other shells have asked of this run (`deploy abort`, `deploy pause`, `deploy resume`),
/// read from the store while it runs. A rollout in progress handles an abort itself (it stops the
/// strategy and rolls back through the verified path); elsewhere an abort stops the run.
final class RunControl: Sendable {
    private struct State {
        var abort: RunControlRecord?
        var pause: RunControlRecord?
        var lastID: Int64 = 0
        /// Rollouts that handle an abort themselves right now.
        var handlers = 0
        /// A rollout had the abort in hand when it ended a handling scope: it rolled back (or the
        /// run failed) because of it, so the run is not also cancelled for it.
        var abortHandled = false
        /// How long the rollout has been held by `deploy pause`, in all, and since when it is held now.
        var held: Duration = .zero
        var holdStarted: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    /// How often the store is asked: an abort takes effect within this, plus the rollback.
    static let pollInterval = Duration.milliseconds(200)

    var abort: RunControlRecord? { state.withLock { $0.abort } }
    var pause: RunControlRecord? { state.withLock { $0.pause } }
    /// How long the rollout has been held so far, the hold in progress included.
    var held: Duration {
        state.withLock { state in state.held + (state.holdStarted.map { ContinuousClock.now - $0 } ?? .zero) }
    }

    func beginHold() { state.withLock { $0.holdStarted = .now } }

    func endHold() {
        state.withLock { state in
            if let started = state.holdStarted { state.held += ContinuousClock.now - started }
            state.holdStarted = nil
        }
    }

    /// Runs `body` as a rollout that handles an abort itself.
    /// An abort present when the scope ends is the rollout's: after the strategy's scope it rolls
    /// back (or the release never took traffic and the run fails), after the rollback's scope the
    /// rollback was what the abort asked. (Without this, the watcher could find the abort with no
    /// handler between the two scopes, or after the rollback, and cancel a run already rolled back.)
    func handlingAbort<T: Sendable>(_ body: () async -> T) async -> T {
        state.withLock { $0.handlers += 1 }
        defer {
            state.withLock { state in
                if state.abort != nil { state.abortHandled = true }
                state.handlers -= 1
            }
        }
        return await body()
    }

    /// Reads new requests until the run ends; returns an abort that no rollout is there to handle.
    func watch(store: any DeployStore, runID: Int64, report: @Sendable (String) -> Void) async -> RunControlRecord? {
        while !Task.isCancelled {
            do { try await Task.sleep(for: Self.pollInterval) } catch { return nil }
            let after = state.withLock { $0.lastID }
            guard let records = try? await store.controls(runID: runID, after: after) else { continue }
            for record in records {
                state.withLock { state in
                    state.lastID = record.id
                    switch record.action {
                    case .abort: if state.abort == nil { state.abort = record }
                    case .pause: state.pause = record
                    case .resume: state.pause = nil
                    }
                }
                // Recorded as the run saw it: the request itself is in the audit log.
                try? await store.append(
                    EventRecord(runID: runID, at: Date(), kind: .control(record.action.rawValue), message: record.said))
                report(record.said)
            }
            let unhandled = state.withLock { $0.handlers == 0 && !$0.abortHandled ? $0.abort : nil }
            if let unhandled { return unhandled }
        }
        return nil
    }
}

extension RunControlRecord {
    /// `aborted by ann: error rate climbing`.
    var said: String {
        let verb =
            switch action {
            case .abort: "aborted"
            case .pause: "paused"
            case .resume: "resumed"
            }
        return "\(verb) by \(actor)" + (reason.map { ": \($0)" } ?? "")
    }
}

/// A request that cannot be made of a run: there is no such run, or it is over.
public struct ControlRefused: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?
    public var description: String { message }
}

/// The rules for `deploy abort`, `deploy pause` and `deploy resume`, the same for every store.
public enum RunControls {
    /// Records `action` on run `runID` by `actor`; refuses a run that does not run.
    @discardableResult
    public static func request(
        in store: any DeployStore, runID: Int64, action: RunControlAction, actor: String, reason: String?, now: Date = Date()
    ) async throws -> (record: RunControlRecord, environment: String) {
        let environment = Mutex<String>("")
        let record = try await store.control(runID: runID, action: action, actor: actor, reason: reason, now: now) { run in
            guard let run else {
                throw ControlRefused(message: "there is no run \(runID)", hint: "`deploy history` lists the runs")
            }
            guard run.outcome == .running else {
                throw ControlRefused(
                    message: "run \(runID) is not running: it \(run.outcome.rawValue)",
                    hint: action == .abort ? "`deploy rollback \(run.environment)` puts the last good release back" : nil)
            }
            environment.withLock { $0 = run.environment }
        }
        return (record, environment.withLock { $0 })
    }
}
