import Foundation
import SlipwayCore
import Yams

// `notify:`: webhooks.
extension PipelineReader {
    func webhookList(_ node: Node, secrets: [String]) -> [WebhookSpec] {
        let example = "e.g. `- { url_from: SLACK_WEBHOOK, format: slack, on: [failed, rolled_back, waiting_for_approval] }`"
        guard let items = sequence(node, "notify", hint: example) else { return [] }
        let events = NotificationEvent.allCases.map(\.rawValue)
        var hooks: [WebhookSpec] = []
        for item in items {
            guard let pairs = mapping(item, "a webhook", hint: example) else { continue }
            checkKeys(pairs, allowed: ["url_from", "format", "on"], in: "a webhook")
            guard let nameNode = required(pairs, "url_from", in: item, context: "a webhook", hint: "name the secret that holds the URL"),
                let name = string(nameNode, "url_from")
            else { continue }
            if !secrets.contains(name) {
                error(
                    nameNode, "the webhook URL must come from a secret, and '\(name)' is not listed under `secrets:`",
                    hint: "add it: `secrets: [\(name)]`; a webhook URL carries its own credentials")
            }
            var format = WebhookSpec.Format.json
            if let formatNode = pairs["format"], let text = string(formatNode, "format") {
                if let known = WebhookSpec.Format(rawValue: text) {
                    format = known
                } else {
                    error(formatNode, "unknown webhook format '\(text)'", hint: "use json or slack")
                }
            }
            var chosen = Set(NotificationEvent.allCases)
            if let onNode = pairs["on"] {
                chosen = []
                for eventNode in sequence(onNode, "on", hint: "a list of: \(events.joined(separator: ", "))") ?? [] {
                    guard let text = string(eventNode, "an event") else { continue }
                    if let event = NotificationEvent(rawValue: text) {
                        chosen.insert(event)
                    } else {
                        let guess = suggestion(for: text, among: events)
                        error(
                            eventNode, "unknown event '\(text)'",
                            hint: guess.map { "did you mean '\($0)'?" } ?? "events: \(events.joined(separator: ", "))")
                    }
                }
            }
            hooks.append(WebhookSpec(urlFrom: name, format: format, events: chosen))
        }
        return hooks
    }
}
