import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore

/// `checklist:` stages: the run records the checklist as the pipeline has it, a machine checks
/// what it can (each check a recorded step), and the stage waits for the sign-offs still missing
/// (`deploy sign`, or the prompt on a terminal). A required item that fails, or a sign-off not
/// given before the timeout, stops the run before the environment changes.
struct ChecklistStage: StageExecutor {
    func run(_ stage: Stage, in context: RunContext, slot: StageSlot) async -> RunContext.StageOutcome {
        guard case .checklist(let spec) = stage.kind else { return .init(outcome: .failed, reason: "internal: not a checklist") }
        return await context.recordedStage(stage, slot: slot) { record in
            await context.runChecklist(spec, stage: stage, record: record)
        }
    }
}

extension RunContext {
    func runChecklist(_ spec: ChecklistSpec, stage: Stage, record: StageRecord) async -> StageOutcome {
        let now = engine.now()
        var items = Checklists.records(spec, runID: runID, stage: stage.name)
        // Sign-offs that stand for a while (valid_for) carry over from earlier runs while valid.
        for index in items.indices where items[index].isSignOff && items[index].validForSeconds != nil {
            guard let earlier = try? await store.latestSignOff(environment: spec.environment, itemID: items[index].itemID) else { continue }
            let day = earlier.at.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
            if let expires = earlier.expiresAt, expires > now {
                items[index].state = .signed
                items[index].signedBy = earlier.signer
                items[index].signedAt = earlier.at
                items[index].comment = earlier.comment
                items[index].expiresAt = expires
                items[index].detail =
                    "signed by \(earlier.signer) on \(day) (run \(earlier.runID)), valid until \(expires.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day()))"
            } else {
                items[index].state = .expired
                items[index].expiresAt = earlier.expiresAt
                items[index].detail = "signed by \(earlier.signer) on \(day), expired: sign it again"
            }
        }
        do { try await store.saveChecklist(items) } catch { return StageOutcome(outcome: .failed, reason: "\(error)") }

        let inputs = await checklistInputs(spec)
        let manifestsNeeded = spec.items.contains {
            if case .check(let check) = $0.item.requirement { check.looksAtManifests } else { false }
        }
        let manifests = manifestsNeeded ? await ManifestLoad.load(inputs.manifests, inputs: inputs) : .none
        let log = StepRecorder(context: self, stage: stage, stageID: record.id)
        var failed: [String] = []
        for index in items.indices {
            guard case .check(let check) = spec.items[index].item.requirement else { continue }
            let item = items[index]
            let required = !item.advisory
            // Each check is a recorded step: its time, its one-line verdict in the run's log.
            let outcome: CheckVerdict
            do {
                outcome = try await log.step(item.itemID, command: "\(check.name): \(item.title)") { say in
                    let verdict = await ChecklistChecks.evaluate(check, inputs: inputs, manifests: manifests)
                    // A required item that fails says why as the step's failure.
                    if !verdict.passed && required { throw ChecklistItemFailed(verdict: verdict) }
                    say((verdict.passed ? "passed: " : "advisory, failed: ") + verdict.detail)
                    return verdict
                }
            } catch let failure as ChecklistItemFailed {
                outcome = failure.verdict
            } catch {
                outcome = .fail("\(error)")
            }
            items[index].state = outcome.passed ? .passed : .failed
            items[index].detail = masker.mask(outcome.detail)
            items[index].checkedAt = Date()
            try? await store.updateChecklistItem(items[index])
            if !outcome.passed && required { failed.append("\(item.itemID) (\(items[index].detail))") }
            if !outcome.passed && !required {
                reporter.report(.notice("warning: advisory item \(item.itemID) failed: \(items[index].detail)"))
            }
        }
        if !failed.isEmpty {
            let shown = failed.prefix(3).joined(separator: "; ") + (failed.count > 3 ? "; and \(failed.count - 3) more" : "")
            return StageOutcome(
                outcome: .failed,
                reason:
                    "\(failed.count) required checklist item\(failed.count == 1 ? "" : "s") failed: \(shown) (`deploy checklist \(spec.environment)` lists them)"
            )
        }
        return await waitForSignOffs(spec, stage: stage, items: items)
    }

    /// What the checks of `spec` look at, for this run.
    func checklistInputs(_ spec: ChecklistSpec) async -> ChecklistInputs {
        let environment = plan.pipeline.environment(named: spec.environment) ?? plan.environment
        var manifests = spec.manifests
        var environmentURL: String?
        if let target = environment.target {
            if case .kubernetes(let kubernetes) = target, manifests == nil { manifests = kubernetes.manifests }
            environmentURL = (try? engine.makeTarget(target, targetSetting(environment: environment.name)))?.serviceURL
        }
        let image = try? await releaseImage(for: environment)
        var values = variables(stage: "checklist")
        if let environmentURL { values["SERVICE_URL"] = environmentURL }
        let context = self
        let url = environmentURL
        return ChecklistInputs(
            pipeline: plan.pipeline, environment: environment, manifests: manifests, release: release, image: image, changelog: changelog,
            environmentURL: environmentURL,
            processEnvironment: (try? childEnvironment(stage: "checklist", values: values)) ?? engine.environment,
            launcher: engine.launcher, masker: masker, store: store, runID: runID,
            gate: { name in await context.checklistGate(name, environment: environment.name, environmentURL: url) }, variables: values)
    }

