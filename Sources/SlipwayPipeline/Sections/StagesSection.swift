import Foundation
import SlipwayCore
import Yams

// `stages:` and their steps.
extension PipelineReader {
    // MARK: Stages

    static let stageActions = ["run", "sh", "steps", "deploy", "approval", "checklist", "build", "push"]
    static let stepOptions = ["timeout", "retries", "backoff", "continue_on_error", "env", "workdir", "keep_background"]

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
            error(nameNode, "stage name \(shown(name)) is not valid" + tooLong(name), hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
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
                if let nameNode = stepPairs["name"], !isValidStepName(stepName) {
                    error(
                        nameNode,
                        "step name \(stepName.isEmpty ? "is empty" : "'\(stepName.prefix(40).debugDescription.dropFirst().dropLast())\(stepName.count > 40 ? "…" : "")' is not valid")",
                        hint: "a step name is 1 to 100 characters on one line, e.g. `name: unit`")
                    continue
                }
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
        case "checklist":
            guard let spec = checklist(body, stage: name) else { return nil }
            return Stage(name: name, location: here, kind: .checklist(spec))
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

    /// One line of 1 to 100 printable characters: it is shown in `stage/step` labels and records.
    func isValidStepName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && !name.unicodeScalars.contains { $0.properties.generalCategory == .control }
            && name.trimmingCharacters(in: .whitespaces) == name
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
            workingDirectory: pairs["workdir"].flatMap { string($0, "workdir") },
            keepBackground: pairs["keep_background"].flatMap { bool($0, "keep_background") } ?? false)
    }
}
