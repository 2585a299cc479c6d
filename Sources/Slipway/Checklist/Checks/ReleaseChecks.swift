import Foundation
import SlipwayCore
import SlipwayGit
import SlipwayPipeline
import SlipwayProcess

/// Checks of the release and its environment: changelog, rehearsal, previous image, version,
/// strategy, approval.
enum ReleaseChecks {
    static func changelog(_ inputs: ChecklistInputs) -> CheckVerdict {
        guard let changelog = inputs.changelog else {
            return .fail("this run has no changelog (is the pipeline in a git repository?): `deploy changelog` shows why")
        }
        guard !changelog.commits.isEmpty else {
            return .fail("no commits between \(changelog.base.description) and \(changelog.version): there is nothing new to release")
        }
        return .pass("\(changelog.commits.count) commit\(changelog.commits.count == 1 ? "" : "s") since \(changelog.base.description)")
    }

    static func rehearsal(_ named: String?, inputs: ChecklistInputs) async -> CheckVerdict {
        let environment = named ?? inputs.environment.promoteFrom ?? inputs.environment.name
        guard let store = inputs.store else { return .fail("no run store to read rehearsals from") }
        let runs: [SlipwayStore.RunRecord]
        do { runs = try await store.history(environment: environment, limit: 50) } catch { return .fail("\(error)") }
        let release = inputs.release.description
        let candidates = runs.filter { $0.rehearsal != nil && (inputs.release.sha == nil || $0.sha == inputs.release.sha) }
        guard let run = candidates.first else {
            let hint =
                inputs.pipeline.environment(named: environment)?.rehearseRollback == true
                ? "deploy \(release) to \(environment) first"
                : "set `rehearse_rollback: true` on \(environment)"
            return .fail("no rollback rehearsal of \(release) in \(environment): \(hint)")
        }
        let took = run.rehearsalMS.map { " (rolled back in \($0) ms)" } ?? ""
        switch run.rehearsal {
        case .passed: return .pass("run \(run.id) rehearsed the rollback of \(release) in \(environment): passed\(took)")
        case .failed:
            return .fail("run \(run.id)'s rollback rehearsal in \(environment) failed\(took): `deploy show \(run.id)` says why")
        default:
            return .fail(
                "run \(run.id) skipped its rehearsal in \(environment) (nothing served before it): deploy \(release) there again to rehearse"
            )
        }
    }

    static func previousImage(_ inputs: ChecklistInputs) async -> CheckVerdict {
        guard let store = inputs.store else { return .fail("no run store to read releases from") }
        let environment = inputs.environment.name
        let good: [SlipwayStore.RunRecord]
        do { good = try await store.goodReleases(environment: environment, before: inputs.runID, limit: 1) } catch {
            return .fail("\(error)")
        }
        guard let previous = good.first else {
            return .pass("\(environment) has no earlier good release: there is nothing to roll back to yet")
        }
        guard let image = previous.image else {
            return .fail("run \(previous.id), \(environment)'s last good release, recorded no image: a rollback has nothing to run")
        }
        if await inputs.docker.imageAvailable(image) {
            return .pass("\(image) (run \(previous.id), \(previous.version ?? "?")) is still there for a rollback")
        }
        return .fail(
            "\(image), the image of \(environment)'s last good release (run \(previous.id)), is gone: a rollback cannot run it; keep it in the registry"
        )
    }

    static func semver(_ inputs: ChecklistInputs) -> CheckVerdict {
        guard let version = inputs.release.version else {
            return .fail("the release has no version: tag the commit (`git tag v1.2.0`) or set one")
        }
        let bare = version.hasPrefix("v") ? String(version.dropFirst()) : version
        guard SemanticVersion(bare) != nil else {
            return .fail(
                "version '\(version)' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.2): tag releases as vMAJOR.MINOR.PATCH")
        }
        return .pass("version \(version) is a semantic version")
    }

    static func strategy(_ allowed: [String], inputs: ChecklistInputs) -> CheckVerdict {
        let name = inputs.environment.strategy?.name.replacingOccurrences(of: "-", with: "_") ?? "replace"
        guard allowed.contains(name) else {
            return .fail(
                "\(inputs.environment.name) deploys with strategy \(name), not \(allowed.joined(separator: " or ")): set `strategy:` on it in \(inputs.pipeline.file)"
            )
        }
        return .pass("\(inputs.environment.name) deploys \(name.replacingOccurrences(of: "_", with: "-"))")
    }

    static func approval(_ inputs: ChecklistInputs) -> CheckVerdict {
        let name = inputs.environment.name
        let stage = inputs.pipeline.stages.first { if case .approval(name) = $0.kind { true } else { false } }
        guard let stage else {
            return .fail(
                "\(name) deploys without a person's approval: add `- { name: sign-off, approval: \(name) }` before its deploy stage")
        }
        let spec = inputs.environment.approval ?? ApprovalSpec(approvers: 1, allowed: [], distinctFromTrigger: false, timeout: nil)
        var rules = ["\(spec.approvers) approver\(spec.approvers == 1 ? "" : "s")"]
        if !spec.allowed.isEmpty { rules.append("from \(spec.allowed.joined(separator: ", "))") }
        if spec.distinctFromTrigger { rules.append("not the person who started it") }
        return .pass("stage \(stage.name) waits for \(rules.joined(separator: ", ")) before \(name) changes")
    }
}

/// `run:` and `sh:` items: the team's own tool; exit 0 passes.
enum CommandChecks {
    static func run(_ argv: [String], timeout: Duration?, inputs: ChecklistInputs) async -> CheckVerdict {
        var environment = inputs.processEnvironment
        for (name, value) in inputs.variables { environment[name] = value }
        let spec = ProcessSpec(
            executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment, workingDirectory: inputs.repository,
            timeout: timeout ?? .seconds(600), gracePeriod: .seconds(5))
        let shown = argv.first == "/bin/sh" ? "the sh script" : spec.displayCommand
        do {
            let (termination, output) = try await inputs.launcher.capture(spec, masker: inputs.masker)
            let last = output.split(whereSeparator: \.isNewline).suffix(termination.succeeded ? 1 : 3)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " | ")
            let said = last.isEmpty ? "" : ": " + String(inputs.masker.mask(last).prefix(300))
            guard termination.succeeded else { return .fail("\(shown) ended with \(termination.description)\(said)") }
            return .pass("\(shown) passed\(said)")
        } catch {
            return .fail("\(shown) could not run: \(inputs.masker.mask("\(error)"))")
        }
    }
}
