public import Testing

/// One at a time, across suites: a suite trait for suites that must not overlap in the one test
/// process SwiftPM runs. kube-sim's transcript replay compares a rollout against real
/// Kubernetes' timing (a progress deadline of 15 s); beside the seed checklists' end-to-end run
/// (image builds, load checks, five pipelines) on a two-core CI machine, its controllers fell
/// behind and the replay differed. Each suite with this trait waits for the others to finish.
public struct ExclusiveRun: SuiteTrait, TestScoping {
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await ExclusiveRunLock.shared.acquire()
        do {
            try await function()
        } catch {
            await ExclusiveRunLock.shared.release()
            throw error
        }
        await ExclusiveRunLock.shared.release()
    }
}

extension Trait where Self == ExclusiveRun {
    /// Runs the suite while no other suite with this trait runs.
    public static var exclusiveRun: Self { ExclusiveRun() }
}

/// A lock that suspends (never blocks a thread) until it is free, first come first served.
actor ExclusiveRunLock {
    static let shared = ExclusiveRunLock()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
