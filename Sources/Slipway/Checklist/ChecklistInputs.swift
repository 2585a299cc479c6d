public import Foundation
public import SlipwayCore
public import SlipwayPipeline
public import SlipwayProcess
public import SlipwayStore

/// A check's verdict: did the item hold, and one line saying what was seen (and, on a failure,
/// where to look).
public struct CheckVerdict: Sendable, Hashable {
    public var passed: Bool
    public var detail: String

    public static func pass(_ detail: String) -> CheckVerdict { CheckVerdict(passed: true, detail: detail) }
    public static func fail(_ detail: String) -> CheckVerdict { CheckVerdict(passed: false, detail: detail) }
}

/// What a checklist's checks look at: the repository, the manifests, the release and its
/// environment, the run store. Built by the checklist stage from its run; tests build their own.
public struct ChecklistInputs: Sendable {
    /// The repository's root (relative paths in the pipeline are taken from here).
    public var repository: String
    public var pipeline: Pipeline
    public var environment: EnvironmentSpec
    /// The Kubernetes manifests the manifest checks read (a kustomize directory, a directory or a file).
    public var manifests: String?
    public var release: Release
    /// The image the run deploys (`registry/app@sha256:…`), once built or promoted.
    public var image: String?
    public var changelog: Changelog?
    /// Where the environment answers (a path in an `http` or `metrics` check is taken on it).
    public var environmentURL: String?
    public var processEnvironment: [String: String]
    public var launcher: any ProcessLaunching
    public var masker: SecretMasker
    public var store: (any DeployStore)?
    public var runID: Int64?
    /// Runs a pipeline gate against the environment (set by the stage, which knows the target).
    public var gate: (@Sendable (String) async -> CheckVerdict)?
    /// The variables `${NAME}` takes in settings and commands.
    public var variables: [String: String]

    public init(
        repository: String = FileManager.default.currentDirectoryPath, pipeline: Pipeline, environment: EnvironmentSpec,
        manifests: String? = nil, release: Release = Release(sha: nil, version: nil), image: String? = nil,
        changelog: Changelog? = nil, environmentURL: String? = nil,
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment, launcher: any ProcessLaunching = ProcessRunner(),
        masker: SecretMasker = .none, store: (any DeployStore)? = nil, runID: Int64? = nil,
        gate: (@Sendable (String) async -> CheckVerdict)? = nil, variables: [String: String] = [:]
    ) {
        self.repository = repository
        self.pipeline = pipeline
        self.environment = environment
        self.manifests = manifests
        self.release = release
        self.image = image
        self.changelog = changelog
        self.environmentURL = environmentURL
        self.processEnvironment = processEnvironment
        self.launcher = launcher
        self.masker = masker
        self.store = store
        self.runID = runID
        self.gate = gate
        self.variables = variables
    }

    /// `path` taken from the repository's root unless absolute.
    func file(_ path: String) -> String {
        path.hasPrefix("/") ? path : (repository as NSString).appendingPathComponent(path)
    }

    /// A URL or a path on the environment's URL, with `${NAME}` expanded.
    func url(_ text: String) throws -> String {
        let expanded = try Variables.expand(text, with: variables)
        if expanded.hasPrefix("/") {
            guard let base = environmentURL else {
                throw CheckSetupError(description: "\(expanded) is a path, and environment \(environment.name) has no URL to take it on")
            }
            return (base.hasSuffix("/") ? String(base.dropLast()) : base) + expanded
        }
        return expanded
    }

    var docker: DockerCLI {
        DockerCLI(
            command: pipeline.dockerCommand(environment: processEnvironment), environment: processEnvironment, launcher: launcher,
            app: pipeline.app, environmentName: environment.name)
    }
}

struct CheckSetupError: Error, CustomStringConvertible {
    var description: String
}

/// Runs one check against its inputs. A check never throws: whatever goes wrong is a failed
/// verdict that says what.
public enum ChecklistChecks {
    /// Evaluates one check (rendering the manifests first when it reads them).
    public static func evaluate(_ check: ChecklistCheck, inputs: ChecklistInputs) async -> CheckVerdict {
        let manifests = check.looksAtManifests ? await ManifestLoad.load(inputs.manifests, inputs: inputs) : .none
        return await evaluate(check, inputs: inputs, manifests: manifests)
    }

    static func evaluate(_ check: ChecklistCheck, inputs: ChecklistInputs, manifests: ManifestLoad) async -> CheckVerdict {
        do {
            switch check {
            case .probes(let startup): return ManifestChecks.probes(manifests, startup: startup)
            case .resources: return ManifestChecks.resources(manifests)
            case .manifests: return ManifestChecks.render(manifests)
            case .replicas(let minimum): return ManifestChecks.replicas(manifests, minimum: minimum)
            case .pinnedImages: return await ManifestChecks.pinnedImages(manifests, inputs: inputs)
            case .http(let url, let status, let body, let within):
                return await EndpointChecks.http(try inputs.url(url), status: status, body: body, within: within)
            case .metrics(let url): return await EndpointChecks.metrics(try inputs.url(url))
            case .tls(let url, let days): return await EndpointChecks.tls(try inputs.url(url), minimumDays: days)
            case .documents(let files): return RepositoryChecks.documents(files, inputs: inputs)
            case .noSecrets(let paths): return await RepositoryChecks.noSecrets(paths: paths, inputs: inputs)
            case .pinnedDependencies(let path): return RepositoryChecks.pinnedDependencies(path, inputs: inputs)
            case .changelog: return ReleaseChecks.changelog(inputs)
            case .rollbackRehearsal(let environment): return await ReleaseChecks.rehearsal(environment, inputs: inputs)
            case .previousImage: return await ReleaseChecks.previousImage(inputs)
            case .semver: return ReleaseChecks.semver(inputs)
            case .strategy(let allowed): return ReleaseChecks.strategy(allowed, inputs: inputs)
            case .approval: return ReleaseChecks.approval(inputs)
            case .gate(let name):
                guard let gate = inputs.gate else { return .fail("gate \(name) cannot run here: no environment to check it against") }
                return await gate(name)
            case .run(let argv, let timeout):
                return await CommandChecks.run(
                    try argv.map { try Variables.expand($0, with: inputs.variables) }, timeout: timeout, inputs: inputs)
            case .sh(let script, let timeout):
                return await CommandChecks.run(["/bin/sh", "-c", script], timeout: timeout, inputs: inputs)
            }
        } catch {
            return .fail(inputs.masker.mask("\(error)"))
        }
    }
}
