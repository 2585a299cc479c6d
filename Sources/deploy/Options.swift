import ArgumentParser
import Foundation
import Slipway

/// Where the pipeline and the run store are.
struct LocationOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The pipeline file.", discussion: "Default: $SLIPWAY_PIPELINE, else slipway.yml, else the only .yml file in Pipelines/.",
            valueName: "file"))
    var pipeline: String?

    @Option(
        name: .long,
        help: ArgumentHelp("The run store (SQLite).", discussion: "Default: $SLIPWAY_STATE, else .slipway/state.sqlite.", valueName: "path")
    )
    var state: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func pipelinePath() throws -> String {
        if let pipeline { return pipeline }
        if let fromEnvironment = environment["SLIPWAY_PIPELINE"], !fromEnvironment.isEmpty { return fromEnvironment }
        let manager = FileManager.default
        if manager.fileExists(atPath: "slipway.yml") { return "slipway.yml" }
        let candidates = ((try? manager.contentsOfDirectory(atPath: "Pipelines")) ?? [])
            .filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted()
        if candidates.count == 1 { return "Pipelines/\(candidates[0])" }
        if candidates.isEmpty {
            throw CLIError.usage(
                "no pipeline found: there is no slipway.yml here and no .yml file in Pipelines/",
                hint: "pass one with --pipeline FILE; docs/pipelines.md shows the format")
        }
        throw CLIError.usage(
            "several pipelines in Pipelines/ (\(candidates.joined(separator: ", "))): say which",
            hint: "pass --pipeline Pipelines/\(candidates[0]) or set SLIPWAY_PIPELINE")
    }

    func statePath() -> String {
        if let state { return state }
        if let fromEnvironment = environment["SLIPWAY_STATE"], !fromEnvironment.isEmpty { return fromEnvironment }
        return ".slipway/state.sqlite"
    }

    /// The state every command shares: the store, targets' files, engines.
    func workspace() -> Workspace {
        Workspace(statePath: statePath(), processEnvironment: environment) { Console.standardError.write("note: \($0)\n") }
    }

    /// Opens the store and marks runs whose `deploy` died as interrupted.
    func openStore(_ access: RunStore.Access = .readWrite) async throws -> any DeployStore {
        try await workspace().openStore(access)
    }

    /// Opens the store and reads one run, as `show` and `logs` take it (`12` or `#12`).
    func runDetail(_ text: String) async throws -> (store: any DeployStore, detail: RunDetail) {
        let id = try runID(text)
        let store = try await openStore(.readOnly)
        guard let detail = try await store.detail(runID: id) else {
            throw CLIError.failed("there is no run \(id) in \(statePath())", hint: "`deploy history` lists the runs")
        }
        return (store, detail)
    }

    /// Refuses an environment nobody declared (a typo must not lock, unpin or list nothing while
    /// the real environment stays as it was): the pipeline's environments, or, with no pipeline
    /// here, those the run store knows.
    func requireEnvironment(_ name: String) async throws {
        let known: [String]
        let file: String
        if let pipeline = try? loadPipeline() {
            known = pipeline.environments.map(\.name)
            file = pipeline.file
        } else {
            known = Set(try await openStore(.readOnly).history(limit: 1000).map(\.environment)).sorted()
            file = statePath()
        }
        guard known.contains(name) else { throw Plan.UnknownEnvironment(name: name, known: known, file: file) }
    }

    func loadPipeline() throws -> Pipeline {
        let path = try pipelinePath()
        let (pipeline, warnings) = try PipelineLoader.load(path: path, reservedNames: Deploy.reservedNames)
        for warning in warnings { Console.standardError.write(warning.description + "\n") }
        return pipeline
    }
}

/// Errors the command line reports itself, each with its exit code.
enum CLIError: Error, CustomStringConvertible {
    case usage(String, hint: String? = nil)
    case failed(String, hint: String? = nil)

    var description: String {
        switch self {
        case .usage(let message, let hint), .failed(let message, let hint):
            hint.map { "\(message)\n    hint: \($0)" } ?? message
        }
    }

    var status: ExitStatus {
        switch self {
        case .usage: .usage
        case .failed: .failed
        }
    }
}

/// Prints an error the way every command does and turns it into the documented exit code.
func exit(for error: any Error) -> ExitCode {
    let status: ExitStatus
    switch error {
    case let error as PipelineError:
        Console.standardError.write(error.description + "\n")
        status = .usage
    case let error as Plan.UnknownEnvironment:
        Console.standardError.write("error: \(error)\n")
        status = .usage
    case let error as CLIError:
        Console.standardError.write("error: \(error)\n")
        status = error.status
    case let error as Engine.WaitInterrupted:
        Console.standardError.write("\(error)\n")
        status = .cancelled
    case let error as EnvironmentUnavailable:
        Console.standardError.write("error: \(error)\n")
        status = .locked
    case let error as RunRefused:
        Console.standardError.write("error: \(error)\n")
        status = .failed
    default:
        Console.standardError.write("error: \(error)\n")
        status = .failed
    }
    return ExitCode(status.rawValue)
}

/// Runs a command body, mapping our errors to exit codes (ArgumentParser's own pass through).
func guarded<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        throw exit(for: error)
    }
}

/// Parses a run id as users type it: `12` or `#12`.
func runID(_ text: String) throws -> Int64 {
    let digits = text.hasPrefix("#") ? String(text.dropFirst()) : text
    guard let id = Int64(digits), id > 0 else {
        throw CLIError.usage("'\(text)' is not a run id", hint: "run ids are numbers; `deploy history` lists them")
    }
    return id
}

func encodeJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// `--as NAME`: who does it, for commands that record a person (lock, unlock, approve, reject).
struct ActorOption: ParsableArguments {
    @Option(name: .customLong("as"), help: ArgumentHelp("Who does it (default: $SLIPWAY_USER or the login name).", valueName: "name"))
    var name: String?

    func resolve(_ environment: [String: String]) -> String { name ?? Trigger.detect(environment: environment).user }
}
