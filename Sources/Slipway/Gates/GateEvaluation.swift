import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import Synchronization

/// Where gates look: the release under test (straight to its container) and the environment's
/// address (through the proxy).
struct GateTargets: Sendable {
    var targetURL: String
    var serviceURL: String
    /// The release being checked, when it is not this run's (a rollback verifying the previous
    /// one): `${VERSION}`, `${SHA}` and `${SHORT_SHA}` then name it.
    var release: ReleaseReference? = nil
    /// The instance checked and its target, for gates the target answers (`readiness`).
    var instance: TargetInstance? = nil
    var target: (any DeployTarget)? = nil
    /// The release serving beside it, for gates `relative_to: stable`.
    var stable: TargetInstance? = nil
}

/// A moment, noted once (later marks keep the first): when the first gate measurement failed,
/// when traffic moved. Shared between the tasks of one rollout.
final class Moment: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)
    func mark() { instant.withLock { if $0 == nil { $0 = .now } } }
    var value: ContinuousClock.Instant? { instant.withLock { $0 } }
}

/// A command gate: the argv exits 0 (TARGET_URL and SERVICE_URL in its environment).
struct CommandCheck: GateChecking {
    var argv: [String]
    var environment: [String: String]
    var launcher: any ProcessLaunching
    var masker: SecretMasker

    func measure() async -> GateMeasurement {
        do {
            let (termination, output) = try await launcher.capture(
                ProcessSpec(
                    executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment, timeout: Self.limit,
                    gracePeriod: .seconds(2)),
                masker: masker)
            let last = output.split(separator: "\n").last.map(String.init) ?? ""
            return GateMeasurement(
                at: Date(), passed: termination.succeeded, detail: termination.description + (last.isEmpty ? "" : ": \(last)"),
                value: Double(last.trimmingCharacters(in: .whitespaces)))
        } catch {
            return GateMeasurement(at: Date(), passed: false, detail: masker.mask("\(error)"))
        }
    }

    static let limit = Duration.seconds(60)
}

/// Applies a gate's `below`/`above` bounds to what its check measured.
public struct BoundedCheck: GateChecking {
    public var inner: any GateChecking
    public var below: Double?
    public var above: Double?

    public init(inner: any GateChecking, below: Double? = nil, above: Double? = nil) {
        self.inner = inner
        self.below = below
        self.above = above
    }

    public var timeoutIsInconclusive: Bool { inner.timeoutIsInconclusive }

    public func measure() async -> GateMeasurement {
        var measurement = await inner.measure()
        guard measurement.passed, below != nil || above != nil else { return measurement }
        guard let value = measurement.value else {
            measurement.passed = false
            measurement.detail += " (no number to compare)"
            return measurement
        }
        if let below, !(value < below) {
            measurement.passed = false
            measurement.detail += ", not below \(below)"
        }
        if let above, !(value > above) {
            measurement.passed = false
            measurement.detail += ", not above \(above)"
        }
        return measurement
    }
}

extension RunContext {
    /// The check a gate runs against `targets`; `${TARGET_URL}`, `${SERVICE_URL}` and the run's
    /// variables are expanded in its settings.
    func check(for gate: GateSpec, targets: GateTargets) throws -> any GateChecking {
        var values = variables(stage: "gate")
        values["TARGET_URL"] = targets.targetURL
        values["SERVICE_URL"] = targets.serviceURL
        values["INSTANCE"] = targets.instance?.name ?? ""
        func describe(_ release: ReleaseReference, in values: inout [String: String]) {
            for prefix in ["", "DEPLOY_"] {
                values[prefix + "VERSION"] = release.version ?? ""
                values[prefix + "SHA"] = release.sha ?? ""
                values[prefix + "SHORT_SHA"] = release.sha.map { String($0.prefix(7)) } ?? ""
            }
        }
        if let release = targets.release { describe(release, in: &values) }
        let inner: any GateChecking
        switch gate.check {
        case .http(let url, let status, let body, let within):
            let expanded = try Variables.expand(url, with: values)
            guard let address = URL(string: expanded), address.scheme != nil else {
                throw GateSetupError(description: "gate \(gate.name): '\(masker.mask(expanded))' is not a URL")
            }
            inner = HTTPCheck(url: address, status: status, body: try body.map { try Variables.expand($0, with: values) }, within: within)
        case .prometheus(let url, let query):
            let address = try Variables.expand(url, with: values)
            let measured = PrometheusCheck(
                url: address, query: try Variables.expand(query, with: values), staleness: gate.staleness,
                instance: targets.instance?.name, limit: gate.measurementLimit)
            if let comparison = gate.comparison {
                let stable = try targets.stable.map { stable in
                    var theirs = values
                    theirs["TARGET_URL"] = stable.url
                    theirs["INSTANCE"] = stable.name
                    if let release = stable.release { describe(release, in: &theirs) }
                    return PrometheusCheck(
                        url: address, query: try Variables.expand(query, with: theirs), staleness: gate.staleness, instance: stable.name,
                        limit: gate.measurementLimit)
                }
                inner = RelativeCheck(candidate: measured, stable: stable, comparison: comparison)
            } else {
                inner = measured
            }
        case .readiness:
            guard let target = targets.target, let instance = targets.instance else {
                throw GateSetupError(description: "gate \(gate.name): a readiness gate checks a release on a target; here there is none")
            }
            inner = ReadinessCheck(target: target, instance: instance)
        case .command(let argv):
            var env = try childEnvironment(stage: "gate", values: values)
            for (name, value) in values where name.hasPrefix("DEPLOY_") { env[name] = value }
            env["TARGET_URL"] = targets.targetURL
            env["SERVICE_URL"] = targets.serviceURL
            inner = CommandCheck(
                argv: try argv.map { try Variables.expand($0, with: values) }, environment: env, launcher: engine.launcher, masker: masker)
        }
        return BoundedCheck(inner: inner, below: gate.below, above: gate.above)
    }

}

