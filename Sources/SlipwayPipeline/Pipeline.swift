import Foundation
import SlipwayCore

/// A position in a pipeline file, 1-based like compilers print it.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A validated pipeline file.
public struct Pipeline: Sendable {
    public var file: String
    public var app: String
    public var image: String?
    /// Names of environment variables whose values are masked everywhere.
    public var secrets: [String]
    /// Pipeline variables, in file order; steps see them as environment variables and `${NAME}`.
    public var variables: [(name: String, value: String)]
    public var environments: [EnvironmentSpec]
    public var stages: [Stage]
    public var gates: [GateSpec]
    public var hooks: [HookSpec]
    /// How much of a step's output a run record keeps whole before keeping only head and tail.
    public var outputLimit: Int
    /// Which changed paths the change-risk report flags (the defaults with `risk:` laid over them).
    public var riskRules: RiskRules
    /// Webhooks told when runs start, end or wait for approval.
    public var webhooks: [WebhookSpec] = []
    /// The Docker CLI to build and push with (`docker:` in the file; `$DOCKER` overrides; default `docker`).
    public var docker: String?
    /// Named groups of people (`roles:`), for checklist sign-offs.
    public var roles: [String: [String]] = [:]
    /// The Prometheus that gate templates and `prometheus:` gates without a `url:` ask (`prometheus: { url: … }`).
    public var prometheusURL: String?

    public static let defaultOutputLimit = 1 << 20

    public func environment(named name: String) -> EnvironmentSpec? {
        environments.first { $0.name == name }
    }

    public func hook(_ event: HookEvent) -> HookSpec? {
        hooks.first { $0.event == event }
    }

    /// The docker CLI: `$DOCKER`, else the file's `docker:`, else `docker` (DOCKER_HOST is passed on).
    public func dockerCommand(environment: [String: String]) -> String {
        environment["DOCKER"] ?? docker ?? "docker"
    }
}

public struct EnvironmentSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var target: TargetSpec?
    public var strategy: StrategySpec?
    public var gates: [String]
    public var promoteFrom: String?
    public var approval: ApprovalSpec?
    public var variables: [(name: String, value: String)]
    /// Refuse a working tree with uncommitted changes (default: when `promote_from` is set, since
    /// those changes never passed the earlier environment). `--allow-dirty` overrides, on the record.
    public var requireCleanTree: Bool
    /// Windows when this environment takes no deploys (`--override-freeze --reason` passes one).
    public var freezes: [FreezeWindow] = []
    /// After its gates pass, roll back to the previous release and forward again, and record how
    /// long the rollback took; an environment promoted from this one refuses a release whose
    /// rehearsal failed.
    public var rehearseRollback = false
}

public enum TargetSpec: Sendable, Hashable {
    case docker(DockerTargetSpec)
    case kubernetes(KubernetesTargetSpec)

    public var kind: String {
        switch self {
        case .docker: "docker"
        case .kubernetes: "kubernetes"
        }
    }
}

/// One host's containers behind an nginx that Slipway runs: `listen` is where users reach the
/// environment, `port` the port the app listens on inside its container.
public struct DockerTargetSpec: Sendable, Hashable {
    public var proxy: String
    public var listen: String
    public var port: Int
    /// How long a new container may take to accept connections.
    public var readyTimeout: Duration
    /// The daemon the environment's containers run on (`unix:///run/podman/podman.sock`,
    /// `tcp://…`, `ssh://…`), passed to the docker CLI as DOCKER_HOST; `$DOCKER_HOST` overrides it.
    public var host: String?

    public init(
        proxy: String = "nginx", listen: String, port: Int = 8080, readyTimeout: Duration = .seconds(30), host: String? = nil
    ) {
        self.proxy = proxy
        self.listen = listen
        self.port = port
        self.readyTimeout = readyTimeout
        self.host = host
    }
}

