import SlipwayCore
public import SlipwayPipeline

/// Where a pipeline's `target:` becomes a ``DeployTarget``: the one place that knows which type
/// each kind of target is. A new target adds its case here and its folder beside `Docker/`.
extension TargetSpec {
    /// The target for one environment; throws when this build cannot drive that kind yet.
    public func makeTarget(_ setting: TargetSetting) throws(TargetUnavailable) -> any DeployTarget {
        let target: any DeployTarget =
            switch self {
            case .docker(let spec): DockerTarget(spec, setting: setting)
            case .kubernetes(let spec): KubernetesTarget(spec, setting: setting)
            }
        // Every target's instances are published for Prometheus to scrape.
        return ScrapeDiscovery(target, setting: setting)
    }

    /// The worst case of each target operation, known without building the target (`deploy plan`).
    public var budget: TargetBudget? {
        switch self {
        case .docker(let spec): DockerTarget.budget(spec)
        case .kubernetes(let spec): KubernetesTarget.budget(spec)
        }
    }
}

/// A `target:` of a kind this build of deploy cannot drive.
public struct TargetUnavailable: Error, Sendable, CustomStringConvertible {
    public var kind: String
    public var description: String { "this version of deploy cannot drive a \(kind) target yet" }
}
