public import Foundation
import Logging
public import SlipwayCore
import SlipwayPipeline
public import SlipwayProcess
public import SlipwayStore
import Synchronization

/// What a finished run reports back to the command line.
public struct RunResult: Sendable {
    public var runID: Int64
    public var outcome: Outcome
    public var exitStatus: ExitStatus
    public var reason: String?
}

/// A run that could not start (a missing secret, a stage kind this build cannot run).
public struct RunRefused: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String?
    public var description: String { hint.map { "\(message)\n    hint: \($0)" } ?? message }
}

/// Diagnostics for people debugging deploy itself (`SLIPWAY_LOG=debug`); never secrets, and never
/// the run's own output, which goes to the reporter.
let log = Logger(label: "slipway.engine")

/// Runs a plan's stages in order, streaming every event to the reporter and recording it.
public struct Engine: Sendable {
    public let store: any DeployStore
    public let launcher: any ProcessLaunching
    /// Sleeps between retries; tests inject a clock that never waits (SlipwayTestSupport.ImmediateClock).
    public let clock: any Clock<Duration>
    public let reporter: any Reporting
    /// The process environment steps inherit (and where secrets are read from).
    public let environment: [String: String]
    /// A number in 0..<1 for backoff jitter.
    public let jitter: @Sendable () -> Double
    public let heartbeatInterval: Duration
    public let host: String
    public let pid: Int32
    /// The wall clock, for freeze windows and records (tests pass a fixed one).
    public let now: @Sendable () -> Date
    /// Asks the person at the terminal to approve (nil when nobody is there: CI, no TTY).
    public let approvalPrompt: (@Sendable (String) async -> Bool)?
    /// Where targets keep their own state (the docker target's nginx configuration), beside the run store.
    public let stateDirectory: String
    /// Builds the target of an environment; the registry (``TargetSpec/makeTarget(_:)``) unless a
    /// caller brings its own (the tests' in-process target).
    public let makeTarget: TargetFactory
    /// What rolling back from the serving commit to a restored one undoes, in a sentence
    /// (`rolling back undoes 7 commits, 1 of them a migration: …`), from git; nil when unknown.
    public typealias RollbackImpact = @Sendable (_ serving: String, _ restored: String) async -> String?
    /// Set by whoever knows the repository (the CLI's workspace); `deploy rollback` shows it
    /// before it acts and records it.
    public var rollbackImpact: RollbackImpact?

    public typealias TargetFactory = @Sendable (TargetSpec, TargetSetting) throws -> any DeployTarget