/// A namespace of a Kubernetes cluster, driven through kubectl: `manifests` (a kustomize directory,
/// a directory of YAML files or one file) say what the app is; Slipway sets the image by digest,
/// its own labels and annotations, and moves traffic with `router`.
public struct KubernetesTargetSpec: Sendable, Hashable {
    /// How traffic moves between releases.
    public enum Router: String, Sendable, Hashable, CaseIterable {
        /// The app's Service: its selector names one colour; a canary split selects both colours
        /// with replicas in proportion to the weights.
        case service
        /// ingress-nginx: the app's Ingress, and a canary Ingress with `canary-weight`.
        case ingressNginx = "ingress-nginx"
        /// Gateway API: the app's HTTPRoute, its `backendRefs` weighted.
        case httpRoute = "httproute"
    }

    public var manifests: String
    public var context: String?
    public var namespace: String?
    /// The kubeconfig file (else KUBECONFIG, else kubectl's default).
    public var kubeconfig: String?
    public var router: Router
    /// `kubectl apply --server-side` (field ownership on the server) instead of client-side apply.
    public var serverSide: Bool
    /// Where users reach the environment; else read from the Service's (or Ingress's) status.
    public var url: String?
    /// How long a rollout may take to become ready; else the Deployment's
    /// `progressDeadlineSeconds` (600 s when it sets none).
    public var readyTimeout: Duration?

    public init(
        manifests: String, context: String? = nil, namespace: String? = nil, kubeconfig: String? = nil, router: Router = .service,
        serverSide: Bool = false, url: String? = nil, readyTimeout: Duration? = nil
    ) {
        self.manifests = manifests
        self.context = context
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.router = router
        self.serverSide = serverSide
        self.url = url
        self.readyTimeout = readyTimeout
    }
}

public enum StrategySpec: Sendable, Hashable {
    case rolling
    case blueGreen(previewGates: [String], bake: Duration?)
    /// `holdLimit`: how long `deploy pause` may hold the canary before the rollout fails and rolls back.
    case canary(steps: [Int], pause: Duration?, analysis: [String], holdLimit: Duration)

    public var name: String {
        switch self {
        case .rolling: "rolling"
        case .blueGreen: "blue-green"
        case .canary: "canary"
        }
    }
}

public struct ApprovalSpec: Sendable, Hashable {
    public var approvers: Int
    public var allowed: [String]
    public var distinctFromTrigger: Bool
    public var timeout: Duration?

    public init(approvers: Int, allowed: [String], distinctFromTrigger: Bool, timeout: Duration?) {
        self.approvers = approvers
        self.allowed = allowed
        self.distinctFromTrigger = distinctFromTrigger
        self.timeout = timeout
    }
}

/// A stage: a name and what it does.
public struct Stage: Sendable {
    public var name: String
    public var location: SourceLocation
    public var kind: Kind

    public init(name: String, location: SourceLocation, kind: Kind) {
        self.name = name
        self.location = location
        self.kind = kind
    }

    public enum Kind: Sendable {
        /// One or more commands, run in order.
        case steps([Step])
        /// Deploys the release to an environment.
        case deploy(environment: String)
        /// Waits for a person's approval before an environment.
        case approval(environment: String)
        case build(context: String, file: String?, arguments: [(name: String, value: String)], noCache: Bool = false)
        case push
        /// Puts an earlier good release back (`deploy rollback`); never written in a pipeline file.
        case rollback(environment: String, to: String?)
        /// A production-readiness checklist for an environment: checks and sign-offs.
        case checklist(ChecklistSpec)
    }

    /// The word for the stage's kind, as records and `deploy plan` show it.
    public var kindName: String {
        switch kind {
        case .steps(let steps): steps.count == 1 && steps[0].name == name ? steps[0].action.kindName : "steps"
        case .deploy: "deploy"
        case .approval: "approval"
        case .build: "build"
        case .push: "push"
        case .rollback: "rollback"
        case .checklist: "checklist"
        }
    }
}

