import SlipwayCore
public import SlipwayPipeline

/// Which stages `deploy <env>` runs, and why the others are left out.
///
/// The stages that apply to an environment are those up to and including the stage that deploys
/// it. With `promote_from: staging`, the stages up to and including staging's deploy are left out:
/// they ran in the run that shipped this release to staging. Deploy and approval stages of other
/// environments are never run by this environment's deploy.
public struct Plan: Sendable {
    public var pipeline: Pipeline
    public var environment: EnvironmentSpec
    public var entries: [Entry]
    /// An emergency rollback (`deploy rollback`), not a pipeline run.
    public var isRollback = false

    public struct Entry: Sendable {
        public var stage: Stage
        /// Nil when the stage runs; otherwise why it does not.
        public var skipReason: String?

        public var runs: Bool { skipReason == nil }
    }

    public struct UnknownEnvironment: Error, Sendable, CustomStringConvertible {
        public var name: String
        public var known: [String]
        public var file: String

        public init(name: String, known: [String], file: String) {
            self.name = name
            self.known = known
            self.file = file
        }

        public var description: String {
            var text = "\(file) has no environment '\(name)'"
            if let guess = suggestion(for: name, among: known) {
                text += "; did you mean '\(guess)'?"
            } else if !known.isEmpty {
                text += "; it declares: \(known.joined(separator: ", "))"
            } else {
                text += "; declare it under `environments:`"
            }
            return text
        }
    }

    public init(pipeline: Pipeline, environment name: String) throws(UnknownEnvironment) {
        guard let environment = pipeline.environment(named: name) else {
            throw UnknownEnvironment(name: name, known: pipeline.environments.map(\.name), file: pipeline.file)
        }
        self.pipeline = pipeline
        self.environment = environment
        let stages = pipeline.stages
        let deployIndex = stages.firstIndex { if case .deploy(name) = $0.kind { true } else { false } }
        let promoteIndex = environment.promoteFrom.flatMap { from in
            stages.firstIndex { if case .deploy(from) = $0.kind { true } else { false } }
        }
        var entries: [Entry] = []
        for (index, stage) in stages.enumerated() {
            var reason: String?
            if let deployIndex, index > deployIndex {
                reason = "after the deploy of \(name)"
            } else if let promoteIndex, index <= promoteIndex {
                reason = "ran when this release reached \(environment.promoteFrom!)"
            } else {
                switch stage.kind {
                case .deploy(let other) where other != name: reason = "deploys \(other)"
                case .approval(let other) where other != name: reason = "approves \(other)"
                case .checklist(let spec) where spec.environment != name: reason = "checks readiness for \(spec.environment)"
                default: break
                }
            }
            entries.append(Entry(stage: stage, skipReason: reason))
        }
        self.entries = entries
    }

    /// The plan of `deploy rollback <environment> [--to VERSION|RUN]`: one rollback stage.
    public init(pipeline: Pipeline, rollback name: String, to: String?) throws(UnknownEnvironment) {
        guard let environment = pipeline.environment(named: name) else {
            throw UnknownEnvironment(name: name, known: pipeline.environments.map(\.name), file: pipeline.file)
        }
        self.pipeline = pipeline
        self.environment = environment
        self.isRollback = true
        let location = environment.location
        entries = [Entry(stage: Stage(name: "rollback", location: location, kind: .rollback(environment: name, to: to)), skipReason: nil)]
    }

    public var running: [Stage] { entries.filter(\.runs).map(\.stage) }

    /// The plan for a release deployed by name (`--release`): it was built and pushed by an
    /// earlier run, so the stages that build, push or check the working tree are left out (they
    /// would work on HEAD, not on that release); approvals and the deploy still run.
    public func deployingBuiltRelease(_ description: String, builtBy run: Int64) -> Plan {
        var plan = self
        for index in plan.entries.indices where plan.entries[index].runs {
            switch plan.entries[index].stage.kind {
            case .steps, .build, .push:
                plan.entries[index].skipReason = "release \(description) was built and pushed by run \(run)"
            default:
                break
            }
        }
        return plan
    }

    /// Steps with no timeout, which make the worst case unbounded.
    public var unboundedSteps: [String] {
        running.flatMap { stage -> [String] in
            guard case .steps(let steps) = stage.kind else { return [] }
            return steps.filter { $0.timeout == nil }.map { steps.count == 1 ? stage.name : "\(stage.name)/\($0.name)" }
        }
    }

    /// The longest the steps can take if every attempt runs to its timeout, with the largest backoffs;
    /// nil when a step has no timeout.
    public var worstCase: Duration? {
        guard unboundedSteps.isEmpty else { return nil }
        var total = Duration.zero
        for stage in running {
            guard case .steps(let steps) = stage.kind else { continue }
            for step in steps {
                total = total.saturatingPlus(step.timeout!.saturatingTimes(step.retries + 1))
                for retry in 0..<step.retries { total = total.saturatingPlus(Backoff.ceiling(base: step.backoff, retry: retry + 1)) }
            }
        }
        return total
    }
}
