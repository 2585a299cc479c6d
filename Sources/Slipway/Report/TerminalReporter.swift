import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// Human output: plain lines (CI, pipes) or, on a terminal, colour and a live status line showing
/// the stage running and its elapsed time.
public final class TerminalReporter: Reporting, Sendable {
    let console: Console
    let style: OutputStyle

    private struct State {
        var stage: String?
        var stageStarted: ContinuousClock.Instant?
        var runStarted: ContinuousClock.Instant?
        var index = 0
        var count = 0
        var statusShown = false
        var frame = 0
    }

    private let state = Mutex(State())

    public init(console: Console = .standardOutput, style: OutputStyle) {
        self.console = console
        self.style = style
    }

    /// Redraws the live status line (called a few times a second by the command line while a run goes on).
    public func tick() {
        guard style.live else { return }
        let line = state.withLock { state -> String? in
            state.frame += 1
            return statusLine(state)
        }
        if let line { console.write("\r\u{1B}[2K" + line) }
    }

    public func report(_ event: RunEvent) {
        let text = state.withLock { state -> String in
            let clear = style.live && state.statusShown ? "\r\u{1B}[2K" : ""
            let body = render(event, &state)
            var out = clear + body
            if style.live, let status = statusLine(state) {
                out += status
                state.statusShown = true
            } else {
                state.statusShown = false
            }
            return out
        }
        if !text.isEmpty { console.write(text) }
    }

    private func statusLine(_ state: State) -> String? {
        guard let stage = state.stage, let started = state.stageStarted else { return nil }
        let spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"][state.frame % 10]
        let elapsed = DurationParser.format(ContinuousClock.now - started)
        return style.blue(spinner) + " " + style.bold(stage) + style.dim("  \(elapsed) · stage \(state.index)/\(state.count)")
    }

    private func mark(_ outcome: Outcome) -> String {
        switch outcome {
        case .succeeded: style.live ? style.green("✔") : "ok"
        case .failedAllowed: style.live ? style.yellow("⚠") : "failed (allowed)"
        case .skipped: style.live ? style.dim("–") : "skipped"
        case .cancelled, .interrupted: style.live ? style.yellow("■") : outcome.rawValue
        default: style.live ? style.red("✘") : outcome.rawValue
        }
    }

    private func render(_ event: RunEvent, _ state: inout State) -> String {
        switch event {
        case .runStarted(let runID, let app, let environment, let release, let trigger, let stages, _):
            state.runStarted = .now
            state.count = stages.filter(\.runs).count
            // A rollback learns its release only once it has chosen one.
            let named = release.sha != nil || release.version != nil ? " · release \(release.description)" : ""
            return style.bold("deploy \(app) to \(environment)") + named + " · run \(runID) · by \(trigger.description)\n"
        case .stageStarted(let name, let index, let count):
            state.stage = name
            state.stageStarted = .now
            state.index = index
            state.count = count
            return style.live
                ? style.blue("▶ ") + style.bold(name) + style.dim("  (\(index)/\(count))") + "\n"
                : "==> [\(index)/\(count)] \(name)\n"
        case .stageSkipped(let name, let reason):
            return style.live ? style.dim("– \(name)  skipped: \(reason)") + "\n" : "--- \(name) skipped: \(reason)\n"
        case .stepStarted(let stage, let step, let command, let attempt, let attempts):
            let who = step == stage ? "" : "\(step): "
            let tries = attempt > 1 ? " (attempt \(attempt)/\(attempts))" : ""
            return style.live ? style.dim("  $ \(who)\(command)\(tries)") + "\n" : "[\(stage)] $ \(who)\(command)\(tries)\n"
        case .output(let stage, let step, let line):
            let prefix = step == stage ? stage : "\(stage)/\(step)"
            let text = line.stream == .stderr && style.colour ? style.yellow(line.text) : line.text
            return style.live ? style.dim("  │ ") + text + "\n" : "[\(prefix)] \(line.text)\n"
        case .stepRetrying(let stage, let step, let after, let delay, let next, let attempts):
            let who = step == stage ? stage : "\(stage)/\(step)"
            let text = "\(who): \(after); retrying in \(DurationParser.format(delay)) (attempt \(next)/\(attempts))"
            return style.live ? "  " + style.yellow("↻ " + text) + "\n" : "!!! \(text)\n"
        case .stepFinished(let stage, let step, let outcome, let detail, let duration):
            guard outcome != .succeeded || step != stage else { return "" }
            let who = step == stage ? stage : "\(stage)/\(step)"
            return style.live
                ? "  \(mark(outcome)) \(who): \(detail) " + style.dim(DurationParser.format(duration)) + "\n"
                : "--- \(who): \(detail) in \(DurationParser.format(duration))\n"
        case .stageFinished(let name, let outcome, let duration):
            state.stage = nil
            return style.live
                ? "\(mark(outcome)) \(name)  " + style.dim(DurationParser.format(duration)) + "\n"
                : "--- \(name) \(outcome.rawValue) in \(DurationParser.format(duration))\n"
        case .hookFinished(let event, let outcome, let detail):
            return style.live ? "\(mark(outcome)) hook \(event): \(detail)\n" : "--- hook \(event): \(detail)\n"
        case .approvalWaiting(let runID, let stage, let environment, let needed, let deadline, let details):
            let header =
                "waiting for \(needed) approval\(needed == 1 ? "" : "s") before \(environment) (stage \(stage)), until \(deadline.formatted(.iso8601))"
            var lines = [style.bold(style.yellow("⏸ " + header))]
            lines += details.map { "  " + $0 }
            lines.append("  approve: deploy approve \(runID) [--comment TEXT]    reject: deploy reject \(runID) [--comment TEXT]")
            return lines.joined(separator: "\n") + "\n"
        case .notice(let text):
            return style.live ? style.dim("  ℹ \(text)") + "\n" : "--- \(text)\n"
        case .runFinished(let runID, let outcome, let code, let reason, let duration):
            state.stage = nil
            let summary =
                "run \(runID) \(outcome.rawValue) in \(DurationParser.format(duration))"
                + (reason.map { ": \($0)" } ?? "") + (code == 0 ? "" : " (exit \(code))")
            let coloured = outcome == .succeeded ? style.green(summary) : style.red(summary)
            return (style.live ? style.bold(coloured) : summary) + "\n"
        }
    }
}
