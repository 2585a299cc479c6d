import Foundation
import SlipwayCore
import Yams

// The checks across sections, once every section is read: references between stages, environments,
// gates and variables.
extension PipelineReader {
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

        // Each stage's node by where it was written: one pass, so that validation stays linear.
        var nodeAt: [SourceLocation: Node] = [:]
        for stageNode in stageNodes where nodeAt[location(stageNode)] == nil { nodeAt[location(stageNode)] = stageNode }
        func node(of stage: Stage, key: String) -> Node? {
            nodeAt[stage.location].flatMap { n -> Node? in
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
                } else if let deploy = deployed[environment] {
                    error(
                        node(of: stage, key: "approval") ?? root,
                        "stage '\(stage.name)' approves \(environment) after stage '\(deploy)' has deployed it",
                        hint: "move it before '\(deploy)': an approval comes before the deploy it allows")
                }
            case .checklist(let spec):
                let at = node(of: stage, key: "checklist") ?? root
                if !environmentNames.contains(spec.environment) {
                    unknownEnvironment(spec.environment, at: at, what: "the checklist of stage '\(stage.name)'")
                } else if let deploy = deployed[spec.environment] {
                    error(
                        at, "stage '\(stage.name)' checks \(spec.environment)'s readiness after stage '\(deploy)' has deployed it",
                        hint: "move it before '\(deploy)': a checklist comes before the deploy it allows")
                }
                checkChecklist(spec, stage: stage.name, at: at, environments: environments, gateNames: gateNames)
            case .steps, .build, .push, .rollback:
                break
            }
        }

        // Gates named by environments and strategies.
        var promoteNodes: [String: Node] = [:]
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
                if spec.promoteFrom != nil, let fromNode = body["promote_from"] { promoteNodes[name] = fromNode }
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

        // promote_from must not go round in a circle: each release would wait for the other forever.
        let promotions = Dictionary(
            environments.compactMap { env in env.promoteFrom.map { (env.name, $0) } }, uniquingKeysWith: { a, _ in a })
        var reported = Set<String>()
        for environment in environments where !reported.contains(environment.name) {
            var chain = [environment.name]
            var current = environment.name
            while let next = promotions[current], next != current, environmentNames.contains(next) {
                if let start = chain.firstIndex(of: next) {
                    let cycle = Array(chain[start...]) + [next]
                    if cycle.allSatisfy({ !reported.contains($0) }), let at = promoteNodes[cycle[0]] {
                        error(
                            at, "promote_from goes round in a circle: \(cycle.joined(separator: " ← "))",
                            hint: "one environment of the chain must take releases without promote_from (usually the first, e.g. staging)")
                    }
                    reported.formUnion(cycle)
                    break
                }
                chain.append(next)
                current = next
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
            // ${NAME} in a step's env: values, known the same way (an environment variable is no secret leak).
            var envNodes: [Node] = []
            if let env = stageMap["env"] { envNodes.append(env) }
            if let steps = stageMap["steps"], case .sequence(let items) = steps {
                for item in items { if case .mapping(let sm) = item, let env = Mapping(sm)["env"] { envNodes.append(env) } }
            }
            for env in envNodes {
                guard case .mapping(let pairs) = env else { continue }
                for (_, _, value) in Mapping(pairs).entries {
                    guard case .scalar(let scalar) = value else { continue }
                    checkReference(in: scalar, node: value, known: known, secrets: [])
                }
            }
        }
    }

    /// A checklist's references: gates declared, manifests to read, environments to look at.
    func checkChecklist(_ spec: ChecklistSpec, stage: String, at: Node, environments: [EnvironmentSpec], gateNames: [String]) {
        let environment = environments.first { $0.name == spec.environment }
        var hasManifests = spec.manifests != nil
        if case .kubernetes = environment?.target { hasManifests = true }
        for (_, item) in spec.items {
            guard case .check(let check) = item.requirement else { continue }
            func refuse(_ message: String, hint: String) {
                diagnostics.append(Diagnostic(at: item.location, message, hint: hint))
            }
            switch check {
            case .gate(let gate) where !gateNames.contains(gate):
                refuse(
                    "item '\(item.title)' checks gate '\(gate)', which is not declared",
                    hint: suggestion(for: gate, among: gateNames).map { "did you mean '\($0)'?" } ?? "declare it under `gates:`")
            case .rollbackRehearsal(let name?) where !environments.contains(where: { $0.name == name }):
                refuse(
                    "item '\(item.title)' looks at the rehearsals of environment '\(name)', which is not declared",
                    hint: "name a declared environment")
            case let check where check.readsManifests && !hasManifests:
                refuse(
                    "item '\(item.title)' (\(check.name)) reads Kubernetes manifests, but the checklist has none",
                    hint:
                        "give the checklist `manifests: Manifests/app/overlays/production`, or check an environment with a kubernetes target"
                )
            default:
                break
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
}
