import Foundation
import SlipwayCore

/// A `checklist:` stage: a production-readiness checklist whose items a machine checks on every
/// deploy (`check:`) or a named person signs off (`sign_off:`), recorded in the run.
public struct ChecklistSpec: Sendable {
    /// The environment whose readiness it vouches for: its target, its releases, its gates. The
    /// stage runs only in deploys of this environment.
    public var environment: String
    /// Kubernetes manifests the manifest checks read; default: the environment's kubernetes target's.
    public var manifests: String?
    /// How long the stage waits for sign-offs once every automated item has passed (default 24h).
    public var timeout: Duration?
    public var sections: [Section]

    public struct Section: Sendable {
        public var name: String
        public var items: [Item]

        public init(name: String, items: [Item]) {
            self.name = name
            self.items = items
        }
    }

    public struct Item: Sendable {
        /// `section.item` in lower case with dashes, unless the file gives `id:`; `deploy sign` takes it.
        public var id: String
        /// The item as the team wrote it (a seed keeps its own wording).
        public var title: String
        public var location: SourceLocation
        /// A failure or a missing sign-off only warns; it never blocks the run.
        public var advisory: Bool
        public var requirement: Requirement

        public init(id: String, title: String, location: SourceLocation, advisory: Bool = false, requirement: Requirement) {
            self.id = id
            self.title = title
            self.location = location
            self.advisory = advisory
            self.requirement = requirement
        }
    }

    public enum Requirement: Sendable {
        case check(ChecklistCheck)
        case signOff(SignOff)
    }

    public var items: [(section: String, item: Item)] {
        sections.flatMap { section in section.items.map { (section.name, $0) } }
    }

    public init(environment: String, manifests: String? = nil, timeout: Duration? = nil, sections: [Section]) {
        self.environment = environment
        self.manifests = manifests
        self.timeout = timeout
        self.sections = sections
    }
}

/// Who may sign an item off, and for how long a sign-off stands.
public struct SignOff: Sendable, Hashable {
    /// The people who may sign (after roles are expanded); `*` means anyone.
    public var signers: [String]
    /// The role named in the file, for display (`security-lead`), if the item named one.
    public var role: String?
    /// A sign-off stands for this long, across later runs of the environment (a quarterly drill:
    /// `valid_for: 90d`); nil: it is for this run only.
    public var validFor: Duration?
    /// The person who started the run may not sign it.
    public var distinctFromTrigger: Bool

    public init(signers: [String], role: String? = nil, validFor: Duration? = nil, distinctFromTrigger: Bool = false) {
        self.signers = signers
        self.role = role
        self.validFor = validFor
        self.distinctFromTrigger = distinctFromTrigger
    }

    public var who: String {
        let names = signers == ["*"] ? "anyone" : signers.joined(separator: ", ")
        return role.map { "\($0) (\(names))" } ?? names
    }
}

/// What a machine checks for an item.
public enum ChecklistCheck: Sendable, Hashable {
    /// Every container of the manifests has a liveness and a readiness probe (and a startup probe).
    case probes(startup: Bool)
    /// Every container requests and limits CPU and memory.
    case resources
    /// Every image is pinned by digest and none is `:latest` (the release's own image included).
    case pinnedImages
    /// The manifests render and hold a workload and a Service.
    case manifests
    /// The Deployment runs at least this many replicas.
    case replicas(minimum: Int)
    /// A GET answers (a path is taken on the environment's URL), within `within` when set.
    case http(url: String, status: Int?, body: String?, within: Duration?)
    /// A GET answers with the Prometheus text format.
    case metrics(url: String)
    /// The certificate an HTTPS endpoint presents is valid for at least this many days.
    case tls(url: String, minimumDays: Int)
    /// These files exist in the repository and are not empty.
    case documents([String])
    /// No secret-looking strings in the repository's files or the release image's environment.
    case noSecrets(paths: [String])
    /// Every dependency manifest under `path` has its lock file, and requirement files pin versions.
    case pinnedDependencies(path: String)
    /// The release's changelog (since the environment's last good release) is not empty.
    case changelog
    /// The last rollback rehearsal of this release in that environment passed.
    case rollbackRehearsal(environment: String?)
    /// The image of the environment's current good release still exists (a rollback can run it).
    case previousImage
    /// The release's version is a semantic version (`1.4.2`, `2.0.0-rc.1`).
    case semver
    /// The environment deploys with one of these strategies.
    case strategy([String])
    /// The environment's deploys wait for a person's approval.
    case approval
    /// A gate of the pipeline, against the environment's URL.
    case gate(String)
    /// A command (argv); exit 0 passes.
    case run([String], timeout: Duration?)
    /// A shell script, for `/bin/sh -c`; exit 0 passes.
    case sh(String, timeout: Duration?)

    /// The built-in checks by the name a file writes.
    public static let builtinNames = [
        "probes", "resources", "pinned_images", "manifests", "replicas", "http", "metrics", "tls", "documents", "no_secrets",
        "pinned_dependencies", "changelog", "rollback_rehearsal", "previous_image", "semver", "strategy", "approval",
    ]

    /// The word for it, as `deploy checklist` shows it.
    public var name: String {
        switch self {
        case .probes: "probes"
        case .resources: "resources"
        case .pinnedImages: "pinned_images"
        case .manifests: "manifests"
        case .replicas: "replicas"
        case .http: "http"
        case .metrics: "metrics"
        case .tls: "tls"
        case .documents: "documents"
        case .noSecrets: "no_secrets"
        case .pinnedDependencies: "pinned_dependencies"
        case .changelog: "changelog"
        case .rollbackRehearsal: "rollback_rehearsal"
        case .previousImage: "previous_image"
        case .semver: "semver"
        case .strategy: "strategy"
        case .approval: "approval"
        case .gate: "gate"
        case .run: "run"
        case .sh: "sh"
        }
    }

    /// Whether it looks at the Kubernetes manifests when there are some (`pinned_images` judges
    /// their images, but needs none).
    public var looksAtManifests: Bool { readsManifests || self == .pinnedImages }

    /// Whether it reads the Kubernetes manifests (and so needs some).
    public var readsManifests: Bool {
        switch self {
        case .probes, .resources, .manifests, .replicas: true
        default: false
        }
    }
}
