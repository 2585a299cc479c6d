import Foundation
import Logging
import SlipwayGit
import SlipwayProcess
public import SlipwayStore

/// What every `deploy` command shares (as SwiftPM's SwiftCommandState): where the pipeline, the
/// run store and the targets' files are, the store opened once, and the operations a command
/// asks for. The command line parses flags and prints; what happens lives here.
public final class Workspace: Sendable {
    public let statePath: String
    /// Where targets keep their files (nginx's), beside the run store.
    public let stateDirectory: String
    public let processEnvironment: [String: String]
    /// Tells the person running the command something they should know (stderr in the CLI).
    public let note: @Sendable (String) -> Void

    public init(statePath: String, processEnvironment: [String: String], note: @escaping @Sendable (String) -> Void) {
        self.statePath = statePath
        let directory = (statePath as NSString).deletingLastPathComponent
        stateDirectory = directory.isEmpty ? "." : directory
        self.processEnvironment = processEnvironment
        self.note = note
    }

    /// Starts libgit2 on a second thread, for a command that will read git: its start (mostly
    /// parsing the system's CA bundle, for TLS deploy never uses) then overlaps the parsing of
    /// the command line. Harmless if the command opens no repository after all.
    public static func prepareGitInBackground() { Repository.prepareInBackground() }

