import Foundation
import Yams

/// Reads a pipeline file and checks all of it, collecting every problem rather than stopping at
/// the first, so that one `deploy validate` shows a user everything to fix.
public enum PipelineLoader {
    /// Words `deploy` uses as subcommands; an environment cannot be called one of them.
    public static let reservedEnvironmentNames: Set<String> = [
        "validate", "plan", "history", "show", "logs", "rollback", "abort", "unpin", "status", "approve",
        "reject", "lock", "unlock", "changelog", "checklist", "audit", "help", "version",
    ]

    /// Loads and validates `path`; throws ``PipelineError`` listing every error (warnings are returned).
    public static func load(path: String) throws(PipelineError) -> (pipeline: Pipeline, warnings: [Diagnostic]) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason =
                FileManager.default.fileExists(atPath: path)
                ? "cannot read the file as UTF-8 text" : "no such file"
            throw PipelineError(
                file: path,
                diagnostics: [
                    Diagnostic(
                        at: SourceLocation(file: path, line: 1, column: 1), reason,
                        hint: "pass the pipeline with --pipeline FILE (default: Pipelines/<app>.yml or slipway.yml)")
                ])
        }
        return try parse(yaml: text, file: path)
    }

    /// Validates pipeline text; `file` is the name used in locations.
    public static func parse(yaml: String, file: String) throws(PipelineError) -> (pipeline: Pipeline, warnings: [Diagnostic]) {
        let reader = Reader(file: file)
        let pipeline = reader.pipeline(yaml: yaml)
        let errors = reader.diagnostics.filter { $0.severity == .error }
        guard errors.isEmpty, let pipeline else {
            throw PipelineError(file: file, diagnostics: reader.diagnostics.sorted(by: Self.order))
        }
        return (pipeline, reader.diagnostics.sorted(by: Self.order))
    }

    static func order(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        (a.location.line, a.location.column) < (b.location.line, b.location.column)
    }
}

// MARK: - The reader

/// Walks the YAML node tree, building the model and recording diagnostics as it goes.
private final class Reader {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    func location(_ node: Node) -> SourceLocation {
        let mark = node.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    func error(_ node: Node, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(at: location(node), message, hint: hint))
    }

