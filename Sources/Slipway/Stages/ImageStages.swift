import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// `build:` stages: `docker build` tagged with the version and the short sha and the OCI labels,
/// after the pre-build hook. It runs as a step like any other: streamed, recorded, stopped on cancel.
struct BuildStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        if let failed = await context.runHook(.preBuild), failed {
            return .init(outcome: .failed, reason: "the pre-build hook failed; nothing was built")
        }
        return await context.runSteps(context.imageSteps(stage), of: stage, slot: slot)
    }
}

/// `push:` stages: `docker push` of each tag; the digest the registry gave is recorded on the run,
/// and later deploys go by it.
struct PushStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        let outcome = await context.runSteps(context.imageSteps(stage), of: stage, slot: slot)
        if outcome.outcome == .succeeded, let digest = outcome.output.flatMap(RunContext.pushedDigest),
            let image = context.plan.pipeline.image
        {
            let reference = "\(image)@\(digest)"
            try? await context.store.recordImage(runID: context.runID, reference: reference, at: Date())
            context.reporter.report(.notice("pushed \(reference)"))
        }
        return outcome
    }
}

extension RunContext {
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
}
