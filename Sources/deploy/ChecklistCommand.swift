import ArgumentParser
import Foundation
import Slipway

struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign off checklist items of a run (recorded with who, when and why, and in the audit log).",
        discussion: """
            Items are named by id (`security.api-keys-implemented`) or by number, as `deploy checklist` \
            lists them. The pipeline says who may sign each item; one signed with `valid_for` also \
            stands for later runs until it expires. Works from any terminal that shares the run store.
            """)

    @Argument(help: "The run waiting at its checklist (from `deploy history` or the waiting deploy's output).")
    var run: String

    @Argument(help: "The items to sign: ids or numbers.")
    var items: [String] = []

    @Flag(name: .long, help: "Sign every item of the run that is waiting for a sign-off and that you may sign.")
    var all = false

    @OptionGroup var actor: ActorOption

    @Option(name: .long, help: ArgumentHelp("A comment, recorded with each sign-off.", valueName: "text"))
    var comment: String?

    @OptionGroup var location: LocationOptions

    func validate() throws {
        if items.isEmpty && !all { throw ValidationError("name the items to sign (ids or numbers from `deploy checklist`), or pass --all") }
        if !items.isEmpty && all { throw ValidationError("give items or --all, not both") }
    }

    func run() async throws {
        try await guarded {
            let id = try runID(run)
            let store = try await location.openStore()
            let who = actor.resolve(location.environment)
            var names = items
            if all {
                let record = try await store.checklist(runID: id)
                names = record.filter {
                    $0.isSignOff && $0.state != .signed && $0.maySign(who)
                }.map(\.itemID)
                if names.isEmpty { throw CLIError.failed("run \(id) has no item waiting that \(who) may sign") }
            }
            var refused: [String] = []
            for name in names {
                do {
                    let signed = try await Checklists.sign(in: store, runID: id, item: name, signer: who, comment: comment, now: Date())
                    print("\(who) signed off \(signed.itemID) (\(signed.title)) on run \(id)" + (comment.map { ": \($0)" } ?? ""))
                } catch let refusal as SignOffRefused {
                    if names.count == 1 { throw CLIError.failed(refusal.message, hint: refusal.hint) }
                    refused.append(refusal.description)
                }
            }
            if !refused.isEmpty {
                throw CLIError.failed("\(refused.count) of \(names.count) sign-offs refused:\n  " + refused.joined(separator: "\n  "))
            }
        }
    }
}