    func warning(_ node: Node, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(.warning, at: location(node), message, hint: hint))
    }

    // MARK: Document

    func pipeline(yaml: String) -> Pipeline? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            diagnostics.append(yamlDiagnostic(error))
            return nil
        }
        guard let root, !isNull(root) else {
            diagnostics.append(
                Diagnostic(
                    at: SourceLocation(file: file, line: 1, column: 1), "the pipeline is empty",
                    hint: "a pipeline needs at least `app:` and `stages:`; see docs/pipelines.md"))
            return nil
        }
        guard let top = mapping(root, "the pipeline") else { return nil }
        let allowed = [
            "app", "image", "secrets", "variables", "environments", "stages", "gates", "hooks", "output_limit", "risk", "notify",
        ]
        checkKeys(top, allowed: allowed, in: "the pipeline")

        let app = required(top, "app", in: root, context: "the pipeline", hint: "name the application, e.g. `app: hello`")
            .flatMap { string($0, "app") }
        if let appNode = top["app"], let app, !isValidIdentifier(app) {
            error(appNode, "app name '\(app)' is not valid", hint: "use letters, digits, '-', '_' and '.'")
        }
        let image = top["image"].flatMap { string($0, "image") }
        let secrets = top["secrets"].map(secretList) ?? []
        let variables = top["variables"].map { variableMap($0, context: "variables") } ?? []
        let gates = top["gates"].map(gateMap) ?? []
        let environments = top["environments"].map(environmentMap) ?? []
        let hooks = top["hooks"].map(hookMap) ?? []
        let outputLimit = top["output_limit"].flatMap { size($0, "output_limit") } ?? Pipeline.defaultOutputLimit
        let riskRules = RiskRules.defaults.merging(top["risk"].map(riskMap) ?? [])
        let webhooks = top["notify"].map { webhookList($0, secrets: secrets.map(\.name)) } ?? []
        let docker = top["docker"].flatMap { string($0, "docker", hint: "the Docker CLI to use, e.g. `docker: podman`") }

        var stages: [Stage] = []
        if let stagesNode = required(
            top, "stages", in: root, context: "the pipeline",
            hint: "add `stages:` with a list of stages, e.g. `- { name: test, run: [swift, test] }`")
        {
            stages = stageList(stagesNode)
        }

        crossCheck(
            stages: stages, environments: environments, gates: gates, variables: variables,
            secrets: secrets, stagesNode: top["stages"], root: root)

        guard let app else { return nil }
        return Pipeline(
            file: file, app: app, image: image, secrets: secrets.map(\.name), variables: variables,
            environments: environments, stages: stages, gates: gates, hooks: hooks, outputLimit: outputLimit, riskRules: riskRules,
            webhooks: webhooks, docker: docker)
    }

    func yamlDiagnostic(_ error: any Error) -> Diagnostic {
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard let yaml = error as? YamlError else {
            return Diagnostic(at: start, "not valid YAML: \(error)")
        }
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = SourceLocation(file: file, line: mark.line, column: mark.column)
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return Diagnostic(
                at: where_, "not valid YAML: \(what)",
                hint: "check indentation and quoting near this point; values containing ': ' or '#' need quotes")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let where_ = SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return Diagnostic(
                at: where_, "key \(names) appears more than once in the same mapping",
                hint: "keep one of them: YAML would silently use only the last")
        default:
            return Diagnostic(at: start, "not valid YAML: \(yaml)")
        }
    }

    // MARK: Sections

    func secretList(_ node: Node) -> [(name: String, node: Node)] {
        guard let items = sequence(node, "secrets", hint: "list the names of environment variables, e.g. `secrets: [REGISTRY_TOKEN]`")
        else { return [] }
        var names: [(String, Node)] = []
        for item in items {
            guard let name = string(item, "a secret's name") else { continue }
            if !Variables.isValidName(name) {
                error(
                    item, "secret name '\(name)' is not an environment variable name",
                    hint: "use letters, digits and '_', not starting with a digit, e.g. REGISTRY_TOKEN")
            } else if names.contains(where: { $0.0 == name }) {
                error(item, "secret '\(name)' is listed twice")
            } else {
                names.append((name, item))
            }
        }
        return names
    }

    /// `args:` of a build stage: `--build-arg NAME=VALUE` pairs; values may use `${VERSION}` and the like.
    func buildArguments(_ node: Node) -> [(name: String, value: String)] {
        guard let pairs = mapping(node, "build args", hint: "e.g. `args: { VERSION: \"${VERSION}\" }`") else { return [] }
        var result: [(String, String)] = []
        for (keyNode, key, valueNode) in pairs.entries {
            guard Variables.isValidName(key) else {
                error(keyNode, "build arg name '\(key)' is not valid", hint: "use letters, digits and '_', not starting with a digit")
                continue
            }
            guard let value = string(valueNode, "build arg \(key)") else { continue }
            result.append((key, value))
        }
        return result
    }

    func variableMap(_ node: Node, context: String) -> [(name: String, value: String)] {
        guard let pairs = mapping(node, context) else { return [] }
        var result: [(String, String)] = []
        let builtins = Set(Variables.builtinNames + Variables.gateOnly)
        for (keyNode, key, valueNode) in pairs.entries {
            if !Variables.isValidName(key) {
                error(
                    keyNode, "variable name '\(key)' is not valid",
                    hint: "use letters, digits and '_', not starting with a digit")
                continue
            }
            if builtins.contains(key) {
                error(
                    keyNode, "variable '\(key)' would hide the built-in ${\(key)}",
                    hint: "choose another name; built-ins: \(Variables.builtins.map(\.name).joined(separator: ", "))")
                continue
            }
            guard let value = string(valueNode, "variable \(key)") else { continue }
            result.append((key, value))
        }
        return result
    }

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

    func freezeList(_ node: Node) -> [FreezeWindow] {
        let example =
            "e.g. `- { from: \"2026-12-20 00:00\", to: \"2027-01-02 00:00\", zone: Europe/Paris, reason: holidays }` "
            + "or `- { weekly: { from: \"fri 16:00\", to: \"mon 08:00\" }, zone: America/New_York, reason: weekend }`"
        guard let items = sequence(node, "freeze", hint: example) else { return [] }
        var windows: [FreezeWindow] = []
        for item in items {
            guard let pairs = mapping(item, "a freeze window", hint: example) else { continue }
            checkKeys(pairs, allowed: ["from", "to", "weekly", "zone", "reason"], in: "a freeze window")
            var zone = TimeZone(identifier: "UTC")!
            if let zoneNode = pairs["zone"], let name = string(zoneNode, "zone") {
                if let found = TimeZone(identifier: name) {
                    zone = found
                } else {
                    error(zoneNode, "unknown time zone '\(name)'", hint: "use an IANA name such as Europe/Paris, America/New_York or UTC")
                }
            }
            let reason = pairs["reason"].flatMap { string($0, "reason") } ?? "freeze"
            if let weekly = pairs["weekly"] {
                guard let w = mapping(weekly, "weekly", hint: "e.g. `weekly: { from: \"fri 16:00\", to: \"mon 08:00\" }`") else { continue }
                checkKeys(w, allowed: ["from", "to"], in: "weekly")
                guard
                    let from = required(w, "from", in: weekly, context: "weekly", hint: "a day and time: \"fri 16:00\"").flatMap({
                        dayTime($0)
                    }),
                    let to = required(w, "to", in: weekly, context: "weekly", hint: "a day and time: \"mon 08:00\"").flatMap({ dayTime($0) }
                    )
                else { continue }
                windows.append(
                    FreezeWindow(
                        period: .weekly(fromDay: from.0, fromMinute: from.1, toDay: to.0, toMinute: to.1), zone: zone,
                        reason: reason, location: location(item)))
            } else {
                guard let from = required(pairs, "from", in: item, context: "a freeze window", hint: example).flatMap({ localTime($0) }),
                    let to = required(pairs, "to", in: item, context: "a freeze window", hint: example).flatMap({ localTime($0) })
                else { continue }
                windows.append(FreezeWindow(period: .dates(from: from, to: to), zone: zone, reason: reason, location: location(item)))
            }
        }
        return windows
    }

    /// `fri 16:00` → (5, 960).
    func dayTime(_ node: Node) -> (Int, Int)? {
        guard let text = string(node, "a day and time") else { return nil }
        let parts = text.lowercased().split(separator: " ")
        guard parts.count == 2, let day = FreezeWindow.dayNames.firstIndex(of: String(parts[0].prefix(3))),
            let minute = minuteOfDay(parts[1])
        else {
            error(node, "'\(text)' is not a day and time", hint: "write a day and a 24-hour time, e.g. \"fri 16:00\"")
            return nil
        }
        return (day, minute)
    }

    func minuteOfDay(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else {
            return nil
        }
        return h * 60 + m
    }

    /// `2026-12-20 00:00` (or `2026-12-20`) as calendar components, read in the window's zone later.
    func localTime(_ node: Node) -> DateComponents? {
        guard let text = string(node, "a date and time") else { return nil }
        let parts = text.split(separator: " ")
        let date = parts.first.map { $0.split(separator: "-").compactMap { Int($0) } } ?? []
        let minute = parts.count > 1 ? minuteOfDay(parts[1]) : 0
        guard date.count == 3, parts.count <= 2, let minute else {
            error(
                node, "'\(text)' is not a date and time", hint: "write \"YYYY-MM-DD HH:MM\" in the window's zone, e.g. \"2026-12-20 18:00\""
            )
            return nil
        }
        return DateComponents(year: date[0], month: date[1], day: date[2], hour: minute / 60, minute: minute % 60)
    }

    func riskMap(_ node: Node) -> [(name: String, patterns: [String])] {
        guard let pairs = mapping(node, "risk", hint: "e.g. `risk: { migration: [\"db/migrations/**\"] }`") else { return [] }
        var result: [(String, [String])] = []
        for (keyNode, name, value) in pairs.entries {
            if !isValidIdentifier(name) {
                error(keyNode, "risk category '\(name)' is not valid", hint: "use letters, digits, '-', '_' and '.'")
                continue
            }
            result.append(
                (
                    name,
                    stringList(
                        value, "the patterns of risk category '\(name)'",
                        hint: "a list of globs such as \"db/migrations/**\" or \"*.sql\"; [] switches a default category off")
                ))
        }
        return result
    }

    func environmentMap(_ node: Node) -> [EnvironmentSpec] {
        guard let pairs = mapping(node, "environments") else { return [] }
        var result: [EnvironmentSpec] = []
        for (keyNode, name, value) in pairs.entries {
            if PipelineLoader.reservedEnvironmentNames.contains(name) {
                error(
                    keyNode, "environment name '\(name)' clashes with the command `deploy \(name)`",
                    hint: "rename the environment, e.g. '\(name)-env'")
            } else if !isValidIdentifier(name) {
                error(keyNode, "environment name '\(name)' is not valid", hint: "use letters, digits, '-', '_' and '.'")
            }
            result.append(environment(name: name, keyNode: keyNode, node: value))
        }
        return result
    }

    func environment(name: String, keyNode: Node, node: Node) -> EnvironmentSpec {
        var spec = EnvironmentSpec(
            name: name, location: location(keyNode), target: nil, strategy: nil, gates: [],
            promoteFrom: nil, approval: nil, variables: [], requireCleanTree: false)
        if isNull(node) { return spec }
        guard let pairs = mapping(node, "environment '\(name)'") else { return spec }
        checkKeys(
            pairs,
            allowed: [
                "target", "strategy", "gates", "promote_from", "approval", "variables", "require_clean_tree", "freeze", "rehearse_rollback",
            ],
            in: "environment '\(name)'")
        spec.target = pairs["target"].flatMap(target)
        spec.strategy = pairs["strategy"].flatMap(strategy)
        spec.gates = pairs["gates"].map { stringList($0, "gates", hint: "list gate names, e.g. `gates: [smoke]`") } ?? []
        spec.promoteFrom = pairs["promote_from"].flatMap { string($0, "promote_from") }
        spec.approval = pairs["approval"].flatMap(approval)
        spec.variables = pairs["variables"].map { variableMap($0, context: "variables of '\(name)'") } ?? []
        spec.requireCleanTree = pairs["require_clean_tree"].flatMap { bool($0, "require_clean_tree") } ?? (spec.promoteFrom != nil)
        spec.freezes = pairs["freeze"].map(freezeList) ?? []
        spec.rehearseRollback = pairs["rehearse_rollback"].flatMap { bool($0, "rehearse_rollback") } ?? false
        return spec
    }

    func target(_ node: Node) -> TargetSpec? {
        guard let pairs = mapping(node, "target", hint: "e.g. `target: { docker: { proxy: nginx, listen: 127.0.0.1:8081 } }`") else {
            return nil
        }
        let kinds = ["docker", "kubernetes"]
        checkKeys(pairs, allowed: kinds, in: "target")
        let present = pairs.entries.filter { kinds.contains($0.key) }
        guard present.count == 1 else {
            if present.count > 1 {
                error(node, "a target is either docker or kubernetes, not both")
            } else if pairs.entries.isEmpty {
                error(node, "the target is empty", hint: "name a kind: docker or kubernetes")
            }
            return nil
        }
        let (_, kind, body) = present[0]
        let settings = isNull(body) ? Mapping(entries: []) : mapping(body, "the \(kind) target")
        guard let settings else { return nil }
        switch kind {
        case "docker":
            checkKeys(settings, allowed: ["proxy", "listen", "port", "ready_timeout"], in: "the docker target")
            var spec = DockerTargetSpec(listen: "")
            if let proxyNode = settings["proxy"], let proxy = string(proxyNode, "proxy") {
                if proxy != "nginx" {
                    error(proxyNode, "proxy '\(proxy)' is not supported", hint: "the docker target runs nginx in front: `proxy: nginx`")
                }
                spec.proxy = proxy
            }
            if let listenNode = required(
                settings, "listen", in: body, context: "the docker target", hint: "where users reach it, e.g. `listen: 127.0.0.1:8081`"),
                let listen = string(listenNode, "listen")
            {
                let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
                if parts.count != 2 || parts[0].isEmpty || Int(parts[1]).map({ !(1...65535).contains($0) }) ?? true {
                    error(listenNode, "listen '\(listen)' is not HOST:PORT", hint: "e.g. `listen: 127.0.0.1:8081`")
                }
                spec.listen = listen
            }
            if let portNode = settings["port"], let port = integer(portNode, "port") {
                if !(1...65535).contains(port) { error(portNode, "port \(port) is not a TCP port (1 to 65535)") }
                spec.port = port
            }
            if let readyNode = settings["ready_timeout"], let ready = duration(readyNode, "ready_timeout") { spec.readyTimeout = ready }
            return .docker(spec)
        default:
            checkKeys(settings, allowed: ["context", "namespace", "manifests"], in: "the kubernetes target")
            return .kubernetes(
                context: settings["context"].flatMap { string($0, "context") },
                namespace: settings["namespace"].flatMap { string($0, "namespace") },
                manifests: settings["manifests"].flatMap { string($0, "manifests") })
        }
    }

    func strategy(_ node: Node) -> StrategySpec? {
        let names = ["rolling", "blue_green", "canary"]
        if case .scalar(let scalar) = node {
            switch scalar.string {
            case "rolling": return .rolling
            case "blue_green": return .blueGreen(previewGates: [], bake: nil)
            default:
                let guess = suggestion(for: scalar.string.replacingOccurrences(of: "-", with: "_"), among: names)
                error(
                    node, "unknown strategy '\(scalar.string)'",
                    hint: guess.map { "did you mean '\($0)'?" } ?? "use one of: \(names.joined(separator: ", "))")
                return nil
            }
        }
        guard let pairs = mapping(node, "strategy") else { return nil }
        checkKeys(pairs, allowed: names, in: "strategy")
        guard let (keyNode, kind, body) = pairs.entries.first(where: { names.contains($0.key) }) else { return nil }
        if pairs.entries.count > 1 { error(keyNode, "a strategy is one of rolling, blue_green or canary, not several") }
        let settings = isNull(body) ? Mapping(entries: []) : mapping(body, kind)
        guard let settings else { return nil }
        switch kind {
        case "rolling":
            checkKeys(settings, allowed: [], in: "rolling")
            return .rolling
        case "blue_green":
            checkKeys(settings, allowed: ["preview_gates", "bake"], in: "blue_green")
            return .blueGreen(
                previewGates: settings["preview_gates"].map { stringList($0, "preview_gates") } ?? [],
                bake: settings["bake"].flatMap { duration($0, "bake") })
        default:
            checkKeys(settings, allowed: ["steps", "pause", "analysis"], in: "canary")
            var steps: [Int] = []
            if let stepsNode = settings["steps"], let items = sequence(stepsNode, "canary steps", hint: "e.g. `steps: [5, 25, 50, 100]`") {
                for item in items {
                    guard let weight = integer(item, "a canary step") else { continue }
                    if weight < 1 || weight > 100 {
                        error(item, "canary step \(weight) is not a percentage from 1 to 100")
                    } else if let last = steps.last, weight <= last {
                        error(item, "canary steps must increase: \(weight) comes after \(last)")
                    }
                    steps.append(weight)
                }
                if let last = steps.last, last != 100 {
                    error(
                        stepsNode, "canary steps end at \(last)%, so the release would never take all traffic",
                        hint: "end the list with 100")
                }
            } else if settings["steps"] == nil {
                steps = [5, 25, 50, 100]
            }
            return .canary(
                steps: steps, pause: settings["pause"].flatMap { duration($0, "pause") },
                analysis: settings["analysis"].map { stringList($0, "analysis") } ?? [])
        }
    }

    func approval(_ node: Node) -> ApprovalSpec? {
        guard let pairs = mapping(node, "approval", hint: "e.g. `approval: { approvers: 1, distinct_from_trigger: true, timeout: 4h }`")
        else { return nil }
        checkKeys(pairs, allowed: ["approvers", "allowed", "distinct_from_trigger", "timeout"], in: "approval")
        let count = pairs["approvers"].flatMap { integer($0, "approvers") } ?? 1
        if let countNode = pairs["approvers"], count < 1 { error(countNode, "approvers must be at least 1") }
        return ApprovalSpec(
            approvers: count,
            allowed: pairs["allowed"].map { stringList($0, "allowed") } ?? [],
            distinctFromTrigger: pairs["distinct_from_trigger"].flatMap { bool($0, "distinct_from_trigger") } ?? false,
            timeout: pairs["timeout"].flatMap { duration($0, "timeout") })
    }

    func gateMap(_ node: Node) -> [GateSpec] {
        guard let pairs = mapping(node, "gates") else { return [] }
        var result: [GateSpec] = []
        for (keyNode, name, value) in pairs.entries {
            if !isValidIdentifier(name) {
                error(keyNode, "gate name '\(name)' is not valid", hint: "use letters, digits, '-', '_' and '.'")
            }
            guard let settings = mapping(value, "gate '\(name)'") else { continue }
            let kinds = ["http", "prometheus", "command"]
            checkKeys(
                settings, allowed: kinds + ["below", "above", "every", "times", "failure_limit", "initial_delay"],
                in: "gate '\(name)'")
            let present = settings.entries.filter { kinds.contains($0.key) }
            guard present.count == 1 else {
                error(
                    keyNode, present.isEmpty ? "gate '\(name)' checks nothing" : "gate '\(name)' has more than one check",
                    hint: "give it exactly one of: http, prometheus, command")
                continue
            }
            guard let check = gateCheck(kind: present[0].key, node: present[0].value, gate: name) else { continue }
            result.append(
                GateSpec(
                    name: name, location: location(keyNode), check: check,
                    below: settings["below"].flatMap { number($0, "below") },
                    above: settings["above"].flatMap { number($0, "above") },
                    every: settings["every"].flatMap { duration($0, "every") },
                    times: settings["times"].flatMap { positive($0, "times") },
                    failureLimit: settings["failure_limit"].flatMap { integer($0, "failure_limit") },
                    initialDelay: settings["initial_delay"].flatMap { duration($0, "initial_delay") }))
        }
        return result
    }

    func gateCheck(kind: String, node: Node, gate: String) -> GateSpec.Check? {
        switch kind {
        case "command":
            let argv = stringList(node, "command", hint: "an argv array, e.g. `command: [Hooks/check, \"${TARGET_URL}\"]`")
            if argv.isEmpty { error(node, "gate '\(gate)': command is empty"); return nil }
            checkReferences(argv: argv, node: node, allowed: nil)
            return .command(argv)
        case "http":
            guard let pairs = mapping(node, "http", hint: "e.g. `http: { url: \"${TARGET_URL}/health\", status: 200 }`") else { return nil }
            checkKeys(pairs, allowed: ["url", "status", "body", "within"], in: "http")
            guard let url = required(pairs, "url", in: node, context: "http", hint: "add `url:`").flatMap({ string($0, "url") }) else {
                return nil
            }
            return .http(
                url: url, status: pairs["status"].flatMap { integer($0, "status") },
                body: pairs["body"].flatMap { string($0, "body") },
                within: pairs["within"].flatMap { duration($0, "within") })
        default:
            guard let pairs = mapping(node, "prometheus") else { return nil }
            checkKeys(pairs, allowed: ["url", "query"], in: "prometheus")
            let url = required(pairs, "url", in: node, context: "prometheus", hint: "add `url:`").flatMap { string($0, "url") }
            let query = required(pairs, "query", in: node, context: "prometheus", hint: "add `query:`").flatMap { string($0, "query") }
            guard let url, let query else { return nil }
            return .prometheus(url: url, query: query)
        }
    }

    func hookMap(_ node: Node) -> [HookSpec] {
        guard let pairs = mapping(node, "hooks") else { return [] }
        var hooks: [HookSpec] = []
        let names = HookEvent.allCases.map(\.rawValue)
        for (keyNode, key, value) in pairs.entries {
            guard let event = HookEvent(rawValue: key) else {
                let guess = suggestion(for: key.replacingOccurrences(of: "_", with: "-"), among: names)
                error(
                    keyNode, "unknown hook '\(key)'",
                    hint: guess.map { "did you mean '\($0)'?" } ?? "hooks are: \(names.joined(separator: ", "))")
                continue
            }
            var command: [String]
            var timeout = Duration.seconds(300)
            if case .scalar = value {
                command = string(value, "hook \(key)").map { [$0] } ?? []
            } else if case .mapping = value, let settings = mapping(value, "hook \(key)") {
                checkKeys(settings, allowed: ["run", "timeout"], in: "hook \(key)")
                command =
                    settings["run"].map { node in
                        if case .scalar = node { return string(node, "run").map { [$0] } ?? [] }
                        return stringList(node, "run")
                    } ?? []
                timeout = settings["timeout"].flatMap { duration($0, "timeout") } ?? timeout
            } else {
                command = stringList(value, "hook \(key)")
            }
            guard !command.isEmpty, !command[0].isEmpty else {
                error(value, "hook '\(key)' names no executable", hint: "e.g. `\(key): Hooks/\(key)`")
                continue
            }
            hooks.append(HookSpec(event: event, location: location(keyNode), command: command, timeout: timeout))
        }
        return hooks
    }

    // MARK: Stages

    static let stageActions = ["run", "sh", "steps", "deploy", "approval", "build", "push"]
    static let stepOptions = ["timeout", "retries", "backoff", "continue_on_error", "env", "workdir"]

    func stageList(_ node: Node) -> [Stage] {
        guard let items = sequence(node, "stages", hint: "stages is a list: `- { name: test, run: [swift, test] }`") else { return [] }
        if items.isEmpty {
            error(node, "the pipeline has no stages", hint: "add at least one, e.g. `- { name: test, run: [swift, test] }`")
        }
        var stages: [Stage] = []
        var seen: [String: SourceLocation] = [:]
        for item in items {
            guard let stage = stage(item) else { continue }
            if let first = seen[stage.name] {
                error(
                    item, "stage name '\(stage.name)' is used twice (first at line \(first.line))",
                    hint: "stage names identify records and `deploy logs --step`; make each unique")
                continue
            }
            seen[stage.name] = stage.location
            stages.append(stage)
        }
        return stages
    }

    func stage(_ node: Node) -> Stage? {
        guard let pairs = mapping(node, "a stage", hint: "each stage is a mapping: `- { name: test, run: [swift, test] }`") else {
            return nil
        }
        checkKeys(pairs, allowed: ["name"] + Self.stageActions + Self.stepOptions, in: "a stage")
        let name = required(pairs, "name", in: node, context: "a stage", hint: "add `name:`").flatMap { string($0, "name") }
        if let name, let nameNode = pairs["name"], !isValidIdentifier(name) {
            error(nameNode, "stage name '\(name)' is not valid", hint: "use letters, digits, '-', '_' and '.'")
        }
        let actions = pairs.entries.filter { Self.stageActions.contains($0.key) }
        guard let name else { return nil }
        guard actions.count == 1 else {
            if actions.isEmpty {
                error(
                    node, "stage '\(name)' does nothing",
                    hint: "give it one of: \(Self.stageActions.joined(separator: ", "))")
            } else {
                error(
                    actions[1].keyNode, "stage '\(name)' has both \(actions[0].key) and \(actions[1].key)",
                    hint: "a stage does one thing; use `steps:` for several commands")
            }
            return nil
        }
        let (_, kind, body) = actions[0]
        let here = location(node)
        let stepOptionKeys = pairs.entries.filter { Self.stepOptions.contains($0.key) }
        if kind != "run" && kind != "sh", let misplaced = stepOptionKeys.first {
            error(
                misplaced.keyNode, "'\(misplaced.key)' applies to a run or sh stage, not to a \(kind) stage",
                hint: kind == "steps" ? "put it on the step inside `steps:`" : nil)
        }
        switch kind {
        case "run", "sh":
            guard let step = step(name: name, node: node, pairs: pairs) else { return nil }
            return Stage(name: name, location: here, kind: .steps([step]))
        case "steps":
            guard let items = sequence(body, "steps", hint: "a list of `{ name: …, run: [...] }`") else { return nil }
            if items.isEmpty { error(body, "stage '\(name)' has an empty list of steps"); return nil }
            var steps: [Step] = []
            for item in items {
                guard let stepPairs = mapping(item, "a step") else { continue }
                checkKeys(stepPairs, allowed: ["name", "run", "sh"] + Self.stepOptions, in: "a step")
                guard
                    let stepName = required(stepPairs, "name", in: item, context: "a step", hint: "add `name:`").flatMap({
                        string($0, "name")
                    })
                else { continue }
                if steps.contains(where: { $0.name == stepName }) {
                    error(stepPairs["name"] ?? item, "step name '\(stepName)' is used twice in stage '\(name)'")
                    continue
                }
                if let step = step(name: stepName, node: item, pairs: stepPairs) { steps.append(step) }
            }
            return Stage(name: name, location: here, kind: .steps(steps))
        case "deploy":
            guard let environment = string(body, "deploy", hint: "name an environment, e.g. `deploy: staging`") else { return nil }
            return Stage(name: name, location: here, kind: .deploy(environment: environment))
        case "approval":
            guard let environment = string(body, "approval", hint: "name the environment it guards, e.g. `approval: production`") else {
                return nil
            }
            return Stage(name: name, location: here, kind: .approval(environment: environment))
        case "build":
            guard let settings = isNull(body) ? Mapping(entries: []) : mapping(body, "build") else { return nil }
            checkKeys(settings, allowed: ["context", "file", "args", "no_cache"], in: "build")
            return Stage(
                name: name, location: here,
                kind: .build(
                    context: settings["context"].flatMap { string($0, "context") } ?? ".",
                    file: settings["file"].flatMap { string($0, "file") },
                    arguments: settings["args"].map(buildArguments) ?? [],
                    noCache: settings["no_cache"].flatMap { bool($0, "no_cache") } ?? false))
        default:
            if !isNull(body), let settings = mapping(body, "push") { checkKeys(settings, allowed: [], in: "push") }
            return Stage(name: name, location: here, kind: .push)
        }
    }

    func step(name: String, node: Node, pairs: Mapping) -> Step? {
        let action: Step.Action
        if let runNode = pairs["run"], let shNode = pairs["sh"] {
            _ = runNode
            error(shNode, "step '\(name)' has both run and sh", hint: "keep one")
            return nil
        } else if let runNode = pairs["run"] {
            if case .scalar(let scalar) = runNode {
                error(
                    runNode, "run takes an argv array, not a string",
                    hint: "write `run: [\(scalar.string.split(separator: " ").joined(separator: ", "))]`, or use `sh:` for a shell script")
                return nil
            }
            let argv = stringList(runNode, "run")
            guard !argv.isEmpty else {
                error(runNode, "run is empty", hint: "give the command and its arguments, e.g. `run: [swift, test]`")
                return nil
            }
            if argv[0].isEmpty { error(runNode, "run names no executable"); return nil }
            action = .run(argv)
        } else if let shNode = pairs["sh"] {
            guard let script = string(shNode, "sh", hint: "a script as a string; use `|` for several lines") else { return nil }
            if script.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                error(shNode, "sh script is empty")
                return nil
            }
            action = .sh(script)
        } else {
            error(node, "step '\(name)' does nothing", hint: "give it `run: [...]` or `sh: ...`")
            return nil
        }
        let retries = pairs["retries"].flatMap { integer($0, "retries") } ?? 0
        if let retriesNode = pairs["retries"], retries < 0 || retries > 20 {
            error(retriesNode, "retries must be from 0 to 20, not \(retries)")
        }
        let timeout = pairs["timeout"].flatMap { duration($0, "timeout") }
        if let timeoutNode = pairs["timeout"], let timeout, timeout <= .zero {
            error(timeoutNode, "timeout must be longer than zero")
        }
        var environment: [(String, String)] = []
        if let envNode = pairs["env"] {
            environment = variableMap(envNode, context: "env")
        }
        return Step(
            name: name, location: location(node), action: action, timeout: timeout, retries: max(retries, 0),
            backoff: pairs["backoff"].flatMap { duration($0, "backoff") } ?? Step.defaultBackoff,
            continueOnError: pairs["continue_on_error"].flatMap { bool($0, "continue_on_error") } ?? false,
            environment: environment,
            workingDirectory: pairs["workdir"].flatMap { string($0, "workdir") })
    }

    // MARK: Cross-references

    func crossCheck(
        stages: [Stage], environments: [EnvironmentSpec], gates: [GateSpec],
        variables: [(name: String, value: String)], secrets: [(name: String, node: Node)],
        stagesNode: Node?, root: Node
    ) {
        let environmentNames = environments.map(\.name)
        let gateNames = gates.map(\.name)
        var deployed: [String: String] = [:]
        var stageNodes: [Node] = []
        if let stagesNode, case .sequence(let sequence) = stagesNode { stageNodes = Array(sequence) }

        func node(of stage: Stage, key: String) -> Node? {
            stageNodes.first { location($0) == stage.location }.flatMap { n -> Node? in
                guard case .mapping(let m) = n else { return nil }
                return Mapping(m)[key]
            }
        }

        func unknownEnvironment(_ name: String, at n: Node, what: String) {
            let guess = suggestion(for: name, among: environmentNames)
            let hint =
                guess.map { "did you mean '\($0)'?" }
                ?? (environmentNames.isEmpty
                    ? "declare it under `environments:`"
                    : "declared environments: \(environmentNames.joined(separator: ", "))")
            error(n, "\(what) names environment '\(name)', which is not declared", hint: hint)
        }

        for stage in stages {
            switch stage.kind {
            case .deploy(let environment):
                if !environmentNames.contains(environment) {
                    unknownEnvironment(environment, at: node(of: stage, key: "deploy") ?? root, what: "stage '\(stage.name)'")
                } else if let other = deployed[environment] {
                    error(
                        node(of: stage, key: "deploy") ?? root,
                        "stages '\(other)' and '\(stage.name)' both deploy to '\(environment)'",
                        hint: "an environment is deployed by one stage")
                } else {
                    deployed[environment] = stage.name
                }
            case .approval(let environment):
                if !environmentNames.contains(environment) {
                    unknownEnvironment(environment, at: node(of: stage, key: "approval") ?? root, what: "stage '\(stage.name)'")
                }
            case .steps, .build, .push, .rollback:
                break
            }
        }

        // Gates named by environments and strategies.
        if case .mapping(let rootMap) = root, let envs = Mapping(rootMap)["environments"], case .mapping(let envMap) = envs {
            for (keyNode, name, value) in Mapping(envMap).entries {
                guard let spec = environments.first(where: { $0.name == name }), case .mapping(let rawBody) = value else { continue }
                let body = Mapping(rawBody)
                var referenced: [(String, Node)] = []
                if let g = body["gates"], case .sequence(let items) = g {
                    referenced += items.compactMap { item in item.string.map { ($0, item) } }
                }
                if let s = body["strategy"], case .mapping(let sm) = s {
                    for (_, _, settings) in Mapping(sm).entries {
                        guard case .mapping(let inner) = settings else { continue }
                        for key in ["preview_gates", "analysis"] {
                            if let list = Mapping(inner)[key], case .sequence(let items) = list {
                                referenced += items.compactMap { item in item.string.map { ($0, item) } }
                            }
                        }
                    }
                }
                for (gate, gateNode) in referenced where !gateNames.contains(gate) {
                    let guess = suggestion(for: gate, among: gateNames)
                    error(
                        gateNode, "environment '\(name)' uses gate '\(gate)', which is not declared",
                        hint: guess.map { "did you mean '\($0)'?" } ?? "declare it under `gates:`")
                }
                if let from = spec.promoteFrom, let fromNode = body["promote_from"] {
                    if from == name {
                        error(fromNode, "environment '\(name)' cannot promote from itself")
                    } else if !environmentNames.contains(from) {
                        unknownEnvironment(from, at: fromNode, what: "promote_from of '\(name)'")
                    }
                }
                if spec.approval != nil,
                    !stages.contains(where: {
                        if case .approval(name) = $0.kind { true } else { false }
                    })
                {
                    warning(
                        keyNode, "environment '\(name)' sets approval: but no stage is `approval: \(name)`",
                        hint: "add `- { name: sign-off, approval: \(name) }` before its deploy stage, or the settings are unused")
                }
            }
        }

        // ${NAME} in argv elements: every name must be known, and secrets should not go into argv.
        let secretNames = Set(secrets.map(\.name))
        var known = Set(Variables.builtinNames).union(variables.map(\.name)).union(secretNames)
        for environment in environments { known.formUnion(environment.variables.map(\.name)) }
        for stageNode in stageNodes {
            guard case .mapping(let m) = stageNode else { continue }
            let stageMap = Mapping(m)
            var runNodes: [Node] = []
            if let run = stageMap["run"] { runNodes.append(run) }
            if let steps = stageMap["steps"], case .sequence(let items) = steps {
                for item in items { if case .mapping(let sm) = item, let run = Mapping(sm)["run"] { runNodes.append(run) } }
            }
            for run in runNodes {
                guard case .sequence(let elements) = run else { continue }
                for element in elements {
                    guard case .scalar(let scalar) = element else { continue }
                    checkReference(in: scalar, node: element, known: known, secrets: secretNames)
                }
            }
        }
    }

    func checkReferences(argv: [String], node: Node, allowed: Set<String>?) {
        guard case .sequence(let elements) = node else { return }
        let known = allowed ?? Set(Variables.builtinNames + Variables.gateOnly)
        for element in elements {
            if case .scalar(let scalar) = element { checkReference(in: scalar, node: element, known: known, secrets: []) }
        }
    }

    func checkReference(in scalar: Node.Scalar, node: Node, known: Set<String>, secrets: Set<String>) {
        let text = scalar.string
        let quoteShift = scalar.style == .plain || scalar.style == .any ? 0 : 1
        func at(_ offset: Int) -> SourceLocation {
            var where_ = location(node)
            if !text.prefix(offset).contains("\n") { where_.column += offset + quoteShift }
            return where_
        }
        switch Variables.references(in: text) {
        case .failure(.unterminated(let offset)):
            diagnostics.append(
                Diagnostic(
                    at: at(offset), "'${' is not closed in '\(text)'",
                    hint: "write ${NAME}, or $${ for a literal '${'"))
        case .failure(.badName(let name, let offset)):
            diagnostics.append(
                Diagnostic(
                    at: at(offset), "'${\(name)}' is not a variable name",
                    hint: "names use letters, digits and '_'; write $${ for a literal '${'"))
        case .success(let references):
            for reference in references {
                if secrets.contains(reference.name) {
                    diagnostics.append(
                        Diagnostic(
                            .warning, at: at(reference.offset),
                            "secret ${\(reference.name)} is passed on a command line, where other users of the machine can read it (ps, /proc)",
                            hint: "let the command read \(reference.name) from its environment instead: steps inherit it"))
                } else if !known.contains(reference.name) {
                    let guess = suggestion(for: reference.name, among: known)
                    diagnostics.append(
                        Diagnostic(
                            at: at(reference.offset), "unknown variable ${\(reference.name)}",
                            hint: guess.map { "did you mean ${\($0)}?" }
                                ?? "declare it under `variables:`; built-ins: \(Variables.builtins.map(\.name).joined(separator: ", "))"))
                }
            }
        }
    }

    // MARK: Typed values

    struct Mapping {
        var entries: [(keyNode: Node, key: String, value: Node)]

        init(entries: [(keyNode: Node, key: String, value: Node)]) { self.entries = entries }

        init(_ mapping: Node.Mapping) {
            entries = mapping.map { (keyNode: $0.key, key: $0.key.string ?? "", value: $0.value) }
        }

        subscript(key: String) -> Node? { entries.first { $0.key == key }?.value }
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            if scalar.style == .plain, Int(scalar.string) != nil || Double(scalar.string) != nil { return "the number \(scalar.string)" }
            return "the string '\(scalar.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func mapping(_ node: Node, _ what: String, hint: String? = nil) -> Mapping? {
        guard case .mapping(let mapping) = node else {
            error(node, "\(what) must be a mapping of keys to values, found \(describe(node))", hint: hint)
            return nil
        }
        let result = Mapping(mapping)
        for entry in result.entries where entry.keyNode.string == nil || { if case .scalar = entry.keyNode { false } else { true } }() {
            error(entry.keyNode, "a key in \(what) must be a plain word")
        }
        return result
    }

    func sequence(_ node: Node, _ what: String, hint: String? = nil) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error(node, "\(what) must be a list, found \(describe(node))", hint: hint)
            return nil
        }
        return Array(sequence)
    }

    func string(_ node: Node, _ what: String, hint: String? = nil) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            error(node, "\(what) must be a string, found \(describe(node))", hint: hint)
            return nil
        }
        return scalar.string
    }

    func stringList(_ node: Node, _ what: String, hint: String? = nil) -> [String] {
        guard let items = sequence(node, what, hint: hint) else { return [] }
        return items.compactMap { string($0, "each item of \(what)") }
    }

    func integer(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            error(node, "\(what) must be a whole number, found \(describe(node))")
            return nil
        }
        return value
    }

    func positive(_ node: Node, _ what: String) -> Int? {
        guard let value = integer(node, what) else { return nil }
        if value < 1 { error(node, "\(what) must be at least 1, not \(value)"); return nil }
        return value
    }

    func number(_ node: Node, _ what: String) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string) else {
            error(node, "\(what) must be a number, found \(describe(node))")
            return nil
        }
        return value
    }

    func bool(_ node: Node, _ what: String) -> Bool? {
        guard case .scalar(let scalar) = node else {
            error(node, "\(what) must be true or false, found \(describe(node))")
            return nil
        }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(node, "\(what) must be true or false, found \(describe(node))")
            return nil
        }
    }

    func duration(_ node: Node, _ what: String) -> Duration? {
        guard case .scalar(let scalar) = node, let value = DurationParser.parse(scalar.string) else {
            error(node, "\(what) must be a duration such as 30s, 5m, 1h30m or 500ms, found \(describe(node))")
            return nil
        }
        return value
    }

    func size(_ node: Node, _ what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = SizeParser.parse(scalar.string), value > 0 else {
            error(node, "\(what) must be a size such as 512KiB, 1MiB or 65536, found \(describe(node))")
            return nil
        }
        return value
    }

    func required(_ pairs: Mapping, _ key: String, in node: Node, context: String, hint: String) -> Node? {
        guard let value = pairs[key] else {
            error(node, "\(context) has no '\(key)'", hint: hint)
            return nil
        }
        if isNull(value) {
            error(value, "'\(key)' is empty", hint: hint)
            return nil
        }
        return value
    }

    func checkKeys(_ pairs: Mapping, allowed: [String], in context: String) {
        for entry in pairs.entries where !allowed.contains(entry.key) {
            let guess = suggestion(for: entry.key, among: allowed)
            let hint =
                guess.map { "did you mean '\($0)'?" }
                ?? (allowed.isEmpty ? "\(context) takes no settings" : "allowed here: \(allowed.joined(separator: ", "))")
            error(entry.keyNode, "unknown key '\(entry.key)' in \(context)", hint: hint)
        }
    }

    func isValidIdentifier(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 63
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
            }
            && name.first != "-" && name.first != "."
    }
}
