import Foundation
import SlipwayCore
import Yams

// `roles:`, and `checklist:` stages: their sections, items, checks and sign-offs.
extension PipelineReader {
    // MARK: Roles

    func roleMap(_ node: Node) -> [String: [String]] {
        guard let pairs = mapping(node, "roles", hint: "e.g. `roles: { security-lead: [carol], sre: [dave, erin] }`") else { return [:] }
        var roles: [String: [String]] = [:]
        for (keyNode, name, value) in pairs.entries {
            if !isValidIdentifier(name) {
                error(
                    keyNode, "role name \(shown(name)) is not valid" + tooLong(name), hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
            }
            let people = stringList(value, "role '\(name)'", hint: "a list of people, e.g. `[alice, bob]`; `[\"*\"]` for anyone")
            if people.isEmpty { error(value, "role '\(name)' has nobody in it", hint: "list who holds it, e.g. `[alice, bob]`") }
            roles[name] = people
        }
        return roles
    }

    // MARK: Checklists

    func checklist(_ node: Node, stage: String) -> ChecklistSpec? {
        guard
            let pairs = mapping(
                node, "checklist", hint: "e.g. `checklist: { environment: production, sections: [{ name: Security, items: [...] }] }`")
        else { return nil }
        checkKeys(pairs, allowed: ["environment", "manifests", "timeout", "sections"], in: "checklist")
        let environment = required(
            pairs, "environment", in: node, context: "checklist",
            hint: "name the environment it vouches for, e.g. `environment: production`"
        ).flatMap { string($0, "environment") }
        let timeout = pairs["timeout"].flatMap { duration($0, "timeout") }
        guard
            let sectionsNode = required(
                pairs, "sections", in: node, context: "checklist",
                hint: "a list of `{ name: Security, items: [...] }`"),
            let sectionNodes = sequence(sectionsNode, "sections")
        else { return nil }
        var sections: [ChecklistSpec.Section] = []
        var written = 0
        var ids: [String: SourceLocation] = [:]
        for sectionNode in sectionNodes {
            guard let sectionPairs = mapping(sectionNode, "a checklist section", hint: "`{ name: Security, items: [...] }`") else {
                continue
            }
            checkKeys(sectionPairs, allowed: ["name", "items"], in: "a checklist section")
            guard
                let name = required(sectionPairs, "name", in: sectionNode, context: "a checklist section", hint: "add `name:`")
                    .flatMap({ string($0, "name") }),
                let itemsNode = required(sectionPairs, "items", in: sectionNode, context: "section '\(name)'", hint: "add `items:`"),
                let itemNodes = sequence(itemsNode, "items")
            else { continue }
            var items: [ChecklistSpec.Item] = []
            written += itemNodes.count
            for itemNode in itemNodes {
                guard let item = checklistItem(itemNode, section: name) else { continue }
                if let first = ids[item.id] {
                    error(
                        itemNode, "checklist item id '\(item.id)' is used twice (first at line \(first.line))",
                        hint: "give one of them its own `id:`")
                    continue
                }
                ids[item.id] = item.location
                items.append(item)
            }
            sections.append(ChecklistSpec.Section(name: name, items: items))
        }
        if written == 0 {
            error(sectionsNode, "checklist of stage '\(stage)' has no items", hint: "add items under a section's `items:`")
        }
        guard let environment else { return nil }
        return ChecklistSpec(
            environment: environment, manifests: pairs["manifests"].flatMap { string($0, "manifests") }, timeout: timeout,
            sections: sections)
    }

    /// Lower-case ASCII words joined by dashes, at most `limit` characters (`section.item` ids).
    static func slug(_ text: String, limit: Int = 40) -> String {
        var words: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        var result = ""
        for word in words {
            let next = result.isEmpty ? word : result + "-" + word
            if next.count > limit { break }
            result = next
        }
        return result.isEmpty ? "item" : result
    }

    func checklistItem(_ node: Node, section: String) -> ChecklistSpec.Item? {
        guard let pairs = mapping(node, "a checklist item", hint: "e.g. `- { item: \"Liveness probe configured\", check: probes }`")
        else { return nil }
        checkKeys(pairs, allowed: ["item", "id", "check", "sign_off", "advisory"], in: "a checklist item")
        guard
            let title = required(pairs, "item", in: node, context: "a checklist item", hint: "add `item:` with the item's wording")
                .flatMap({ string($0, "item") })
        else { return nil }
        var id = Self.slug(section, limit: 24) + "." + Self.slug(title)
        if let idNode = pairs["id"], let given = string(idNode, "id") {
            if given.isEmpty || given.count > 80 || given.contains(where: { $0.isWhitespace }) {
                error(idNode, "checklist item id \(shown(given)) is not valid", hint: "use 1 to 80 characters without spaces")
            }
            id = given
        }
        let advisory = pairs["advisory"].flatMap { bool($0, "advisory") } ?? false
        let requirement: ChecklistSpec.Requirement
        switch (pairs["check"], pairs["sign_off"]) {
        case (let check?, nil):
            guard let parsed = checklistCheck(check) else { return nil }
            requirement = .check(parsed)
        case (nil, let signOffNode?):
            guard let parsed = signOff(signOffNode) else { return nil }
            requirement = .signOff(parsed)
        case (_?, let signOffNode?):
            error(signOffNode, "item '\(title)' has both check and sign_off", hint: "a machine checks it or a person signs it: keep one")
            return nil
        case (nil, nil):
            error(
                node, "item '\(title)' says neither how it is checked nor who signs it off",
                hint: "add `check:` (e.g. `check: probes`) or `sign_off:` (e.g. `sign_off: tech-lead`)")
            return nil
        }
        return ChecklistSpec.Item(id: id, title: title, location: location(node), advisory: advisory, requirement: requirement)
    }

    /// `sign_off: ROLE`, `sign_off: [alice, bob]` or `sign_off: { role|by, valid_for, distinct_from_trigger }`.
    func signOff(_ node: Node) -> SignOff? {
        switch node {
        case .scalar:
            guard let role = string(node, "sign_off") else { return nil }
            return resolvedSignOff(role: role, by: [], node: node, validFor: nil, distinct: false)
        case .sequence:
            let people = stringList(node, "sign_off")
            if people.isEmpty { error(node, "sign_off names nobody", hint: "list who may sign, e.g. `[alice, bob]`") }
            return SignOff(signers: people)
        default:
            guard let pairs = mapping(node, "sign_off") else { return nil }
            checkKeys(pairs, allowed: ["role", "by", "valid_for", "distinct_from_trigger"], in: "sign_off")
            let validFor = pairs["valid_for"].flatMap { duration($0, "valid_for") }
            let distinct = pairs["distinct_from_trigger"].flatMap { bool($0, "distinct_from_trigger") } ?? false
            let role = pairs["role"].flatMap { string($0, "role") }
            let by = pairs["by"].map { stringList($0, "by") } ?? []
            if role == nil && by.isEmpty {
                error(node, "sign_off names no role and nobody", hint: "add `role: tech-lead` or `by: [alice, bob]`")
                return nil
            }
            return resolvedSignOff(role: role, by: by, node: pairs["role"] ?? node, validFor: validFor, distinct: distinct)
        }
    }

    func resolvedSignOff(role: String?, by: [String], node: Node, validFor: Duration?, distinct: Bool) -> SignOff? {
        var signers = by
        if let role {
            guard let people = roles[role] else {
                let guess = suggestion(for: role, among: Array(roles.keys).sorted())
                error(
                    node, "sign_off names role '\(role)', which is not declared",
                    hint: guess.map { "did you mean '\($0)'?" } ?? "declare it under `roles:`, e.g. `roles: { \(role): [alice] }`")
                return nil
            }
            signers += people
        }
        return SignOff(signers: signers, role: role, validFor: validFor, distinctFromTrigger: distinct)
    }

    /// `check: NAME` (a built-in with its defaults) or `check: { NAME: settings }`.
    func checklistCheck(_ node: Node) -> ChecklistCheck? {
        let kinds = ChecklistCheck.builtinNames + ["gate", "run", "sh"]
        let hint = "one of: \(kinds.joined(separator: ", ")); e.g. `check: probes` or `check: { run: [make, test] }`"
        if case .scalar = node {
            guard let name = string(node, "check", hint: hint) else { return nil }
            guard kinds.contains(name) else {
                error(node, "unknown check '\(name)'", hint: suggestion(for: name, among: kinds).map { "did you mean '\($0)'?" } ?? hint)
                return nil
            }
            return builtinCheck(name, settings: nil, node: node)
        }
        guard let pairs = mapping(node, "check", hint: hint) else { return nil }
        let present = pairs.entries.filter { $0.key != "timeout" }
        guard present.count == 1 else {
            error(node, present.isEmpty ? "check names no check" : "check names more than one check", hint: hint)
            return nil
        }
        let (keyNode, name, value) = present[0]
        guard kinds.contains(name) else {
            error(keyNode, "unknown check '\(name)'", hint: suggestion(for: name, among: kinds).map { "did you mean '\($0)'?" } ?? hint)
            return nil
        }
        let timeout = pairs["timeout"].flatMap { duration($0, "timeout") }
        if pairs["timeout"] != nil, name != "run", name != "sh" {
            error(pairs["timeout"]!, "timeout applies to a run or sh check, not to \(name)")
        }
        switch name {
        case "run":
            if case .scalar(let scalar) = value {
                error(
                    value, "run takes an argv array, not a string",
                    hint: "write `run: [\(scalar.string.split(separator: " ").joined(separator: ", "))]`, or use `sh:`")
                return nil
            }
            let argv = stringList(value, "run")
            guard !argv.isEmpty, !argv[0].isEmpty else { error(value, "run is empty", hint: "e.g. `run: [make, test]`"); return nil }
            return .run(argv, timeout: timeout)
        case "sh":
            guard let script = string(value, "sh"), !script.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                error(value, "sh script is empty")
                return nil
            }
            return .sh(script, timeout: timeout)
        case "gate":
            guard let gate = string(value, "gate", hint: "name a gate declared under `gates:`") else { return nil }
            return .gate(gate)
        default:
            return builtinCheck(name, settings: isNull(value) ? nil : value, node: value)
        }
    }

