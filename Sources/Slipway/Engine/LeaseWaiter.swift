import Foundation
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import Synchronization

extension Engine {

    /// Takes the environment's lease, or says who holds it; with `wait`, queues in arrival order.
    func acquireLease(environment: String, trigger: Trigger, wait: Duration?, signalled: SignalFlag = SignalFlag()) async throws {
        let holder = trigger.description
        let first = try await store.acquireLease(
            environment: environment, holder: holder, host: host, pid: pid, now: now(),
            isAlive: ProcessLiveness.isAlive)
        guard case .held(let current) = first else { return }
        guard let wait else { throw Self.unavailable(environment, current) }
        let ticket = try await store.enqueue(environment: environment, holder: holder, host: host, pid: pid, now: now())
        var waited = Duration.zero
        var told: String?
        let interval = Duration.milliseconds(250)
        do {
            while true {
                let attempt = try await store.acquireLease(
                    environment: environment, holder: holder, host: host, pid: pid, now: now(),
                    queueTicket: ticket, isAlive: ProcessLiveness.isAlive)
                let why: String
                switch attempt {
                case .acquired:
                    if told != nil { reporter.report(.notice("\(environment) is free: starting")) }
                    return
                case .held(let lease):
                    why = "held by \(lease.description)"
                case .queued(let ahead):
                    why = "\(ahead) deploy\(ahead == 1 ? "" : "s") ahead in line"
                }
                if why != told {
                    reporter.report(.notice("waiting for \(environment): \(why)"))
                    told = why
                }
                if waited >= wait {
                    throw EnvironmentUnavailable(
                        message: "gave up waiting for \(environment) after \(DurationParser.format(wait)): \(why)",
                        hint: "wait longer with --wait DURATION")
                }
                if let number = signalled.number { throw WaitInterrupted(environment: environment, signal: number) }
                try await clock.sleep(for: interval)
                waited += interval
            }
        } catch {
            try? await store.leaveQueue(ticket: ticket)
            throw error
        }
    }
}