struct GateSetupError: Error, CustomStringConvertible {
    var description: String
}

extension Plan {
    /// The longest one pass of the gates `names` can take.
    public func gatesWorstCase(_ names: [String]) -> Duration {
        // The gates of one check point run together: the slowest decides.
        names.compactMap { name in pipeline.gates.first { $0.name == name } }.map { gate in
            GateRunner.worstCase(gate, measurementLimit: gate.measurementLimit)
        }.max() ?? .zero
    }

    /// For an environment with a target: the longest a deploy can take to decide to abort and to
    /// put the previous release back, with what it is made of. The target says how long its own
    /// operations take; the strategy, what it does with them.
    public var worstCaseToAbort: (total: Duration, parts: [String])? {
        guard let budget = environment.target?.budget else { return nil }
        let strategy = (environment.strategy ?? .blueGreen(previewGates: [], bake: nil)).strategy
        var parts: [(String, Duration)] = [("start", budget.stage)]
        var names = environment.gates
        if case .canary(_, _, let analysis, _) = environment.strategy { names += analysis }
        if names.contains(where: { name in pipeline.gates.first { $0.name == name }?.check.isPrometheus == true }) {
            parts.append(("first scrape", Rollout.scrapeLimit))
        }
        parts += strategy.worstCase(self, budget: budget)
        let envGates = gatesWorstCase(environment.gates)
        if environment.rehearseRollback { parts.append(("rehearsal", (budget.route * 2).saturatingPlus(envGates.saturatingTimes(2)))) }
        parts.append(("rollback and verify", budget.route.saturatingPlus(envGates)))
        let total = parts.map(\.1).saturatingSum()
        return (total, parts.filter { $0.1 > .zero }.map { "\($0.0) \(DurationParser.format($0.1))" })
    }
}

extension GateSpec {
    /// What the gate checks, as the run record shows it.
    func description(targets: GateTargets) -> String {
        let times = times ?? 1
        let cadence = times > 1 ? ", \(times) times" + (every.map { " every \(DurationParser.format($0))" } ?? "") : ""
        switch check {
        case .http(let url, let status, _, _):
            let shown = url.replacingOccurrences(of: "${TARGET_URL}", with: targets.targetURL)
                .replacingOccurrences(of: "${SERVICE_URL}", with: targets.serviceURL)
            return "GET \(shown)" + (status.map { " expecting \($0)" } ?? "") + cadence
        case .prometheus(let url, let query):
            let shown = query.replacingOccurrences(of: "${INSTANCE}", with: targets.instance?.name ?? "${INSTANCE}")
            return (template.map { "\($0): " } ?? "") + "prometheus \(url): \(shown)"
                + (comparison.map { ", at most \(RelativeCheck.format($0.atMost))× stable + \(RelativeCheck.format($0.margin))" } ?? "")
                + cadence
        case .command(let argv):
            return argv.joined(separator: " ") + cadence
        case .readiness:
            return "every replica of \(targets.instance?.label ?? "the release") ready, none restarting" + cadence
        }
    }
}

/// The `readiness` gate: the target says whether every replica of the release is ready and none
/// restarting.
struct ReadinessCheck: GateChecking {
    let target: any DeployTarget
    let instance: TargetInstance

    func measure() async -> GateMeasurement {
        let (ready, detail) = await target.readiness(of: instance)
        return GateMeasurement(at: Date(), passed: ready, detail: detail)
    }
}
