import Foundation
import SlipwayCore
import Yams

/// Reads a pipeline file and checks all of it, collecting every problem rather than stopping at
/// the first, so that one `deploy validate` shows a user everything to fix.
public enum PipelineLoader {
    /// Words `deploy` uses as subcommands; an environment cannot be called one of them. The
    /// command line passes its own command table (`reservedNames:`), so a new command is never
    /// forgotten; this list is what the library knows by itself.
    public static let reservedEnvironmentNames: Set<String> = [
        "run", "validate", "plan", "history", "show", "logs", "rollback", "abort", "unpin", "status", "approve",
        "reject", "lock", "unlock", "changelog", "checklist", "audit", "teardown", "help", "version",
    ]

    /// Loads and validates `path`; throws ``PipelineError`` listing every error (warnings are returned).
    public static func load(path: String, reservedNames: Set<String> = reservedEnvironmentNames) throws(PipelineError) -> (
        pipeline: Pipeline, warnings: [Diagnostic]
    ) {
        let start = SourceLocation(file: path, line: 1, column: 1)
        func refuse(_ message: String, at location: SourceLocation? = nil, hint: String) -> PipelineError {
            PipelineError(file: path, diagnostics: [Diagnostic(at: location ?? start, message, hint: hint)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw refuse("no such file", hint: "pass the pipeline with --pipeline FILE (default: Pipelines/<app>.yml or slipway.yml)")
        }
        if isDirectory.boolValue {
            throw refuse("this is a directory, not a pipeline file", hint: "name the .yml file inside it, e.g. --pipeline \(path)/app.yml")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw refuse(
                "cannot be read: \(FileManager.default.isReadableFile(atPath: path) ? "reading it failed" : "permission denied")",
                hint: "check the file's permissions (`ls -l \(path)`)")
        }
        switch Self.text(of: data) {
        case .success(let text):
            return try parse(yaml: text, file: path, reservedNames: reservedNames)
        case .failure(let problem):
            throw refuse(
                problem.message, at: SourceLocation(file: path, line: problem.line, column: problem.column),
                hint: "save the file as UTF-8 text without NUL bytes")
        }
    }

    /// Where a file stops being UTF-8 text.
    struct NotText: Error {
        var line: Int
        var column: Int
        var message: String
    }

    /// The file's text, or where (line and column, counted in characters) it stops being text.
    static func text(of data: Data) -> Result<String, NotText> {
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var line = 1
        var column = 1
        var offset = 0
        var text = ""
        text.reserveCapacity(data.count)
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\0" {
                    return .failure(NotText(line: line, column: column, message: "the file has a NUL byte (at byte \(offset))"))
                }
                text.unicodeScalars.append(scalar)
                offset += UTF8.width(scalar)
                if scalar == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            case .emptyInput:
                return .success(text)
            case .error:
                let byte = offset < data.count ? data[data.startIndex + offset] : 0
                return .failure(
                    NotText(
                        line: line, column: column,
                        message:
                            "the file is not UTF-8 text: byte 0x\(String(byte, radix: 16, uppercase: true)) (at byte \(offset)) starts no character"
                    ))
            }
        }
    }

    /// Validates pipeline text; `file` is the name used in locations.
    public static func parse(yaml: String, file: String, reservedNames: Set<String> = reservedEnvironmentNames) throws(PipelineError) -> (
        pipeline: Pipeline, warnings: [Diagnostic]
    ) {
        let reader = PipelineReader(file: file, reservedNames: reservedNames)
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

/// Walks the YAML node tree, building the model and recording diagnostics as it goes. Each
/// top-level key is read in its own file under `Sections/`; typed values in `YAML/`.
final class PipelineReader {
    let file: String
    var diagnostics: [Diagnostic] = []
    /// `roles:`, read before the stages whose sign-offs name them.
    var roles: [String: [String]] = [:]
    /// The pipeline's `prometheus: { url: … }`, read before the gates that default to it.
    var prometheusURL: String?

    /// Names an environment may not take (the command line's commands).
    let reservedNames: Set<String>

    init(file: String, reservedNames: Set<String> = PipelineLoader.reservedEnvironmentNames) {
        self.file = file
        self.reservedNames = reservedNames
    }

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
        // An alias used as a mapping key makes YAML libraries compare whole expanded trees (an
        // "alias bomb" of a few hundred bytes then runs for minutes); a pipeline's keys are plain
        // words, so such a key is refused before the document is composed.
        if let key = Self.aliasKey(in: yaml) {
            diagnostics.append(
                Diagnostic(
                    at: SourceLocation(file: file, line: key.line, column: key.column), "a key may not be an alias (\(key.alias))",
                    hint: "write the key as a plain word; aliases are for values, e.g. `<<: *defaults`"))
            return nil
        }
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
            "app", "image", "docker", "secrets", "variables", "environments", "stages", "gates", "hooks", "output_limit", "risk",
            "notify", "roles", "prometheus",
        ]
        // `x-…` keys are the file's own (as in Compose files): a place for anchors that merge keys
        // share, e.g. `x-defaults: &defaults { timeout: 5m }` and `<<: *defaults` in a stage.
        checkKeys(Mapping(entries: top.entries.filter { !$0.key.hasPrefix("x-") }), allowed: allowed, in: "the pipeline")

        let app = required(top, "app", in: root, context: "the pipeline", hint: "name the application, e.g. `app: hello`")
            .flatMap { string($0, "app") }
        if let appNode = top["app"], let app, !isValidIdentifier(app) {
            error(appNode, "app name \(shown(app)) is not valid" + tooLong(app), hint: "use 1 to 63 letters, digits, '-', '_' and '.'")
        }
        let image = top["image"].flatMap { string($0, "image") }
        let secrets = top["secrets"].map(secretList) ?? []
        let variables = top["variables"].map { variableMap($0, context: "variables") } ?? []
        prometheusURL = top["prometheus"].flatMap(prometheusSetting)
        let gates = top["gates"].map(gateMap) ?? []
        let environments = top["environments"].map(environmentMap) ?? []
        let hooks = top["hooks"].map(hookMap) ?? []
        let outputLimit = top["output_limit"].flatMap { size($0, "output_limit") } ?? Pipeline.defaultOutputLimit
        let riskRules = RiskRules.defaults.merging(top["risk"].map(riskMap) ?? [])
        let webhooks = top["notify"].map { webhookList($0, secrets: secrets.map(\.name)) } ?? []
        let docker = top["docker"].flatMap { string($0, "docker", hint: "the Docker CLI to use, e.g. `docker: podman`") }

        roles = top["roles"].map(roleMap) ?? [:]
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
            webhooks: webhooks, docker: docker, roles: roles, prometheusURL: prometheusURL)
    }

    /// The first alias written as a mapping key or inside one (`*name:`, `[*name]: …`, `? *name`),
    /// with where it is; comments and quoted text are skipped.
    static func aliasKey(in yaml: String) -> (alias: String, line: Int, column: Int)? {
        var lineNumber = 0
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard line.contains("*") else { continue }
            let characters = Array(line)
            var quote: Character?
            var index = 0
            while index < characters.count {
                let character = characters[index]
                if let open = quote {
                    if character == open { quote = nil }
                } else if character == "\"" || character == "'" {
                    quote = character
                } else if character == "#", index == 0 || characters[index - 1] == " " {
                    break
                } else if character == "*", index == 0 || " \t{[,?".contains(characters[index - 1]) {
                    var end = index + 1
                    while end < characters.count, !" \t,:]}".contains(characters[end]) { end += 1 }
                    // Past the closers of a flow collection the alias is in (`[*name]: …` is a key too).
                    var next = end
                    while next < characters.count, " \t]}".contains(characters[next]) { next += 1 }
                    let explicitKey = characters[..<index].last { !" \t[{".contains($0) } == "?"
                    if end > index + 1, explicitKey || (next < characters.count && characters[next] == ":") {
                        return (String(characters[index..<end]), lineNumber, index + 1)
                    }
                    index = end
                    continue
                }
                index += 1
            }
        }
        return nil
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
}