struct ChecklistCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checklist",
        abstract: "Show an environment's checklist: every item and its state in the latest run that reached it.",
        discussion: """
            States: passed and failed (checked by a machine), signed (by whom, when), pending (waiting, \
            or not reached), expired (a sign-off whose validity ran out), skipped. With --coverage FILE, \
            counts instead how many items of the pipeline's checklists a machine checks.
            """)

    @Argument(help: "The environment whose checklist to show.")
    var environment: String?

    @Option(name: .long, help: ArgumentHelp("Show this run's checklist instead of the latest.", valueName: "run"))
    var run: String?

    @Option(name: .long, help: ArgumentHelp("Count the automated and signed-off items of a pipeline file's checklists.", valueName: "file"))
    var coverage: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var location: LocationOptions

    func validate() throws {
        if coverage == nil && environment == nil { throw ValidationError("name an environment, or pass --coverage FILE") }
        if coverage != nil && (environment != nil || run != nil) { throw ValidationError("--coverage takes a pipeline file alone") }
    }

    func run() async throws {
        try await guarded {
            if let coverage { return try printCoverage(coverage) }
            try await printChecklist(environment!)
        }
    }

    struct CoverageReport: Encodable {
        var pipeline: String
        var stage: String
        var environment: String
        var coverage: Checklists.Coverage
        var deployAutomatedPercent: Int

        func encode(to encoder: any Encoder) throws {
            try coverage.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(pipeline, forKey: .pipeline)
            try container.encode(stage, forKey: .stage)
            try container.encode(environment, forKey: .environment)
            try container.encode(deployAutomatedPercent, forKey: .deployAutomatedPercent)
        }

        enum Keys: String, CodingKey {
            case pipeline, stage, environment
            case deployAutomatedPercent = "deploy_automated_percent"
        }
    }

    func printCoverage(_ file: String) throws {
        let (pipeline, warnings) = try PipelineLoader.load(path: file, reservedNames: Deploy.reservedNames)
        for warning in warnings { Console.standardError.write(warning.description + "\n") }
        let reports = pipeline.stages.compactMap { stage -> CoverageReport? in
            guard case .checklist(let spec) = stage.kind else { return nil }
            let coverage = Checklists.coverage(spec)
            return CoverageReport(
                pipeline: file, stage: stage.name, environment: spec.environment, coverage: coverage,
                deployAutomatedPercent: coverage.deployAutomatedPercent)
        }
        guard !reports.isEmpty else { throw CLIError.failed("\(file) has no checklist stage", hint: "docs/checklists.md shows one") }
        if json {
            print(try encodeJSON(reports.count == 1 ? AnyEncodable(reports[0]) : AnyEncodable(reports)))
            return
        }
        for report in reports {
            let c = report.coverage
            print("\(file): checklist '\(report.stage)' for \(report.environment): \(c.items) items")
            print(
                "  automated  \(c.automated)  (\(c.checks.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))"
            )
            print(
                "  sign-off   \(c.signOff)  (\(c.signOff - c.standing - c.followUp) for each deploy; \(c.standing) standing, with valid_for; "
                    + "\(c.followUp) advisory follow-ups)")
            print("  of the \(c.deployItems) items that concern a deploy, \(report.deployAutomatedPercent)% are checked by a machine")
        }
    }

    func printChecklist(_ environment: String) async throws {
        try await location.requireEnvironment(environment)
        let store = try await location.openStore(.readOnly)
        var items: [ChecklistItemRecord] = []
        var runNumber: Int64?
        if let run {
            let id = try runID(run)
            items = try await store.checklist(runID: id)
            if items.isEmpty { throw CLIError.failed("run \(id) has no checklist", hint: "`deploy history \(environment)` lists the runs") }
            runNumber = id
        } else {
            if let latest = try await store.latestChecklistRun(environment: environment) {
                items = try await store.checklist(runID: latest)
                runNumber = latest
            }
        }
        var note: String?
        if items.isEmpty {
            // No run reached it yet: the pipeline's checklist, every item pending.
            let pipeline = try location.loadPipeline()
            let specs = pipeline.stages.compactMap { stage -> (String, ChecklistSpec)? in
                if case .checklist(let spec) = stage.kind, spec.environment == environment { (stage.name, spec) } else { nil }
            }
            guard !specs.isEmpty else {
                throw CLIError.failed(
                    "\(pipeline.file) has no checklist for \(environment)", hint: "docs/checklists.md shows how to add one")
            }
            items = specs.flatMap { Checklists.records($0.1, runID: 0, stage: $0.0) }
            note = "no run of \(environment) has reached its checklist yet: every item is pending"
        }
        if json {
            struct Output: Encodable {
                var environment: String
                var run: Int64?
                var items: [ChecklistItemRecord]
                var counts: [String: Int]
            }
            let counts = Dictionary(grouping: items, by: \.state.rawValue).mapValues(\.count)
            print(try encodeJSON(Output(environment: environment, run: runNumber, items: items, counts: counts)))
            return
        }
        let style = OutputStyle.detect(console: .standardOutput, environment: location.environment)
        if let note { print(note) }
        if let runNumber { print("checklist of run \(runNumber) (\(environment))") }
        var section: String?
        var rows: [[String]] = []
        func flush() {
            guard !rows.isEmpty else { return }
            print(Format.table(header: ["#", "ITEM", "STATE", "BY", "DETAIL"], rows: rows))
            rows = []
        }
        for item in items {
            if item.section != section {
                flush()
                section = item.section
                print("\n" + style.bold(item.section))
            }
            var state = item.state.rawValue + (item.advisory ? " (advisory)" : "")
            switch item.state {
            case .passed, .signed: state = style.green(state)
            case .failed: state = item.advisory ? style.yellow(state) : style.red(state)
            case .expired: state = style.yellow(state)
            default: break
            }
            var by = item.isSignOff ? (item.signedBy ?? item.role ?? item.signers.joined(separator: ",")) : (item.check ?? "check")
            if let at = item.signedAt { by += " " + Format.timestamp(at) }
            rows.append(
                [String(item.position + 1), "\(item.itemID)\n", state, by, "\(item.title) — \(item.detail)"].map {
                    $0.replacingOccurrences(of: "\n", with: "")
                })
        }
        flush()
        let counts = Dictionary(grouping: items, by: \.state).mapValues(\.count)
        print(
            "\n" + ChecklistState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }.joined(separator: ", ")
                + " of \(items.count) items")
    }
}

/// Type erasure for JSON output of one report or several.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