public struct Step: Sendable {
    public var name: String
    public var location: SourceLocation
    public var action: Action
    public var timeout: Duration?
    /// Further attempts after a failure (0: run once).
    public var retries: Int
    /// The first retry's delay; each later one doubles, with jitter, up to ``Step/maximumBackoff``.
    public var backoff: Duration
    public var continueOnError: Bool
    public var environment: [(name: String, value: String)]
    public var workingDirectory: String?
    /// Leave running what the step started in its process group (a daemon on purpose); otherwise
    /// it is stopped when the step ends, and the step's output says so.
    public var keepBackground: Bool

    public static let defaultBackoff = Duration.seconds(1)
    public static let maximumBackoff = Duration.seconds(300)

    public init(
        name: String, location: SourceLocation, action: Action, timeout: Duration?, retries: Int, backoff: Duration,
        continueOnError: Bool, environment: [(name: String, value: String)], workingDirectory: String?, keepBackground: Bool = false
    ) {
        self.keepBackground = keepBackground
        self.name = name
        self.location = location
        self.action = action
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.continueOnError = continueOnError
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    public enum Action: Sendable, Hashable {
        /// An argv array, run with no shell; `${NAME}` in an element is replaced by a variable's value.
        case run([String])
        /// A script for `/bin/sh -c`; values reach it only through environment variables.
        case sh(String)

        public var kindName: String {
            switch self {
            case .run: "run"
            case .sh: "sh"
            }
        }
    }
}

public struct GateSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var check: Check
    public var below: Double?
    public var above: Double?
    public var every: Duration?
    public var times: Int?
    public var failureLimit: Int?
    public var initialDelay: Duration?
    /// How long one measurement may take before it is cut (a server that accepts and never answers).
    public var timeout: Duration?
    /// Inconclusive measurements (no data, NaN, a query error, a stale scrape, several series) are
    /// failures unless this is set: then up to this many are allowed, and one more fails the gate.
    public var inconclusiveLimit: Int?
    /// Bound the candidate's value by the stable release's, measured in the same tick.
    public var comparison: Comparison?
    /// The measured instance's newest scrape may be at most this old (Prometheus gates).
    public var staleness: Duration?
    /// The template the gate was written with (`error-rate`), for the record.
    public var template: String?

    /// `relative_to: stable, at_most: 1.5, margin: 0.005`: the candidate's value must be at most
    /// `atMost` times the stable release's, plus `margin`.
    public struct Comparison: Sendable, Hashable {
        public var atMost: Double
        public var margin: Double

        public init(atMost: Double, margin: Double = 0) {
            self.atMost = atMost
            self.margin = margin
        }
    }

    public init(
        name: String, location: SourceLocation, check: Check, below: Double? = nil, above: Double? = nil, every: Duration? = nil,
        times: Int? = nil, failureLimit: Int? = nil, initialDelay: Duration? = nil, timeout: Duration? = nil,
        inconclusiveLimit: Int? = nil, comparison: Comparison? = nil, staleness: Duration? = nil, template: String? = nil
    ) {
        self.name = name
        self.location = location
        self.check = check
        self.below = below
        self.above = above
        self.every = every
        self.times = times
        self.failureLimit = failureLimit
        self.initialDelay = initialDelay
        self.timeout = timeout
        self.inconclusiveLimit = inconclusiveLimit
        self.comparison = comparison
        self.staleness = staleness
        self.template = template
    }

    public enum Check: Sendable, Hashable {
        case http(url: String, status: Int?, body: String?, within: Duration?)
        case prometheus(url: String, query: String)
        case command([String])
        /// Every replica of the release ready and none restarting, as its target says.
        case readiness
    }
}

/// When a hook runs.
public enum HookEvent: String, Sendable, CaseIterable, Codable {
    case preBuild = "pre-build"
    case preDeploy = "pre-deploy"
    case postDeploy = "post-deploy"
    case onFailure = "on-failure"
    case preRollback = "pre-rollback"
    case postRollback = "post-rollback"
}

public struct HookSpec: Sendable {
    public var event: HookEvent
    public var location: SourceLocation
    /// The executable and its arguments (no shell).
    public var command: [String]
    /// How long the hook may run before its process group is stopped.
    public var timeout: Duration = .seconds(300)
}
