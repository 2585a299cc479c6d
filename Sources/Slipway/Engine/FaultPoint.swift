import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Named moments of a rollout at which a test can make `deploy` kill itself with SIGKILL, so that
/// each moment of a crash is hit exactly instead of by timing: `SLIPWAY_KILL_AT=moved` kills it once
/// the first traffic move is in force, `SLIPWAY_KILL_AT=moved:2` at the second.
///
/// Compiled into debug builds only (`SLIPWAY_FAULT_POINTS`, set by Package.swift for the debug
/// configuration, which the tests use); in a release build `reached` does nothing.
enum FaultPoint: String, CaseIterable {
    /// The new release answers beside what serves; no traffic has moved.
    case started
    /// A traffic move is in force (each canary step, a switch, a move back).
    case moved
    /// The bake began: all traffic is on the new release, the old one still runs.
    case baking
    /// nginx was told to load a new configuration, whose confirmation was not yet awaited
    /// (`state.json` still names the split before).
    case reloaded

    #if SLIPWAY_FAULT_POINTS
        private static let target: (point: String, count: Int)? = {
            guard let value = ProcessInfo.processInfo.environment["SLIPWAY_KILL_AT"], !value.isEmpty else { return nil }
            let parts = value.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
        }()
        private static let seen = Mutex<[String: Int]>([:])
    #endif

    /// Marks the moment; kills this process if `SLIPWAY_KILL_AT` names it (and its occurrence).
    func reached() {
        #if SLIPWAY_FAULT_POINTS
            guard let target = Self.target, target.point == rawValue else { return }
            let count = Self.seen.withLock { seen in
                seen[rawValue, default: 0] += 1
                return seen[rawValue, default: 0]
            }
            if count == target.count { kill(getpid(), SIGKILL) }
        #endif
    }
}