    /// Routes deploy's own diagnostics to standard error at the level `SLIPWAY_LOG` names (trace,
    /// debug, info, notice, warning — the default —, error, critical). Once per process.
    public static func bootstrapLogging(environment: [String: String]) {
        let level = environment["SLIPWAY_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    // MARK: The store

    /// Opens the run store, after checking that the file is one (another application's database is
    /// refused untouched). A command that writes creates it, saying so. Then the runs whose
    /// `deploy` died are marked interrupted and the process groups their steps left running are
    /// stopped. A command that only reads (`.readOnly`) never creates anything: with no store yet
    /// it reads an empty one, and a store it may only read (an auditor's) is read as it is.
    public func openStore(_ access: RunStore.Access = .readWrite, busyTimeout: Duration = .seconds(30)) async throws -> any DeployStore {
        let exists = FileManager.default.fileExists(atPath: statePath)
        if access == .readOnly {
            // Nothing has run here: read an empty store rather than create one.
            guard exists else { return try RunStore.inMemory() }
            // A store this user may only read (an auditor's copy) is read as it is; one it may
            // write is opened as usual, so that runs whose deploy died are still marked.
            let writable =
                FileManager.default.isWritableFile(atPath: statePath) && FileManager.default.isWritableFile(atPath: stateDirectory)
            if !writable { return try RunStore(path: statePath, access: .readOnly, busyTimeout: busyTimeout) }
        }
        if !exists { note("creating the run store at \(statePath)") }
        // (A reading command reaches here only for a store that exists and that it may write.)
        let store = try RunStore(path: statePath, busyTimeout: busyTimeout)
        await recordPending(in: store)
        for reclaimed in try await store.reclaimAbandonedRuns(host: HostName.current, now: Date(), isAlive: ProcessLiveness.isAlive) {
            let run = reclaimed.run
            note("run \(run.id) (\(run.environment)) was \(run.reason ?? "interrupted")")
            for pid in reclaimed.orphanedChildren where ProcessLiveness.stopOrphanedGroup(pid) {
                note("stopped the process group \(pid) that run \(run.id)'s step left running")
                try? await store.append(
                    EventRecord(
                        runID: run.id, at: Date(), kind: .stepOrphanStopped,
                        message: "stopped process group \(pid), left running by the interrupted step"))
            }
        }
        return store
    }

    // MARK: What could not be recorded

    /// Where what could not be recorded waits (a JSON line each) for the next command that can.
    var pendingPath: String { stateDirectory + "/pending-audit.jsonl" }

    struct Pending: Codable {
        var at: Date
        var actor: String
        var action: String
        var environment: String?
        var detail: String
    }

    /// Keeps, for the audit log, a refusal the store could not take (it was held busy): the next
    /// command that opens the store records it.
    public func recordLater(actor: String, action: String, environment: String?, detail: String) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        guard var line = try? encoder.encode(Pending(at: Date(), actor: actor, action: action, environment: environment, detail: detail))
        else { return }
        line.append(0x0A)
        try? FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        if let handle = FileHandle(forWritingAtPath: pendingPath) {
            handle.seekToEndOfFile()
            handle.write(line)
            try? handle.close()
        } else {
            _ = FileManager.default.createFile(atPath: pendingPath, contents: line)
        }
    }

    /// Records what earlier commands could not, then forgets it (kept if the store refuses again).
    func recordPending(in store: any DeployStore) async {
        guard let data = FileManager.default.contents(atPath: pendingPath) else { return }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        for line in data.split(separator: 0x0A) {
            guard let pending = try? decoder.decode(Pending.self, from: Data(line)) else { continue }
            do {
                try await store.audit(
                    actor: pending.actor, action: pending.action, environment: pending.environment, runID: nil, detail: pending.detail,
                    at: pending.at)
            } catch {
                return
            }
        }
        try? FileManager.default.removeItem(atPath: pendingPath)
        note("recorded in the audit log what an earlier command could not (the store was busy)")
    }

    /// A store that keeps nothing, for an emergency rollback when the real one cannot be opened.
    public static func scratchStore() throws -> any DeployStore { try RunStore.inMemory() }

    // MARK: Engines and targets

    public func engine(
        store: any DeployStore, reporter: any Reporting, approvalPrompt: (@Sendable (String) async -> Bool)? = nil
    ) -> Engine {
        Engine(
            store: store, reporter: reporter, environment: processEnvironment, approvalPrompt: approvalPrompt,
            stateDirectory: stateDirectory)
    }

    /// The target of `environment`, or nil when it has none.
    public func target(_ pipeline: Pipeline, environment: String) throws -> (any DeployTarget)? {
        try pipeline.environment(named: environment)?.target?.makeTarget(
            TargetSetting(
                pipeline: pipeline, environment: environment, stateDirectory: stateDirectory, processEnvironment: processEnvironment))
    }

    // MARK: Locks

    /// Locks `environment` by hand; returns who holds it instead when someone does.
    public func lock(_ environment: String, store: any DeployStore, by actor: String, reason: String) async throws -> Lease? {
        try await store.lock(
            environment: environment, by: actor, reason: reason, host: HostName.current, now: Date(), isAlive: ProcessLiveness.isAlive)
    }

    /// Takes `environment` down (every instance, the router), holding its lease like a deploy so
    /// that none starts meanwhile; recorded in the audit log. Returns what was done, a line each.
    public func teardown(_ pipeline: Pipeline, environment: String, store: any DeployStore, actor: String) async throws -> [String] {
        guard let target = try target(pipeline, environment: environment) else {
            throw RunRefused(message: "\(environment) has no target: nothing to take down", hint: nil)
        }
        let pid = ProcessInfo.processInfo.processIdentifier
        let attempt = try await store.acquireLease(
            environment: environment, holder: actor, host: HostName.current, pid: pid, now: Date(), isAlive: ProcessLiveness.isAlive)
        if case .held(let lease) = attempt {
            throw EnvironmentUnavailable(
                message: "\(environment) is held: \(lease.description)",
                hint: lease.kind == .manual ? "`deploy unlock \(environment)` first" : "wait for the deploy to end")
        }
        do {
            let done = try await target.teardown()
            try await store.audit(actor: actor, action: "teardown", environment: environment, detail: done.joined(separator: "; "))
            try? await store.releaseLease(environment: environment, pid: pid, host: HostName.current)
            return done
        } catch {
            try? await store.releaseLease(environment: environment, pid: pid, host: HostName.current)
            throw error
        }
    }

    // MARK: Releases

    /// What `deploy <env>` ships, read from git at `directory` (else the CI's variables).
    public struct PreparedRelease: Sendable {
        public var release: Release
        public var dirty: Bool
        /// What the trigger asked to let through (`allow-dirty`), for the record.
        public var overrides: [String]
        public var changelog: Changelog?
    }

    /// The release in the working tree at `directory` for a deploy of `plan`: its commit and
    /// version, whether the tree is dirty (refused where the environment wants a clean one unless
    /// `allowDirty`), and its changelog since the environment's last good release. With
    /// `named` (`--release`), a release an earlier run pushed: the working tree is not what ships.
    public func prepareRelease(
        _ plan: Plan, named: String?, allowDirty: Bool, directory: String, store: any DeployStore
    ) async throws -> PreparedRelease {
        let resolved = ReleaseResolver.resolve(override: named, directory: directory, environment: processEnvironment)
        for line in resolved.notes { note(line) }
        let byName = named != nil && plan.environment.target != nil
        var overrides: [String] = []
        if !byName, let git = resolved.git, git.dirty, plan.environment.requireCleanTree {
            let listed = git.dirtyPaths.prefix(10).map { "      \($0)" }.joined(separator: "\n")
            guard allowDirty else {
                throw RunRefused(
                    message:
                        "the working tree has uncommitted changes, and \(plan.environment.name) takes only committed releases:\n\(listed)",
                    hint: "commit or stash them; or pass --allow-dirty to deploy them anyway (the run records that you did)")
            }
            overrides.append("allow-dirty (\(git.dirtyPaths.count) changed file\(git.dirtyPaths.count == 1 ? "" : "s"))")
        }
        var changelog: Changelog?
        if let repository = resolved.repository, let git = resolved.git {
            do {
                changelog = try await Changelog.build(
                    repository: repository, release: git, version: resolved.release.version, environment: plan.environment.name,
                    store: store,
                    rules: plan.pipeline.riskRules)
                for line in changelog?.notes ?? [] { note(line) }
            } catch {
                note("no changelog for this run: \(error)")
            }
        }
        return PreparedRelease(
            release: resolved.release, dirty: !byName && resolved.git?.dirty ?? false, overrides: overrides, changelog: changelog)
    }

    /// `deploy changelog`: what HEAD at `directory` would ship to `environment` (since its last good
    /// release), or since the previous version tag with no environment.
    /// What rolling back undoes, read from the git repository at `directory` with the pipeline's
    /// risk rules: the changelog from the restored commit to the serving one, as a rollback sees it.
    public func rollbackImpact(pipeline: Pipeline, directory: String) -> Engine.RollbackImpact {
        let rules = pipeline.riskRules
        let masker = SecretMasker(secrets: pipeline.secrets.compactMap { processEnvironment[$0] })
        return { serving, restored in
            guard let repository = try? Repository(discoveringFrom: directory), repository.contains(serving), repository.contains(restored),
                let changelog = try? await Changelog.build(
                    repository: repository, release: GitRelease(sha: serving), environment: nil, store: nil, since: restored, rules: rules)
            else { return nil }
            let said =
                changelog.baseIsAncestor
                ? changelog.rollbackSummary
                : "\(changelog.rollbackSummary); the restored release is not an ancestor of the serving one: it also brings back \(changelog.undone) commit\(changelog.undone == 1 ? "" : "s") the serving release does not have"
            return masker.mask(said)
        }
    }

    public func changelog(
        environment: String?, pipeline: Pipeline?, since: String?, firstParentOnly: Bool, directory: String
    ) async throws -> (changelog: Changelog, shallow: Bool, shortSHA: String) {
        let store = environment == nil ? nil : try await openStore(.readOnly)
        let repository = try Repository(discoveringFrom: directory)
        let release = try repository.release()
        let changelog = try await Changelog.build(
            repository: repository, release: release, environment: environment, store: store, since: since,
            firstParentOnly: firstParentOnly,
            rules: pipeline?.riskRules ?? .defaults)
        // The pipeline's secrets, where they are set, are masked in what commit authors wrote.
        let masker = SecretMasker(secrets: (pipeline?.secrets ?? []).compactMap { processEnvironment[$0] })
        return (changelog.masked(by: masker), release.shallow, release.shortSHA)
    }
}

extension Step.Action {
    /// The command as a person would type it (`sh: …` for a script).
    public var display: String {
        switch self {
        case .run(let argv): argv.map(ProcessSpec.quoteForDisplay).joined(separator: " ")
        case .sh(let script): "sh: " + (script.split(separator: "\n").first.map(String.init) ?? "")
        }
    }
}
