import Foundation
import SlipwayCore
public import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

/// One message for the webhooks.
public struct Notification: Sendable {
    public var event: NotificationEvent
    public var runID: Int64
    public var app: String
    public var environment: String
    public var version: String?
    public var sha: String?
    public var trigger: String
    public var reason: String?

    /// The generic JSON body.
    func jsonBody() -> [String: Any] {
        [
            "event": event.rawValue, "run": runID, "app": app, "environment": environment, "version": version as Any, "sha": sha as Any,
            "triggered_by": trigger, "reason": reason as Any,
        ]
    }

    /// A Slack-compatible body (`text`).
    func slackBody() -> [String: Any] {
        let what: String =
            switch event {
            case .started: "started deploying"
            case .succeeded: "deployed"
            case .failed: "failed to deploy"
            case .cancelled: "cancelled the deploy of"
            case .rolledBack: "rolled back"
            case .waitingForApproval: "is waiting for approval to deploy"
            }
        var text = "\(trigger) \(what) \(app) \(version ?? sha.map { String($0.prefix(7)) } ?? "") to \(environment) (run \(runID))"
        if let reason { text += ": \(reason)" }
        if event == .waitingForApproval { text += " — `deploy approve \(runID)`" }
        return ["text": text]
    }
}

/// Turns a run's events into the webhooks' notifications: its start, a wait for approval, and how
/// it ended. It takes the same ``RunEvent``s as the terminal and JSON reporters.
final class WebhookReporter: Reporting {
    let isRollback: Bool
    let send: @Sendable (Notification) -> Void
    /// What the run-started event said, which every later notification repeats.
    private let run = Mutex<(app: String, environment: String, release: Release, trigger: String, changes: String?)?>(nil)

    init(isRollback: Bool, send: @escaping @Sendable (Notification) -> Void) {
        self.isRollback = isRollback
        self.send = send
    }

    func report(_ event: RunEvent) {
        switch event {
        case .runStarted(let runID, let app, let environment, let release, let trigger, _, let changes):
            run.withLock { $0 = (app, environment, release, trigger.description, changes) }
            tell(.started, runID: runID, reason: changes)
        case .approvalWaiting(let runID, _, _, let needed, let deadline, _):
            // The person deciding sees what ships and what it risks where the request reaches them.
            let changes = run.withLock { $0?.changes }
            tell(
                .waitingForApproval, runID: runID,
                reason: "needs \(needed) approval\(needed == 1 ? "" : "s") before \(deadline.formatted(.iso8601))"
                    + (changes.map { "; \($0)" } ?? ""))
        case .runFinished(let runID, let outcome, _, let reason, _):
            let event: NotificationEvent =
                switch outcome {
                case .succeeded: isRollback ? .rolledBack : .succeeded
                case .cancelled: .cancelled
                case .rolledBack: .rolledBack
                default: .failed
                }
            tell(event, runID: runID, reason: reason)
        default:
            break
        }
    }

    private func tell(_ event: NotificationEvent, runID: Int64, reason: String?) {
        guard let run = run.withLock({ $0 }) else { return }
        send(
            Notification(
                event: event, runID: runID, app: run.app, environment: run.environment, version: run.release.version,
                sha: run.release.sha, trigger: run.trigger, reason: reason))
    }
}

/// Sends every event to each of its reporters, in order.
struct FanOutReporter: Reporting {
    let reporters: [any Reporting]
    init(_ reporters: [any Reporting]) { self.reporters = reporters }
    func report(_ event: RunEvent) { for reporter in reporters { reporter.report(event) } }
}

/// Posts notifications to webhooks, in order, each with retries and exponential backoff. Delivery
/// runs beside the deploy and never blocks or fails it: a webhook that cannot be reached is
/// recorded as such.
struct Notifier: Sendable {
    let hooks: [(spec: WebhookSpec, url: URL)]
    let store: any DeployStore
    let clock: any Clock<Duration>
    let masker: SecretMasker
    let attempts = 3
    let requestTimeout = Duration.seconds(10)

    init(pipeline: Pipeline, environment: [String: String], store: any DeployStore, clock: any Clock<Duration>, masker: SecretMasker) {
        hooks = pipeline.webhooks.compactMap { spec in
            guard let text = environment[spec.urlFrom], let url = URL(string: text) else { return nil }
            return (spec, url)
        }
        self.store = store
        self.clock = clock
        self.masker = masker
    }

    var isEmpty: Bool { hooks.isEmpty }

    /// Delivers every notification the stream yields, until it finishes.
    func deliver(_ notifications: AsyncStream<Notification>) async {
        for await notification in notifications {
            for (spec, url) in hooks where spec.events.contains(notification.event) {
                await post(notification, to: url, spec: spec)
            }
        }
    }

    private func post(_ notification: Notification, to url: URL, spec: WebhookSpec) async {
        let body = spec.format == .slack ? notification.slackBody() : notification.jsonBody()
        guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]) else { return }
        var failure = ""
        for attempt in 1...attempts {
            do {
                let status = try await HTTP.post(url.absoluteString, json: data, timeout: requestTimeout).status
                if (200..<300).contains(status) {
                    await record(
                        .notifySent, "\(notification.event.rawValue) sent to \(spec.urlFrom) (attempt \(attempt))",
                        runID: notification.runID)
                    return
                }
                failure = "HTTP \(status)"
            } catch is CancellationError {
                return
            } catch {
                failure = masker.mask("\(error)")
            }
            guard attempt < attempts else { break }
            do { try await clock.sleep(for: Backoff.delay(base: .seconds(1), retry: attempt, jitter: 0.5)) } catch { return }
        }
        await record(
            .notifyFailed, "\(notification.event.rawValue) to \(spec.urlFrom) failed after \(attempts) attempts: \(failure)",
            runID: notification.runID)
    }

    private func record(_ kind: EventName, _ message: String, runID: Int64) async {
        try? await store.append(EventRecord(runID: runID, at: Date(), kind: kind, message: masker.mask(message)))
    }
}
