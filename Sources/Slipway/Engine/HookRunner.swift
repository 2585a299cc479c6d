import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

extension RunContext {
    /// Runs the pipeline's hook for `event`, if it has one. Returns whether it failed (nil: no hook).
    @discardableResult
    func runHook(_ event: HookEvent, outcome: Outcome? = nil, reason: String? = nil) async -> Bool? {
        guard let hook = plan.pipeline.hook(event) else { return nil }
        var values = variables(stage: event.rawValue)
        values["DEPLOY_OUTCOME"] = outcome?.rawValue ?? ""
        values["DEPLOY_REASON"] = reason ?? ""
        let env: [String: String]
        do {
            var e = try childEnvironment(stage: event.rawValue, values: values)
            e["DEPLOY_HOOK"] = event.rawValue
            e["DEPLOY_OUTCOME"] = outcome?.rawValue ?? ""
            e["DEPLOY_REASON"] = reason ?? ""
            env = e
        } catch {
            return true
        }
        let spec = ProcessSpec(
            executable: hook.command[0], arguments: Array(hook.command.dropFirst()), environment: env,
            timeout: hook.timeout)
        let reporter = self.reporter
        let name = "hook:\(event.rawValue)"
        let lines = Mutex<[String]>([])
        let termination: ProcessTermination
        var detail: String
        do {
            termination = try await engine.launcher.run(
                spec, masker: masker, onStart: { _ in },
                onOutput: { line in
                    lines.withLock { $0.append(line.text) }
                    reporter.report(.output(stage: name, step: name, line: line))
                })
            detail = termination.description
        } catch {
            termination = .exited(127)
            detail = masker.mask("\(error)")
        }
        let result: Outcome = termination.succeeded ? .succeeded : .failed
        try? await store.append(
            EventRecord(
                runID: runID, at: Date(), kind: .ended(.hook, result), stage: name,
                message: "\(event.rawValue) hook \(detail)"
                    + (lines.withLock { $0.isEmpty } ? "" : "\n" + lines.withLock { $0.suffix(20).joined(separator: "\n") })))
        reporter.report(.hookFinished(event: event.rawValue, outcome: result, detail: detail))
        return !termination.succeeded
    }
}
