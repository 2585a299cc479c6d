import SlipwayCore
import SlipwayPipeline

/// How far a strategy took a candidate.
enum RolloutVerdict: Sendable, Equatable {
    /// Every gate held and the candidate takes all traffic.
    case passed
    /// A gate failed before the candidate took any traffic (blue-green's preview).
    case refusedBeforeTraffic(String)
    /// A gate or a traffic move failed after the candidate took traffic: the run rolls back.
    case failed(String)

    /// The verdict when the move giving the candidate its first traffic failed: refused if the
    /// target says nothing changed, else failed (it may have taken traffic: roll back).
    static func firstMoveFailed(_ error: any Error) -> Self {
        error is TrafficUnchanged ? .refusedBeforeTraffic("\(error)") : .failed("\(error)")
    }
}

/// Takes a candidate from no traffic to all of it over any ``DeployTarget``, with the
/// environment's gates on the way. Starting the candidate, rehearsal, rollback and retiring the old
/// release are the ``Rollout``'s, the same for every strategy.
///
/// A new strategy is a type here and one case in ``StrategySpec/strategy``.
protocol RolloutStrategy: Sendable {
    func run(_ rollout: Rollout, candidate: TargetInstance, stable: TargetInstance?, firstFailure: Moment) async -> RolloutVerdict
    /// The parts of the worst-case time to abort that this strategy adds, for `deploy plan`.
    func worstCase(_ plan: Plan, budget: TargetBudget) -> [(String, Duration)]
}

extension StrategySpec {
    /// The strategy an environment's `strategy:` names.
    var strategy: any RolloutStrategy {
        switch self {
        case .rolling: Rolling()
        case .blueGreen(let preview, let bake): BlueGreen(previewGates: preview, bake: bake)
        case .canary(let steps, let pause, let analysis, let holdLimit):
            Canary(steps: steps, pause: pause, analysis: analysis, holdLimit: holdLimit)
        }
    }
}

/// All traffic to the new release at once, then the gates; on a target with its own rolling
/// update (Kubernetes) the target's update.
struct Rolling: RolloutStrategy {
    func run(_ rollout: Rollout, candidate: TargetInstance, stable: TargetInstance?, firstFailure: Moment) async -> RolloutVerdict {
        do {
            try await rollout.move(to: [TrafficShare(candidate, weight: 100)], label: "switch to \(candidate.label)")
        } catch {
            return .firstMoveFailed(error)
        }
        let failure = await rollout.gatesVerdict(
            rollout.environment.gates, targets: rollout.targets(candidate, stable: stable), label: "", firstFailure: firstFailure)
        return failure.map(RolloutVerdict.failed) ?? .passed
    }

    func worstCase(_ plan: Plan, budget: TargetBudget) -> [(String, Duration)] {
        [("switch", budget.route), ("gates", plan.gatesWorstCase(plan.environment.gates))]
    }
}

/// Preview gates on the new release alone, then all traffic to it, the gates, and a bake during
/// which the gates keep being checked while the old release keeps running.
struct BlueGreen: RolloutStrategy {
    var previewGates: [String]
    var bake: Duration?

    func run(_ rollout: Rollout, candidate: TargetInstance, stable: TargetInstance?, firstFailure: Moment) async -> RolloutVerdict {
        if !previewGates.isEmpty,
            let failure = await rollout.gatesVerdict(
                previewGates, targets: rollout.targets(candidate, stable: stable), label: " (preview)", firstFailure: firstFailure)
        {
            return .refusedBeforeTraffic(failure)
        }
        if Task.isCancelled { return .refusedBeforeTraffic("cancelled") }
        let verdict = await Rolling().run(rollout, candidate: candidate, stable: stable, firstFailure: firstFailure)
        guard verdict == .passed, let bake else { return verdict }
        return await rollout.bake(bake, candidate: candidate, firstFailure: firstFailure).map(RolloutVerdict.failed) ?? .passed
    }

    func worstCase(_ plan: Plan, budget: TargetBudget) -> [(String, Duration)] {
        let gates = plan.gatesWorstCase(plan.environment.gates)
        var parts = [("preview gates", plan.gatesWorstCase(previewGates)), ("switch", budget.route), ("gates", gates)]
        if let bake { parts.append(("bake", bake.saturatingPlus(gates))) }
        return parts
    }
}

/// Weighted steps (5 %, 25 %…), the stable release taking the rest; at each step the gates and the
/// analysis gates together, then a pause before the next, and a hold while `deploy pause` is in force.
struct Canary: RolloutStrategy {
    var steps: [Int]
    var pause: Duration?
    var analysis: [String]
    var holdLimit: Duration = .seconds(3600)

    func run(_ rollout: Rollout, candidate: TargetInstance, stable: TargetInstance?, firstFailure: Moment) async -> RolloutVerdict {
        for (index, weight) in steps.enumerated() {
            do {
                var shares = [TrafficShare(candidate, weight: weight)]
                if let stable, weight < 100 {
                    shares.append(TrafficShare(stable, weight: 100 - weight))
                } else {
                    shares[0].weight = 100
                }
                try await rollout.move(to: shares, label: "canary \(weight)%")
                if let failure = await rollout.gatesVerdict(
                    rollout.environment.gates + analysis, targets: rollout.targets(candidate, stable: stable), label: " at \(weight)%",
                    firstFailure: firstFailure)
                {
                    return .failed(failure)
                }
                if index < steps.count - 1, let failure = await rollout.holdIfPaused(limit: holdLimit, label: " at \(weight)%") {
                    return .failed(failure)
                }
                if let pause, index < steps.count - 1 {
                    try await rollout.log.step("pause", command: "wait \(DurationParser.format(pause))") { _ in
                        try await rollout.clock.sleep(for: pause)
                    }
                }
            } catch {
                return index == 0 ? .firstMoveFailed(error) : .failed("\(error)")
            }
        }
        return .passed
    }

    func worstCase(_ plan: Plan, budget: TargetBudget) -> [(String, Duration)] {
        let perStep = budget.route.saturatingPlus(plan.gatesWorstCase(plan.environment.gates + analysis))
        return [
            (
                "\(steps.count) canary steps",
                perStep.saturatingTimes(steps.count).saturatingPlus((pause ?? .zero).saturatingTimes(steps.count - 1))
            )
        ]
    }
}
