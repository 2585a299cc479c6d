public import Foundation
import Logging
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
    public let store: RunStore
    public let launcher: any ProcessLaunching
    /// Sleeps between retries; tests inject ``ImmediateClock``.
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

    public init(
        store: RunStore,
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
        stateDirectory: String = ".slipway"
    ) {
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
                if let target = plan.pipeline.environment(named: name)?.target, case .kubernetes = target {
                    throw RunRefused(
                        message:
                            "stage '\(entry.stage.name)' deploys to a \(target.kind) target, which this version of deploy cannot drive yet",
                        hint: "remove `target:` from environment '\(name)' to run its stages only, or use a docker target")
                }
                if case .rollback = entry.stage.kind, plan.pipeline.environment(named: name)?.target == nil {
                    throw RunRefused(
                        message: "\(name) has no target, so there is nothing to roll back",
                        hint: "give it `target: { docker: { listen: 127.0.0.1:8081 } }` in \(plan.pipeline.file)")
                }
            case .approval:
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

    /// With `promote_from`, only a release that succeeded in the earlier environment may go on.
    public func checkPromotion(_ plan: Plan, release: Release) throws {
        guard let from = plan.environment.promoteFrom, !plan.isRollback else { return }
        guard let sha = release.sha else {
            throw RunRefused(
                message: "\(plan.environment.name) is promoted from \(from), but this release has no git commit to look up",
                hint: "run deploy inside the git repository of the release, or set SLIPWAY_SHA")
        }
        if let latest = try store.latestRun(environment: from, sha: sha), latest.rehearsal == "failed" {
            throw RunRefused(
                message:
                    "release \(release.description) failed its rollback rehearsal in \(from) (run \(latest.id!)): \(plan.environment.name) does not take it",
                hint: "`deploy show \(latest.id!)` shows what failed; fix it and deploy \(from) again")
        }
        if try store.lastSucceeded(environment: from, sha: sha) == nil {
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
        let masker = try preflight(plan)
        try checkPromotion(plan, release: release)
        let environment = plan.environment.name
        var overrides = overrides
        if !plan.isRollback, let pin = try store.pin(environment: environment) {
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
                try store.audit(
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
                    changelog: changelog, dirty: dirty, overrides: overrides)
                if result.outcome == .succeeded, explicitRelease, !plan.isRollback {
                    // Writes nothing when the environment was not pinned.
                    _ = try? store.unpin(
                        environment: environment, actor: trigger.description,
                        reason: "release \(release.description) deployed by name and passed its gates", at: Date())
                }
                try? store.releaseLease(environment: environment, pid: pid, host: host)
                return result
            } catch {
                try? store.releaseLease(environment: environment, pid: pid, host: host)
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

    /// Takes the environment's lease, or says who holds it; with `wait`, queues in arrival order.
    func acquireLease(environment: String, trigger: Trigger, wait: Duration?, signalled: SignalFlag = SignalFlag()) async throws {
        let holder = trigger.description
        let first = try store.acquireLease(
            environment: environment, holder: holder, host: host, pid: pid, now: now(),
            isAlive: ProcessLiveness.isAlive)
        guard case .held(let current) = first else { return }
        guard let wait else { throw Self.unavailable(environment, current) }
        let ticket = try store.enqueue(environment: environment, holder: holder, host: host, pid: pid, now: now())
        var waited = Duration.zero
        var told: String?
        let interval = Duration.milliseconds(250)
        do {
            while true {
                let attempt = try store.acquireLease(
                    environment: environment, holder: holder, host: host, pid: pid, now: now(),
                    queueTicket: ticket, isAlive: ProcessLiveness.isAlive)
                let why: String
                switch attempt {
                case .acquired:
                    if told != nil { reporter.report(.notice("\(environment) is free: starting")) }
                    return
                case .held(let lease):
                    why = "held by \(lease.description)"
                case .queued(let ahead):
                    why = "\(ahead) deploy\(ahead == 1 ? "" : "s") ahead in line"
                }
                if why != told {
                    reporter.report(.notice("waiting for \(environment): \(why)"))
                    told = why
                }
                if waited >= wait {
                    throw EnvironmentUnavailable(
                        message: "gave up waiting for \(environment) after \(DurationParser.format(wait)): \(why)",
                        hint: "wait longer with --wait DURATION")
                }
                if let number = signalled.number { throw WaitInterrupted(environment: environment, signal: number) }
                try await clock.sleep(for: interval)
                waited += interval
            }
        } catch {
            try? store.leaveQueue(ticket: ticket)
            throw error
        }
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

    /// Runs the plan with the pipeline's webhooks told as it goes. Deliveries run beside the run;
    /// once it ends they get up to 15 seconds more, so that a dead webhook never holds a deploy.
    func execute(
        _ plan: Plan, release: Release, trigger: Trigger, masker: SecretMasker, interrupts: AsyncStream<Int32>,
        changelog: Changelog?, dirty: Bool, overrides: [String]
    ) async throws -> RunResult {
        let notifier = Notifier(pipeline: plan.pipeline, environment: environment, store: store, clock: clock, masker: masker)
        let (notifications, continuation) = AsyncStream.makeStream(of: Notification.self)
        let notify: @Sendable (Notification) -> Void = { continuation.yield($0) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await notifier.deliver(notifications) }
            let result: RunResult
            do {
                result = try await executeRun(
                    plan, release: release, trigger: trigger, masker: masker, interrupts: interrupts,
                    changelog: changelog, dirty: dirty, overrides: overrides,
                    notify: notifier.isEmpty ? nil : notify)
            } catch {
                continuation.finish()
                group.cancelAll()
                throw error
            }
            continuation.finish()
            group.addTask { try? await Task.sleep(for: .seconds(15)) }
            _ = try await group.next()
            group.cancelAll()
            return result
        }
    }

    func executeRun(
        _ plan: Plan, release: Release, trigger: Trigger, masker: SecretMasker, interrupts: AsyncStream<Int32>,
        changelog: Changelog?, dirty: Bool, overrides: [String], notify: (@Sendable (Notification) -> Void)?
    ) async throws -> RunResult {
        let started = ContinuousClock.now
        let message: @Sendable (Int64, NotificationEvent, String?) -> Void = { runID, event, reason in
            notify?(
                Notification(
                    event: event, runID: runID, app: plan.pipeline.app, environment: plan.environment.name,
                    version: release.version, sha: release.sha, trigger: trigger.description, reason: reason))
        }
        var record = RunRecord(
            pipeline: plan.pipeline.file, app: plan.pipeline.app, environment: plan.environment.name,
            trigger: trigger, sha: release.sha, version: release.version, startedAt: Date(), ownerPID: pid,
            ownerHost: host)
        record.dirty = dirty
        record.overrides = overrides.joined(separator: ",")
        record.kind = plan.isRollback ? "rollback" : "deploy"
        let run = try store.insert(record)
        let runID = run.id!
        try store.attachLease(environment: plan.environment.name, pid: pid, host: host, runID: runID)
        try store.audit(
            actor: trigger.description, action: "run.started", environment: plan.environment.name, runID: runID,
            detail: "release \(release.description)" + (overrides.isEmpty ? "" : "; overrides: " + overrides.joined(separator: "; ")))
        for override in overrides {
            try store.append(EventRecord(runID: runID, at: Date(), kind: "run.override", message: "\(trigger.user) overrode: \(override)"))
        }
        if let changelog {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try store.saveChangelog(
                runID: runID, baseKind: changelog.base.kind.rawValue, baseSHA: changelog.base.sha, commitCount: changelog.commits.count,
                markdown: changelog.markdown, json: String(decoding: try encoder.encode(changelog), as: UTF8.self))
            try store.append(EventRecord(runID: runID, at: Date(), kind: "run.changelog", message: changelog.summary))
        }
        log.debug("run \(runID) started", metadata: ["environment": "\(plan.environment.name)", "pid": "\(pid)", "host": "\(host)"])
        let stages = try store.insert(
            plan.entries.enumerated().map { position, entry in
                entry.runs
                    ? StageRecord(runID: runID, position: position, name: entry.stage.name, kind: entry.stage.kindName)
                    : StageRecord.skipped(runID: runID, position: position, stage: entry.stage, reason: entry.skipReason)
            })
        reporter.report(
            .runStarted(
                runID: runID, app: plan.pipeline.app, environment: plan.environment.name, release: release,
                trigger: trigger, stages: plan.entries.map { ($0.stage.name, $0.runs, $0.skipReason) }))
        if let changelog { reporter.report(.notice(changelog.summary)) }

        message(runID, .started, changelog?.summary)
        let context = RunContext(
            engine: self, plan: plan, runID: runID, stages: stages, release: release, masker: masker,
            trigger: trigger, changelog: changelog, notify: { event, reason in message(runID, event, reason) })
        enum Child: Sendable {
            case stages(Finish)
            case interrupted(Int32)
            case idle
        }
        let (finish, signal) = await withTaskGroup(of: Child.self) { group -> (Finish, Int32?) in
            group.addTask { .stages(await context.runStages()) }
            group.addTask {
                for await number in interrupts { return .interrupted(number) }
                return .idle
            }
            group.addTask {
                await context.heartbeat()
                return .idle
            }
            var finish: Finish?
            var signal: Int32?
            while finish == nil, let next = await group.next() {
                switch next {
                case .stages(let result):
                    finish = result
                case .interrupted(let number):
                    // Cancel the stages (tearing down the running step's process group) and keep
                    // waiting for them to record how far they got.
                    signal = number
                    group.cancelAll()
                case .idle:
                    break
                }
            }
            group.cancelAll()
            return (finish ?? Finish(outcome: .cancelled, reason: nil), signal)
        }

        var outcome = finish.outcome
        var reason = finish.reason
        if let signal, outcome != .succeeded {
            outcome = .cancelled
            reason = "cancelled by \(Self.signalName(signal))" + (finish.reason.map { " (\($0))" } ?? "")
        }
        // Hooks after the stages; they run whatever happened to the stages' task.
        if outcome == .succeeded {
            await context.runHook(plan.isRollback ? .postRollback : .postDeploy)
        } else {
            await context.runHook(.onFailure, outcome: outcome, reason: reason)
        }
        let status: ExitStatus =
            switch outcome {
            case .succeeded: .success
            case .cancelled: .cancelled
            case .rolledBack: .rolledBack
            case .rollbackFailed: .rollbackFailed
            default: .failed
            }

        try store.finish(runID: runID, outcome: outcome, exitCode: Int(status.rawValue), reason: reason, at: Date())
        try store.audit(
            actor: trigger.description, action: "run.finished", environment: plan.environment.name, runID: runID,
            detail: outcome.rawValue + (reason.map { ": \($0)" } ?? ""))
        let event: NotificationEvent =
            switch outcome {
            case .succeeded: plan.isRollback ? .rolledBack : .succeeded
            case .cancelled: .cancelled
            case .rolledBack: .rolledBack
            default: .failed
            }
        message(runID, event, reason)
        reporter.report(
            .runFinished(
                runID: runID, outcome: outcome, exitCode: status.rawValue, reason: reason,
                duration: ContinuousClock.now - started))
        return RunResult(runID: runID, outcome: outcome, exitStatus: status, reason: reason)
    }

    static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT (Ctrl-C)"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }

    struct Finish: Sendable {
        var outcome: Outcome
        var reason: String?
    }
}

// MARK: - One run

/// The state of one run while its stages execute.
struct RunContext: Sendable {
    let engine: Engine
    let plan: Plan
    let runID: Int64
    /// The run's stage records, by position in the pipeline.
    let stages: [StageRecord]
    let release: Release
    let masker: SecretMasker
    let trigger: Trigger
    let changelog: Changelog?
    /// Tells the webhooks.
    let notify: @Sendable (NotificationEvent, String?) -> Void

    var store: RunStore { engine.store }
    var reporter: any Reporting { engine.reporter }

    /// The values `${NAME}` can take in this run, built-ins first.
    func variables(stage: String) -> [String: String] {
        var values: [String: String] = [:]
        for (name, value) in plan.pipeline.variables { values[name] = value }
        for (name, value) in plan.environment.variables { values[name] = value }
        let builtins: [String: String?] = [
            "VERSION": release.version ?? "", "SHA": release.sha ?? "", "SHORT_SHA": release.shortSHA ?? "",
            "ENV": plan.environment.name, "RUN_ID": String(runID), "APP": plan.pipeline.app,
            "IMAGE": plan.pipeline.image ?? "", "STAGE": stage,
        ]
        for (name, value) in builtins {
            values[name] = value ?? ""
            values["DEPLOY_" + name] = value ?? ""
        }
        for name in plan.pipeline.secrets { values[name] = engine.environment[name] }
        return values
    }

    /// The environment a step or hook sees: ours, then the pipeline's variables, then DEPLOY_*.
    func childEnvironment(stage: String, extra: [(name: String, value: String)] = [], values: [String: String]) throws -> [String: String] {
        var env = engine.environment
        for (name, value) in plan.pipeline.variables { env[name] = value }
        for (name, value) in plan.environment.variables { env[name] = value }
        for (name, value) in values where name.hasPrefix("DEPLOY_") { env[name] = value }
        for (name, value) in extra { env[name] = try Variables.expand(value, with: values) }
        return env
    }

    func heartbeat() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: engine.heartbeatInterval)
                try store.heartbeat(runID: runID, at: Date())
                try store.heartbeatLease(environment: plan.environment.name, pid: engine.pid, host: engine.host, now: Date())
            } catch {
                return
            }
        }
    }

    func runStages() async -> Engine.Finish {
        let preHook: HookEvent = plan.isRollback ? .preRollback : .preDeploy
        if let failure = await runHook(preHook), failure {
            skipRemaining(from: 0, reason: "the \(preHook.rawValue) hook failed")
            return Engine.Finish(outcome: .failed, reason: "the \(preHook.rawValue) hook failed; nothing ran")
        }
        let running = plan.entries.filter(\.runs).count
        var index = 0
        var position = 0
        for entry in plan.entries {
            defer { position += 1 }
            let stage = entry.stage
            guard entry.runs else {
                reporter.report(.stageSkipped(name: stage.name, reason: entry.skipReason ?? ""))
                continue
            }
            index += 1
            if Task.isCancelled {
                skipRemaining(from: position, reason: "the run was cancelled")
                return Engine.Finish(outcome: .cancelled, reason: "before stage '\(stage.name)'")
            }
            let outcome = await runStage(stage, position: position, index: index, count: running)
            switch outcome.outcome {
            case .succeeded, .failedAllowed:
                continue
            default:
                skipRemaining(from: position + 1, reason: "stage '\(stage.name)' \(outcome.outcome.rawValue)")
                if outcome.outcome == .rolledBack { await runHook(.postRollback, outcome: .rolledBack, reason: outcome.reason) }
                return Engine.Finish(outcome: outcome.outcome == .timedOut ? .failed : outcome.outcome, reason: outcome.reason)
            }
        }
        return Engine.Finish(outcome: .succeeded, reason: nil)
    }

    /// Records the stages after a failure as skipped, saying why.
    func skipRemaining(from position: Int, reason: String) {
        for (offset, entry) in plan.entries.enumerated() where offset >= position && entry.runs {
            var record = stages[offset]
            record.outcome = .skipped
            record.reason = reason
            try? store.update(record)
            reporter.report(.stageSkipped(name: entry.stage.name, reason: reason))
        }
    }

    struct StageOutcome {
        var outcome: Outcome
        var reason: String?
        /// The output the stage's last successful step kept (a push reads its digest there).
        var output: String?
    }

    var dockerCommand: String { plan.pipeline.dockerCommand(environment: engine.environment) }

    /// Image tags for this release: its version (made a valid tag) and its short sha.
    var imageTags: [String] {
        var tags: [String] = []
        if let version = release.version {
            let tag = String(version.map { $0.isLetter || $0.isNumber || "_.-".contains($0) ? $0 : "-" }.prefix(128))
            tags.append(tag)
        }
        if let short = release.shortSHA, !tags.contains(short) { tags.append(short) }
        return tags.isEmpty ? ["run-\(runID)"] : tags
    }

    /// Build and push stages as the steps they run: `docker build` with both tags and the OCI
    /// labels, and `docker push` of each tag. They are steps like any other: streamed, recorded,
    /// stopped on cancel.
    func imageSteps(_ stage: Stage) -> [Step] {
        guard let image = plan.pipeline.image else { return [] }
        func step(_ name: String, _ argv: [String]) -> Step {
            Step(
                name: name, location: stage.location, action: .run(argv), timeout: .seconds(3600), retries: 0,
                backoff: Step.defaultBackoff, continueOnError: false, environment: [], workingDirectory: nil)
        }
        switch stage.kind {
        case .build(let context, let file, let arguments, let noCache):
            var argv = [dockerCommand, "build"]
            if noCache { argv.append("--no-cache") }
            // Values are expanded like any argv element (`${VERSION}`), one argument each: no shell.
            for (name, value) in arguments { argv += ["--build-arg", "\(name)=\(value)"] }
            if let file { argv += ["-f", context == "." ? file : "\(context)/\(file)"] }
            for tag in imageTags { argv += ["-t", "\(image):\(tag)"] }
            var labels = ["org.opencontainers.image.created=\(Date().formatted(.iso8601))"]
            if let sha = release.sha { labels.append("org.opencontainers.image.revision=\(sha)") }
            if let version = release.version { labels.append("org.opencontainers.image.version=\(version)") }
            if let source = release.source { labels.append("org.opencontainers.image.source=\(source)") }
            for label in labels { argv += ["--label", label] }
            argv.append(context)
            return [step(stage.name, argv)]
        case .push:
            return imageTags.map { tag in
                step(imageTags.count == 1 ? stage.name : "push \(tag)", [dockerCommand, "push", "\(image):\(tag)"])
            }
        default:
            return []
        }
    }

    func runStage(_ stage: Stage, position: Int, index: Int, count: Int) async -> StageOutcome {
        if case .build = stage.kind {
            if let failed = await runHook(.preBuild), failed {
                return StageOutcome(outcome: .failed, reason: "the pre-build hook failed; nothing was built")
            }
            return await runStage(
                Stage(name: stage.name, location: stage.location, kind: .steps(imageSteps(stage))),
                position: position, index: index, count: count)
        }
        if case .push = stage.kind {
            let outcome = await runStage(
                Stage(name: stage.name, location: stage.location, kind: .steps(imageSteps(stage))),
                position: position, index: index, count: count)
            if outcome.outcome == .succeeded, let digest = outcome.output.flatMap(Self.pushedDigest), let image = plan.pipeline.image {
                let reference = "\(image)@\(digest)"
                try? store.recordImage(runID: runID, reference: reference, at: Date())
                reporter.report(.notice("pushed \(reference)"))
            }
            return outcome
        }
        return await runStageSteps(stage, position: position, index: index, count: count)
    }

    /// The digest `docker push` printed (`<tag>: digest: sha256:… size: …`) in its output.
    static func pushedDigest(_ output: String) -> String? {
        for line in output.split(separator: "\n") {
            if let range = line.range(of: "digest: sha256:") {
                let digest = line[line.index(range.lowerBound, offsetBy: 8)...].prefix { !$0.isWhitespace }
                if digest.count == 71 { return String(digest) }
            }
        }
        return nil
    }

    func runStageSteps(_ stage: Stage, position: Int, index: Int, count: Int) async -> StageOutcome {
        let started = ContinuousClock.now
        var record = stages[position]
        record.outcome = .running
        record.startedAt = Date()
        let startEvent = EventRecord(
            runID: runID, at: Date(), kind: "stage.started", stage: stage.name,
            message: "stage \(stage.name) started (\(index)/\(count))")
        reporter.report(.stageStarted(name: stage.name, index: index, count: count))

        var result = StageOutcome(outcome: .succeeded)
        switch stage.kind {
        case .steps(let steps):
            // The stage's start is written with its first step's, and its end with its last
            // step's: two transactions per step in all.
            var opening: (StageRecord, EventRecord)? = (record, startEvent)
            for (stepPosition, step) in steps.enumerated() {
                let stepResult = await runStep(
                    step, stage: stage, stageRecord: record, opening: opening, position: stepPosition,
                    closing: { outcome in
                        let isLast = stepPosition == steps.count - 1 || outcome == .failed || outcome == .timedOut || outcome == .cancelled
                        return isLast
                            ? stageClosing(
                                record, outcome: outcome == .failedAllowed || result.outcome == .failedAllowed ? .succeeded : outcome,
                                started: started) : nil
                    })
                opening = nil
                if stepResult.outcome == .failedAllowed { result.outcome = .failedAllowed; continue }
                if stepResult.outcome != .succeeded {
                    result = stepResult
                    break
                }
                result.output = stepResult.output
            }
            reporter.report(
                .stageFinished(
                    name: stage.name, outcome: result.outcome == .failedAllowed ? .succeeded : result.outcome,
                    duration: ContinuousClock.now - started))
            return result
        case .deploy(let environment):
            do { try store.update(record, event: startEvent) } catch { return StageOutcome(outcome: .failed, reason: "\(error)") }
            if case .docker(let spec) = plan.pipeline.environment(named: environment)?.target {
                result = await DockerRollout(context: self, spec: spec, log: StageLog(context: self, stage: stage, stageID: record.id!))
                    .deploy()
            } else {
                // Preflight refused other targets; an environment without one has nothing to change.
                reporter.report(.notice("environment \(environment) has no target: nothing to deploy"))
                try? store.append(
                    EventRecord(
                        runID: runID, at: Date(), kind: "deploy.skipped", stage: stage.name,
                        message: "environment \(environment) has no target: nothing deployed"))
            }
        case .rollback(let environment, let to):
            do { try store.update(record, event: startEvent) } catch { return StageOutcome(outcome: .failed, reason: "\(error)") }
            if case .docker(let spec) = plan.pipeline.environment(named: environment)?.target {
                result = await DockerRollout(context: self, spec: spec, log: StageLog(context: self, stage: stage, stageID: record.id!))
                    .emergencyRollback(to: to)
            } else {
                result = StageOutcome(outcome: .failed, reason: "\(environment) has no docker target")
            }
        case .approval(let environment):
            do { try store.update(record, event: startEvent) } catch { return StageOutcome(outcome: .failed, reason: "\(error)") }
            result = await waitForApproval(stage: stage, environment: environment)
        case .build, .push:
            result = StageOutcome(outcome: .failed, reason: "internal: \(stage.kindName) stages run as steps")
        }

        let (closed, event) = stageClosing(record, outcome: result.outcome, started: started, reason: result.reason)
        try? store.update(closed, event: event)
        reporter.report(.stageFinished(name: stage.name, outcome: closed.outcome, duration: ContinuousClock.now - started))
        return result
    }

    /// Waits until enough people approve (`deploy approve`, or the prompt on a terminal), someone
    /// rejects, or the approval times out. Nothing waits forever: the default timeout is 24 hours.
    func waitForApproval(stage: Stage, environment: String) async -> StageOutcome {
        let spec =
            plan.pipeline.environment(named: environment)?.approval
            ?? ApprovalSpec(approvers: 1, allowed: [], distinctFromTrigger: false, timeout: nil)
        let timeout = spec.timeout ?? .seconds(24 * 3600)
        let opened = engine.now()
        let deadline = opened.addingTimeInterval(Double(timeout.components.seconds))
        let policy = ApprovalPolicy(
            environment: environment, stage: stage.name, approvers: spec.approvers, allowed: spec.allowed,
            distinctFromTrigger: spec.distinctFromTrigger, trigger: trigger.user, deadline: deadline)
        do { try store.openApproval(runID: runID, policy: policy, at: opened) } catch {
            return StageOutcome(outcome: .failed, reason: "\(error)")
        }
        var details = ["release \(release.description), started by \(trigger.description)"]
        if let changelog {
            details.append(changelog.summary)
            details += changelog.groups.flatMap { group in
                group.entries.prefix(10).map { "  \(group.title.lowercased()): \($0.summary) (\($0.sha.prefix(7)))" }
            }
            if !changelog.baseIsAncestor { details.append("warning: deploying this undoes \(changelog.undone) commits") }
        }
        if spec.approvers > 1 || !spec.allowed.isEmpty || spec.distinctFromTrigger {
            var rules = ["\(spec.approvers) approver\(spec.approvers == 1 ? "" : "s")"]
            if !spec.allowed.isEmpty { rules.append("from: \(spec.allowed.joined(separator: ", "))") }
            if spec.distinctFromTrigger { rules.append("not \(trigger.user)") }
            details.append("needs " + rules.joined(separator: ", "))
        }
        reporter.report(
            .approvalWaiting(
                runID: runID, stage: stage.name, environment: environment, needed: spec.approvers,
                deadline: deadline, details: details))
        notify(
            .waitingForApproval, "needs \(spec.approvers) approval\(spec.approvers == 1 ? "" : "s") before \(deadline.formatted(.iso8601))")
        let store = self.store
        let runID = self.runID
        let approver = trigger.user
        let reporter = self.reporter
        return await withTaskGroup(of: StageOutcome?.self) { group in
            if let prompt = engine.approvalPrompt {
                group.addTask {
                    guard await prompt("Approve run \(runID) for \(environment) as \(approver)? [y/N] ") else { return nil }
                    do {
                        try store.decide(runID: runID, approver: approver, approve: true, comment: "approved at the prompt", now: Date())
                    } catch {
                        reporter.report(.notice("\(error)"))
                    }
                    return nil
                }
            }
            group.addTask {
                var waited = Duration.zero
                var seen: [String] = []
                while true {
                    switch (try? store.approvalState(runID: runID, stage: stage.name, needed: spec.approvers)) ?? .waiting(approvedBy: seen)
                    {
                    case .approved(let by):
                        try? store.append(
                            EventRecord(
                                runID: runID, at: Date(), kind: "approval.granted", stage: stage.name,
                                message: "approved by \(by.joined(separator: ", "))"))
                        return StageOutcome(outcome: .succeeded, reason: "approved by \(by.joined(separator: ", "))")
                    case .rejected(let by, let comment):
                        try? store.closeApproval(runID: runID, stage: stage.name, why: "rejected by \(by)", at: Date())
                        return StageOutcome(outcome: .failed, reason: "rejected by \(by)" + (comment.map { ": \($0)" } ?? ""))
                    case .waiting(let by):
                        if by != seen {
                            seen = by
                            reporter.report(.notice("approved by \(by.joined(separator: ", ")); \(spec.approvers - by.count) more needed"))
                        }
                    }
                    if engine.now() >= deadline || waited >= timeout {
                        try? store.closeApproval(runID: runID, stage: stage.name, why: "timed out", at: Date())
                        return StageOutcome(
                            outcome: .timedOut,
                            reason: "the approval timed out after \(DurationParser.format(timeout))"
                                + (seen.isEmpty ? ": nobody approved" : ": approved by \(seen.joined(separator: ", ")) only"))
                    }
                    do {
                        try await engine.clock.sleep(for: .milliseconds(250))
                    } catch {
                        try? store.closeApproval(runID: runID, stage: stage.name, why: "the run was cancelled", at: Date())
                        return StageOutcome(outcome: .cancelled, reason: "cancelled while waiting for approval")
                    }
                    waited += .milliseconds(250)
                }
            }
            var outcome: StageOutcome?
            while let next = await group.next() {
                if let next {
                    outcome = next
                    group.cancelAll()
                }
            }
            return outcome ?? StageOutcome(outcome: .cancelled, reason: "cancelled while waiting for approval")
        }
    }

    /// A stage's record as it ends, and the event saying so.
    func stageClosing(_ stage: StageRecord, outcome: Outcome, started: ContinuousClock.Instant, reason: String? = nil) -> (
        StageRecord, EventRecord
    ) {
        var record = stage
        record.outcome = outcome
        record.endedAt = Date()
        record.reason = reason
        let duration = ContinuousClock.now - started
        return (
            record,
            EventRecord(
                runID: runID, at: Date(), kind: "stage.\(outcome.rawValue)", stage: stage.name,
                message: "stage \(stage.name) \(outcome.rawValue) in \(DurationParser.format(duration))")
        )
    }

    /// Runs one step. `opening` is its stage's start, written with this step's (first step only);
    /// `closing` gives its stage's end for the step's outcome when this step ends the stage.
    func runStep(
        _ step: Step, stage: Stage, stageRecord: StageRecord, opening: (StageRecord, EventRecord)?, position: Int,
        closing: (Outcome) -> (StageRecord, EventRecord)?
    ) async -> StageOutcome {
        let stageID = stageRecord.id!
        let values = variables(stage: stage.name)
        let stepName = step.name
        let label = stepName == stage.name ? stage.name : "\(stage.name)/\(stepName)"
        let spec: ProcessSpec
        let display: String
        do {
            let env = try childEnvironment(stage: stage.name, extra: step.environment, values: values)
            let workdir = try step.workingDirectory.map { try Variables.expand($0, with: values) }
            switch step.action {
            case .run(let argv):
                let expanded = try argv.map { try Variables.expand($0, with: values) }
                spec = ProcessSpec(
                    executable: expanded[0], arguments: Array(expanded.dropFirst()), environment: env,
                    workingDirectory: workdir, timeout: step.timeout)
                display = masker.mask(spec.displayCommand)
            case .sh(let script):
                spec = ProcessSpec(
                    executable: "/bin/sh", arguments: ["-e", "-c", script, stepName], environment: env,
                    workingDirectory: workdir, timeout: step.timeout)
                let firstLine = script.split(separator: "\n").first.map(String.init) ?? ""
                display = masker.mask("sh: " + firstLine + (script.contains("\n") ? " …" : ""))
            }
        } catch {
            if let opening { try? store.update(opening.0, event: opening.1) }
            let reason = "\(label): \(error)"
            if let end = closing(.failed) {
                var closed = end.0
                closed.reason = reason
                try? store.update(closed, event: end.1)
            }
            return failBeforeStart(step: step, stage: stage, stageID: stageID, position: position, label: label, reason: reason)
        }

        var record = StepRecord(runID: runID, stageID: stageID, position: position, name: stepName, command: display)
        record.outcome = .running
        record.startedAt = Date()
        do {
            // A step's start and success are in its own row; the event log keeps what needs telling
            // (stage boundaries, retries, failures, hooks) so it stays readable for long pipelines.
            record = try store.start(record, stage: opening?.0, events: opening.map { [$0.1] } ?? [])
        } catch {
            return StageOutcome(outcome: .failed, reason: "\(error)")
        }

        let capture = Mutex(OutputCapture(limit: plan.pipeline.outputLimit))
        let childPID = Mutex<Int32?>(nil)
        let attempts = step.retries + 1
        let started = ContinuousClock.now
        var termination: ProcessTermination = .cancelled
        var launchError: String?
        var attempt = 0
        while attempt < attempts {
            attempt += 1
            if attempt > 1 { capture.withLock { $0.append("[attempt \(attempt) of \(attempts)]") } }
            reporter.report(.stepStarted(stage: stage.name, step: stepName, command: display, attempt: attempt, attempts: attempts))
            let stageName = stage.name
            let reporter = self.reporter
            let store = self.store
            let stepID = record.id!
            do {
                termination = try await engine.launcher.run(
                    spec, masker: masker,
                    onStart: { pid in
                        log.debug("step started", metadata: ["step": "\(label)", "pid": "\(pid)", "command": "\(display)"])
                        childPID.withLock { $0 = pid }
                        try? store.recordChild(pid: pid, stepID: stepID)
                    },
                    onOutput: { line in
                        capture.withLock { $0.append(line.text) }
                        reporter.report(.output(stage: stageName, step: stepName, line: line))
                    })
                launchError = nil
            } catch {
                launchError = masker.mask("\(error)")
                termination = .exited(127)
                capture.withLock { $0.append(launchError!) }
                reporter.report(.output(stage: stageName, step: stepName, line: OutputLine(stream: .stderr, text: launchError!)))
            }
            if termination.succeeded || termination == .cancelled || Task.isCancelled { break }
            guard attempt < attempts else { break }
            let delay = Backoff.delay(base: step.backoff, retry: attempt, jitter: engine.jitter())
            let why = launchError ?? termination.description
            record.attempts = attempt
            record.childPID = childPID.withLock { $0 }
            try? store.update(
                record,
                event: EventRecord(
                    runID: runID, at: Date(), kind: "step.retry", stage: stage.name, step: stepName,
                    message: "attempt \(attempt) of \(attempts) ended with \(why); retrying in \(DurationParser.format(delay))"))
            reporter.report(
                .stepRetrying(
                    stage: stage.name, step: stepName, after: why, delay: delay,
                    nextAttempt: attempt + 1, attempts: attempts))
            do {
                try await engine.clock.sleep(for: delay)
            } catch {
                termination = .cancelled
                break
            }
        }

        let outcome: Outcome
        let detail: String
        switch termination {
        case .exited(0):
            outcome = .succeeded
            detail = attempt > 1 ? "succeeded on attempt \(attempt) of \(attempts)" : "succeeded"
        case .cancelled:
            outcome = .cancelled
            detail = "stopped: the run was cancelled"
        case .timedOut:
            outcome = step.continueOnError ? .failedAllowed : .timedOut
            detail =
                "timed out after \(DurationParser.format(step.timeout ?? .zero))"
                + (attempts > 1 ? " (attempt \(attempt) of \(attempts))" : "")
        default:
            outcome = step.continueOnError ? .failedAllowed : .failed
            detail =
                (launchError ?? "failed with \(termination)") + (attempts > 1 ? " after \(attempt) attempts" : "")
                + (step.continueOnError ? "; continuing (continue_on_error)" : "")
        }
        let duration = ContinuousClock.now - started
        log.debug("step ended", metadata: ["step": "\(label)", "termination": "\(termination)", "attempts": "\(attempt)"])
        let kept = capture.withLock { $0 }
        record.outcome = outcome
        record.childPID = childPID.withLock { $0 }
        record.exitCode = termination.exitCode.map(Int.init)
        record.attempts = attempt
        record.endedAt = Date()
        record.durationMS = Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        record.output = kept.text
        record.outputBytes = kept.totalBytes
        record.outputTruncated = kept.truncated
        let reason = outcome == .succeeded ? nil : "\(label) \(detail)"
        let stepEvent = EventRecord(
            runID: runID, at: Date(), kind: "step.\(outcome.rawValue)", stage: stage.name, step: stepName,
            message: "\(label): \(detail)")
        var stageEnd = closing(outcome)
        stageEnd?.0.reason = outcome == .failedAllowed ? nil : reason
        let events = (outcome == .succeeded ? [] : [stepEvent]) + (stageEnd.map { [$0.1] } ?? [])
        try? store.finish(record, stage: stageEnd?.0, events: events)
        reporter.report(.stepFinished(stage: stage.name, step: stepName, outcome: outcome, detail: detail, duration: duration))
        return StageOutcome(outcome: outcome, reason: reason, output: kept.text)
    }

    private func failBeforeStart(step: Step, stage: Stage, stageID: Int64, position: Int, label: String, reason: String) -> StageOutcome {
        var record = StepRecord(runID: runID, stageID: stageID, position: position, name: step.name, command: "")
        record.outcome = .failed
        record.startedAt = Date()
        record.endedAt = Date()
        record.output = reason + "\n"
        _ = try? store.insert(
            record,
            event: EventRecord(
                runID: runID, at: Date(), kind: "step.failed", stage: stage.name,
                step: step.name, message: reason))
        reporter.report(.stepFinished(stage: stage.name, step: step.name, outcome: .failed, detail: reason, duration: .zero))
        return StageOutcome(outcome: .failed, reason: reason)
    }

    // MARK: Hooks

    /// Runs the pipeline's hook for `event`, if it has one. Returns whether it failed (nil: no hook).
    @discardableResult
    func runHook(_ event: HookEvent, outcome: Outcome? = nil, reason: String? = nil) async -> Bool? {
        guard let hook = plan.pipeline.hook(event) else { return nil }
        var values = variables(stage: event.rawValue)
        values["DEPLOY_OUTCOME"] = outcome?.rawValue ?? ""
        values["DEPLOY_REASON"] = reason ?? ""
        let env: [String: String]
        do {
            var e = try childEnvironment(stage: event.rawValue, values: values)
            e["DEPLOY_HOOK"] = event.rawValue
            e["DEPLOY_OUTCOME"] = outcome?.rawValue ?? ""
            e["DEPLOY_REASON"] = reason ?? ""
            env = e
        } catch {
            return true
        }
        let spec = ProcessSpec(
            executable: hook.command[0], arguments: Array(hook.command.dropFirst()), environment: env,
            timeout: hook.timeout)
        let reporter = self.reporter
        let name = "hook:\(event.rawValue)"
        let lines = Mutex<[String]>([])
        let termination: ProcessTermination
        var detail: String
        do {
            termination = try await engine.launcher.run(
                spec, masker: masker, onStart: { _ in },
                onOutput: { line in
                    lines.withLock { $0.append(line.text) }
                    reporter.report(.output(stage: name, step: name, line: line))
                })
            detail = termination.description
        } catch {
            termination = .exited(127)
            detail = masker.mask("\(error)")
        }
        let result: Outcome = termination.succeeded ? .succeeded : .failed
        try? store.append(
            EventRecord(
                runID: runID, at: Date(), kind: "hook.\(result.rawValue)", stage: name,
                message: "\(event.rawValue) hook \(detail)"
                    + (lines.withLock { $0.isEmpty } ? "" : "\n" + lines.withLock { $0.suffix(20).joined(separator: "\n") })))
        reporter.report(.hookFinished(event: event.rawValue, outcome: result, detail: detail))
        return !termination.succeeded
    }
}

extension StageRecord {
    static func skipped(runID: Int64, position: Int, stage: Stage, reason: String?) -> StageRecord {
        var record = StageRecord(runID: runID, position: position, name: stage.name, kind: stage.kindName)
        record.outcome = .skipped
        record.reason = reason
        return record
    }
}