    func builtinCheck(_ name: String, settings node: Node?, node at: Node) -> ChecklistCheck? {
        /// The settings mapping, allowing only `keys`; nil settings are an empty mapping.
        func settings(_ keys: [String], hint: String) -> Mapping? {
            guard let node else { return Mapping(entries: []) }
            if case .scalar = node, let value = node.string, ["true", "yes"].contains(value.lowercased()) { return Mapping(entries: []) }
            guard let pairs = mapping(node, name, hint: hint) else { return nil }
            checkKeys(pairs, allowed: keys, in: name)
            return pairs
        }
        func scalarOr(_ key: String, _ keys: [String], hint: String) -> (String?, Mapping)? {
            if let node, case .scalar = node, let value = node.string, !["true", "yes"].contains(value.lowercased()) {
                return (value, Mapping(entries: []))
            }
            guard let pairs = settings(keys, hint: hint) else { return nil }
            return (pairs[key].flatMap { string($0, key) }, pairs)
        }
        func needs(_ what: String, _ example: String) -> ChecklistCheck? {
            error(at, "check \(name) needs \(what)", hint: "e.g. `check: { \(name): \(example) }`")
            return nil
        }
        switch name {
        case "probes":
            guard let pairs = settings(["startup"], hint: "`probes: { startup: true }` also asks for startup probes") else { return nil }
            return .probes(startup: pairs["startup"].flatMap { bool($0, "startup") } ?? false)
        case "resources": return settings([], hint: "resources takes no settings").map { _ in .resources }
        case "pinned_images": return settings([], hint: "pinned_images takes no settings").map { _ in .pinnedImages }
        case "manifests": return settings([], hint: "manifests takes no settings").map { _ in .manifests }
        case "changelog": return settings([], hint: "changelog takes no settings").map { _ in .changelog }
        case "previous_image": return settings([], hint: "previous_image takes no settings").map { _ in .previousImage }
        case "semver": return settings([], hint: "semver takes no settings").map { _ in .semver }
        case "approval": return settings([], hint: "approval takes no settings").map { _ in .approval }
        case "replicas":
            if let node, case .scalar = node {
                return integer(node, "replicas", in: 1...10_000).map { .replicas(minimum: $0) }
            }
            guard let pairs = settings(["min"], hint: "`replicas: 3`, or `replicas: { min: 3 }`") else { return nil }
            guard let minimum = pairs["min"].flatMap({ integer($0, "min", in: 1...10_000) }) else { return needs("a minimum", "3") }
            return .replicas(minimum: minimum)
        case "http":
            guard
                let (url, pairs) = scalarOr(
                    "url", ["url", "status", "body", "within"],
                    hint: "`http: /health`, or `http: { url: /health, status: 200, within: 2s }`")
            else { return nil }
            guard let url else { return needs("a URL or a path on the environment's URL", "/health") }
            return .http(
                url: url, status: pairs["status"].flatMap { integer($0, "status", in: 100...599) },
                body: pairs["body"].flatMap { string($0, "body") }, within: pairs["within"].flatMap { duration($0, "within") })
        case "metrics":
            guard let (url, _) = scalarOr("url", ["url"], hint: "`metrics: /metrics`") else { return nil }
            return .metrics(url: url ?? "/metrics")
        case "tls":
            guard let (url, pairs) = scalarOr("url", ["url", "min_days"], hint: "`tls: { url: \"https://example.com\", min_days: 30 }`")
            else { return nil }
            guard let url else { return needs("an https URL", "{ url: \"https://example.com\", min_days: 30 }") }
            if !url.hasPrefix("https://") && !url.hasPrefix("${") {
                error(at, "tls checks an https URL, not '\(url)'", hint: "write `https://host[:port]`")
            }
            return .tls(url: url, minimumDays: pairs["min_days"].flatMap { integer($0, "min_days", in: 0...3650) } ?? 14)
        case "documents":
            guard let node else { return needs("a list of files", "[README.md, RUNBOOK.md]") }
            let files = stringList(node, "documents", hint: "a list of files, e.g. `[README.md, docs/runbook.md]`")
            if files.isEmpty { return needs("a list of files", "[README.md, RUNBOOK.md]") }
            return .documents(files)
        case "no_secrets":
            guard let pairs = settings(["paths"], hint: "`no_secrets: { paths: [src, config] }`; default: the whole repository") else {
                return nil
            }
            return .noSecrets(paths: pairs["paths"].map { stringList($0, "paths") } ?? [])
        case "pinned_dependencies":
            guard let (path, _) = scalarOr("path", ["path"], hint: "`pinned_dependencies: Examples/app`; default: the repository")
            else { return nil }
            return .pinnedDependencies(path: path ?? ".")
        case "rollback_rehearsal":
            guard let (environment, _) = scalarOr("environment", ["environment"], hint: "`rollback_rehearsal: staging`") else {
                return nil
            }
            return .rollbackRehearsal(environment: environment)
        case "strategy":
            guard let node else { return needs("the strategies allowed", "[blue_green, canary]") }
            let names = names(of: node)
            let known = ["rolling", "blue_green", "canary"]
            for strategy in names where !known.contains(strategy) {
                error(node, "unknown strategy '\(strategy)'", hint: "known: \(known.joined(separator: ", "))")
            }
            return .strategy(names)
        default:
            return nil
        }
    }

    /// A string or a list of strings.
    private func names(of node: Node) -> [String] {
        if case .scalar = node { return string(node, "strategy").map { [$0] } ?? [] }
        return stringList(node, "strategy")
    }
}