    public init(
        store: any DeployStore,
        launcher: any ProcessLaunching = ProcessRunner(),
        clock: any Clock<Duration> = ContinuousClock(),
        reporter: any Reporting = SilentReporter(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        heartbeatInterval: Duration = .seconds(5),
        host: String = HostName.current,
        pid: Int32 = ProcessInfo.processInfo.processIdentifier,
        now: @escaping @Sendable () -> Date = { Date() },
        approvalPrompt: (@Sendable (String) async -> Bool)? = nil,
        stateDirectory: String = ".slipway",
        makeTarget: @escaping TargetFactory = { spec, setting in try spec.makeTarget(setting) }
    ) {
        self.makeTarget = makeTarget
        self.stateDirectory = stateDirectory
        self.now = now
        self.approvalPrompt = approvalPrompt
        self.store = store
        self.launcher = launcher
        self.clock = clock
        self.reporter = reporter
        self.environment = environment
        self.jitter = jitter
        self.heartbeatInterval = heartbeatInterval
        self.host = host
        self.pid = pid
    }

    /// Checks what can be checked before anything runs: secrets present, every stage runnable.
    public func preflight(_ plan: Plan) throws(RunRefused) -> SecretMasker {
        let missing = plan.pipeline.secrets.filter { (environment[$0] ?? "").isEmpty }
        // An emergency rollback goes ahead without the secrets a deploy needs (webhook URLs).
        if !missing.isEmpty, !plan.isRollback {
            throw RunRefused(
                message: "secret\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) not set in the environment",
                hint: "export \(missing[0])=… before running deploy, or remove it from `secrets:` in \(plan.pipeline.file)")
        }
        for entry in plan.entries where entry.runs {
            switch entry.stage.kind {
            case .steps:
                break
            case .deploy(let name), .rollback(let name, _):
                let target = plan.pipeline.environment(named: name)?.target
                if let target {
                    do {
                        _ = try makeTarget(
                            target, TargetSetting(pipeline: plan.pipeline, environment: name, stateDirectory: stateDirectory))
                    } catch {
                        throw RunRefused(
                            message: "stage '\(entry.stage.name)' deploys to a \(target.kind) target: \(error)",
                            hint: "remove `target:` from environment '\(name)' to run its stages only, or use a docker target")
                    }
                } else if case .rollback = entry.stage.kind {
                    throw RunRefused(
                        message: "\(name) has no target, so there is nothing to roll back",
                        hint: "give it `target: { docker: { listen: 127.0.0.1:8081 } }` in \(plan.pipeline.file)")
                }
            case .approval, .checklist:
                break
            case .build, .push:
                guard plan.pipeline.image != nil else {
                    throw RunRefused(
                        message: "stage '\(entry.stage.name)' builds or pushes an image, but the pipeline names none",
                        hint: "add `image: registry.example.com/\(plan.pipeline.app)` to \(plan.pipeline.file)")
                }
            }
        }
        return SecretMasker(secrets: plan.pipeline.secrets.compactMap { environment[$0] })
    }

    /// Asks each target the run will change whether it can be driven (kubectl found, cluster
    /// reached, verbs allowed), before any stage runs. The deploy stage asks again, on the record,
    /// just before it changes anything (an approval may have waited hours in between).
    public func preflightTargets(_ plan: Plan) async throws(RunRefused) {
        for entry in plan.entries where entry.runs {
            guard case .deploy(let name) = entry.stage.kind, let spec = plan.pipeline.environment(named: name)?.target,
                let target = try? makeTarget(
                    spec,
                    TargetSetting(
                        pipeline: plan.pipeline, environment: name, stateDirectory: stateDirectory, processEnvironment: environment,
                        launcher: launcher))
            else { continue }
            guard target.checksBeforeChanges else { continue }
            do {
                try await target.preflight(say: { _ in })
            } catch {
                throw RunRefused(
                    message: "stage '\(entry.stage.name)' cannot deploy to \(name): \(error)",
                    hint: "nothing was changed; fix the cluster or the `target:` of \(name) in \(plan.pipeline.file)")
            }
        }
    }

    /// With `promote_from`, only a release that succeeded in the earlier environment may go on.
    public func checkPromotion(_ plan: Plan, release: Release) async throws {
        guard let from = plan.environment.promoteFrom, !plan.isRollback else { return }
        guard let sha = release.sha else {
            throw RunRefused(
                message: "\(plan.environment.name) is promoted from \(from), but this release has no git commit to look up",
                hint: "run deploy inside the git repository of the release, or set SLIPWAY_SHA")
        }
        if let latest = try await store.latestRun(environment: from, sha: sha), latest.rehearsal == .failed {
            throw RunRefused(
                message:
                    "release \(release.description) failed its rollback rehearsal in \(from) (run \(latest.id)): \(plan.environment.name) does not take it",
                hint: "`deploy show \(latest.id)` shows what failed; fix it and deploy \(from) again")
        }
        if try await store.lastSucceeded(environment: from, sha: sha) == nil {
            throw RunRefused(
                message: "release \(release.description) has not passed \(from): \(plan.environment.name) takes only releases that did",
                hint: "run `deploy \(from)` for this commit first; `deploy history \(from)` shows what passed")
        }
    }

    /// Runs the plan. `interrupts` yields a signal number when the user asks to stop (Ctrl-C,
    /// SIGTERM); the running step's process group is then stopped and the run recorded cancelled.
    ///
    /// `changelog` is stored with the run; `dirty` says the working tree had uncommitted changes,
    /// and `overrides` names what the trigger asked to let through (`allow-dirty`), on the record.
    ///
    /// The environment is checked against its freeze windows (`freezeOverride` is the reason given
    /// to pass one), then its lease is taken (at once, or queueing up to `wait`) and held until the
    /// last hook has run.
    public func run(
        _ plan: Plan, release: Release, trigger: Trigger,
        interrupts: AsyncStream<Int32> = AsyncStream { $0.finish() },
        changelog: Changelog? = nil, dirty: Bool = false, overrides: [String] = [],
        wait: Duration? = nil, freezeOverride: String? = nil, explicitRelease: Bool = false
    ) async throws -> RunResult {
        var plan = plan
        var release = release
        var changelog = changelog
        var image: String?
        var explicitRelease = explicitRelease
        if explicitRelease, !plan.isRollback {
            if plan.environment.target != nil {
                // A release by name is one that was built and pushed: its commit, its image.
                let named = try await pushedRelease(release.version ?? "", environment: plan.environment.name)
                release = Release(sha: named.sha, version: named.version, source: release.source)
                plan = plan.deployingBuiltRelease(release.description, builtBy: named.id)
                image = named.image
                if named.sha != changelog?.head { changelog = nil }
            } else {
                // Nothing to deploy: the name only labels the run, and is no way past a pin.
                explicitRelease = false
            }
        }
        let masker = try preflight(plan)
        try await preflightTargets(plan)
        // Commit messages are the authors' text: a secret pasted into one is masked like any other.
        changelog = changelog?.masked(by: masker)
        try await checkPromotion(plan, release: release)
        let environment = plan.environment.name
        var overrides = overrides
        if !plan.isRollback, let pin = try await store.pin(environment: environment) {
            guard explicitRelease else {
                throw EnvironmentUnavailable(
                    message: "\(environment) is pinned since \(pin.at.formatted(.iso8601)) by \(pin.actor): \(pin.reason)",
                    hint:
                        "`deploy unpin \(environment)` once the cause is fixed, or deploy a release by name: `deploy \(environment) --release VERSION`"
                )
            }
            overrides.append("pinned: deployed a release by name")
        }
        if let window = plan.environment.freezes.first(where: { $0.contains(now()) }) {
            // A rollback is how a bad change is undone: freezes do not stop it, but the record says so.
            if plan.isRollback {
                overrides.append("freeze \(window.description): rollbacks pass freezes")
            } else {
                guard let reason = freezeOverride, !reason.isEmpty else {
                    throw EnvironmentUnavailable(
                        message: "\(environment) is frozen: \(window.reason) (\(window.description))",
                        hint: "deploy after the window, or pass --override-freeze --reason TEXT (recorded in the audit log)")
                }
                overrides.append("freeze \(window.description): \(reason)")
                try await store.audit(
                    actor: trigger.description, action: "freeze.override", environment: environment,
                    detail: "\(window.reason) (\(window.description)): \(reason)", at: now())
            }
        }
        // One listener takes the interrupts for the whole run: while queueing for the lease a
        // signal ends the wait; once the run has started it is forwarded to the stages.
        let (forwarded, forward) = AsyncStream.makeStream(of: Int32.self)
        let signalled = SignalFlag()
        return try await withThrowingTaskGroup(of: RunResult?.self) { group in
            group.addTask {
                for await number in interrupts {
                    signalled.set(number)
                    forward.yield(number)
                }
                forward.finish()
                return nil
            }
            defer { group.cancelAll() }
            try await acquireLease(environment: environment, trigger: trigger, wait: wait, signalled: signalled)
            do {
                let result = try await execute(
                    plan, release: release, trigger: trigger, masker: masker, interrupts: forwarded,
                    changelog: changelog, dirty: dirty, overrides: overrides, image: image)
                if result.outcome == .succeeded, explicitRelease, !plan.isRollback {
                    // Writes nothing when the environment was not pinned.
                    _ = try? await store.unpin(
                        environment: environment, actor: trigger.description,
                        reason: "release \(release.description) deployed by name and passed its gates", at: Date())
                }
                try? await store.releaseLease(environment: environment, pid: pid, host: host)
                return result
            } catch {
                try? await store.releaseLease(environment: environment, pid: pid, host: host)
                throw error
            }
        }
    }

    /// The first interrupt received, shared between the listener and a lease wait.
    final class SignalFlag: Sendable {
        private let value = Mutex<Int32?>(nil)
        func set(_ number: Int32) { value.withLock { if $0 == nil { $0 = number } } }
        var number: Int32? { value.withLock { $0 } }
    }

    /// A wait for the lease that a signal ended: nothing ran and nothing was recorded.
    public struct WaitInterrupted: Error, Sendable, CustomStringConvertible {
        public var environment: String
        public var signal: Int32
        public var description: String { "stopped waiting for \(environment) (\(Engine.signalName(signal))): nothing ran" }
    }
    /// The pushed release `name` (a version, or a commit), or a refusal saying what can be deployed.
    func pushedRelease(_ name: String, environment: String) async throws -> RunRecord {
        if let run = try await store.pushedRelease(named: name) { return run }
        throw RunRefused(
            message: "no release '\(name)' was built and pushed here, so there is nothing by that name to deploy to \(environment)",
            hint:
                "`deploy history` lists the releases that were; to build and deploy HEAD, run `deploy \(environment)` without --release")
    }

    static func unavailable(_ environment: String, _ lease: Lease) -> EnvironmentUnavailable {
        switch lease.kind {
        case .manual:
            EnvironmentUnavailable(
                message: "\(environment) is \(lease.description)",
                hint: "ask \(lease.holder), or `deploy unlock \(environment)` once it may be deployed again")
        case .run:
            EnvironmentUnavailable(
                message: "\(environment) is being deployed by \(lease.description)",
                hint: "wait for it with --wait [DURATION] (deploys queue in arrival order); `deploy history \(environment)` shows it")
        }
    }
}