    /// A pipeline gate, measured against the environment's URL and the release serving there.
    func checklistGate(_ name: String, environment: String, environmentURL: String?) async -> CheckVerdict {
        guard let gate = plan.pipeline.gates.first(where: { $0.name == name }) else { return .fail("gate \(name) is not declared") }
        guard let environmentURL else { return .fail("gate \(name): the environment has no target, so no URL to check") }
        // Only a gate item needs it: read here, not for every checklist.
        let serving = try? await store.goodReleases(environment: environment, before: runID, limit: 1).first
        let release = serving.map { ReleaseReference(run: $0.id, version: $0.version, sha: $0.sha, image: $0.image ?? "") }
        do {
            let check = try check(for: gate, targets: GateTargets(targetURL: environmentURL, serviceURL: environmentURL, release: release))
            let result = await GateRunner(clock: engine.clock).run(gate, check: check)
            let seen = result.measurements.last?.detail ?? "no measurement"
            return result.passed
                ? .pass("gate \(name) held at \(environmentURL): \(seen)") : .fail(result.reason ?? "gate \(name) failed: \(seen)")
        } catch {
            return .fail("\(error)")
        }
    }

    /// Waits until every required sign-off is given (`deploy sign`, or the prompt), or the timeout.
    func waitForSignOffs(_ spec: ChecklistSpec, stage: Stage, items: [ChecklistItemRecord]) async -> StageOutcome {
        @Sendable func missing(_ items: [ChecklistItemRecord]) -> [ChecklistItemRecord] {
            items.filter { $0.isSignOff && !$0.advisory && $0.state != .signed }
        }
        let waiting = missing(items)
        let advisoryOpen = items.filter { $0.isSignOff && $0.advisory && $0.state != .signed }.count
        let checked = items.filter { !$0.isSignOff }.count
        let warnings = items.filter { !$0.isSignOff && $0.state == .failed }.count
        let advisories =
            (warnings > 0 ? ", \(warnings) advisory check\(warnings == 1 ? "" : "s") failed" : "")
            + (advisoryOpen > 0 ? ", \(advisoryOpen) advisory sign-off\(advisoryOpen == 1 ? "" : "s") open" : "")
        if waiting.isEmpty {
            return StageOutcome(
                outcome: .succeeded, reason: "\(checked) checked, \(items.count - checked - advisoryOpen) signed off" + advisories)
        }
        let timeout = spec.timeout ?? .seconds(24 * 3600)
        reporter.report(
            .notice(
                "\(waiting.count) sign-off\(waiting.count == 1 ? "" : "s") needed before \(spec.environment): "
                    + "`deploy sign \(runID) <item> [--as NAME]` from any terminal (`deploy checklist \(spec.environment)` lists them), "
                    + "within \(DurationParser.format(timeout))"))
        for item in waiting.prefix(20) {
            reporter.report(.notice("  waiting: \(item.itemID): \(item.title) (\(item.role ?? item.signers.joined(separator: ", ")))"))
        }
        if waiting.count > 20 { reporter.report(.notice("  and \(waiting.count - 20) more")) }
        let store = self.store
        let runID = self.runID
        let signer = trigger.user
        let reporter = self.reporter
        let clock = engine.clock
        var answer: (@Sendable () async -> Void)?
        if let prompt = engine.approvalPrompt {
            let mine = waiting.filter { $0.maySign(signer) && !$0.distinctFromTrigger }
            answer = {
                for item in mine {
                    guard await prompt("Sign off \(item.itemID) (\(item.title)) as \(signer)? [y/N] ") else { continue }
                    do {
                        try await Checklists.sign(
                            in: store, runID: runID, item: item.itemID, signer: signer, comment: "signed at the prompt", now: Date())
                    } catch {
                        reporter.report(.notice("\(error)"))
                    }
                }
            }
        }
        let watch: @Sendable () async -> StageOutcome = {
            var waited = Duration.zero
            var left = waiting.count
            while true {
                let current = (try? await store.checklist(runID: runID)) ?? []
                let open = missing(current.filter { $0.stage == stage.name })
                if open.isEmpty {
                    let signers = Set(current.filter { $0.isSignOff && $0.state == .signed }.compactMap(\.signedBy)).sorted()
                    return StageOutcome(
                        outcome: .succeeded, reason: "\(checked) checked, signed off by \(signers.joined(separator: ", "))" + advisories
                    )
                }
                if open.count != left {
                    left = open.count
                    reporter.report(.notice("\(left) sign-off\(left == 1 ? "" : "s") still needed"))
                }
                if waited >= timeout {
                    return StageOutcome(
                        outcome: .timedOut,
                        reason:
                            "\(open.count) sign-off\(open.count == 1 ? "" : "s") not given within \(DurationParser.format(timeout)): "
                            + open.prefix(3).map(\.itemID).joined(separator: ", ") + (open.count > 3 ? ", …" : ""))
                }
                do { try await clock.sleep(for: .milliseconds(250)) } catch {
                    return StageOutcome(outcome: .cancelled, reason: "cancelled while waiting for sign-offs")
                }
                waited += .milliseconds(250)
            }
        }
        return await Self.firstDecision(answer: answer, watch: watch, cancelled: "cancelled while waiting for sign-offs")
    }
}

/// A required item's check that did not hold: the step fails with its one-line explanation.
struct ChecklistItemFailed: Error, CustomStringConvertible {
    var verdict: CheckVerdict
    var description: String { verdict.detail }
}
