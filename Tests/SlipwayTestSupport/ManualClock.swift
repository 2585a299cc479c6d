import Synchronization

/// A clock that moves only when told to (`advance(by:)`), resuming every sleeper whose deadline it
/// passes. Tests drive timeouts with it from an event (a line of output, a signal) instead of
/// waiting for real time to pass.
public final class ManualClock: Clock, Sendable {
    public struct Instant: InstantProtocol {
        public var offset: Duration
        public func advanced(by duration: Duration) -> Self { Instant(offset: offset + duration) }
        public func duration(to other: Self) -> Duration { other.offset - offset }
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, Never>
    }

    private let state = Mutex<(now: Instant, sleepers: [Sleeper], watchers: [CheckedContinuation<Void, Never>])>(
        (Instant(offset: .zero), [], []))

    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .zero }

    /// Returns once at least one task sleeps on this clock: advancing before then would move time
    /// under a sleep that has not begun.
    public func waitForSleeper() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if !state.sleepers.isEmpty { return true }
                state.watchers.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.map(\.continuation)
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        due.forEach { $0.resume() }
    }

    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        await withCheckedContinuation { continuation in
            let (ready, watchers) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                if deadline <= state.now { return (true, []) }
                state.sleepers.append(Sleeper(deadline: deadline, continuation: continuation))
                defer { state.watchers.removeAll() }
                return (false, state.watchers)
            }
            watchers.forEach { $0.resume() }
            if ready { continuation.resume() }
        }
        try Task.checkCancellation()
    }
}
