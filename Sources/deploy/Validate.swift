import ArgumentParser
import Foundation
import Slipway

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check pipeline files and report every problem, each with file:line:column.",
        discussion: "Exits 2 if any file has an error; warnings alone exit 0.")

    @Argument(help: "Pipeline files (default: the pipeline deploy would use).")
    var files: [String] = []

    @OptionGroup var location: LocationOptions

    @Flag(name: .long, help: "Print diagnostics as JSON.")
    var json = false

    struct FileReport: Encodable {
        var file: String
        var valid: Bool
        var diagnostics: [Diagnostic]
    }

    func run() async throws {
        try await guarded {
            let paths = files.isEmpty ? [try location.pipelinePath()] : files
            var reports: [FileReport] = []
            for path in paths {
                do {
                    let (pipeline, warnings) = try PipelineLoader.load(path: path, reservedNames: Deploy.reservedNames)
                    reports.append(FileReport(file: path, valid: true, diagnostics: warnings))
                    if !json {
                        for warning in warnings { print(warning) }
                        print("\(path): valid (\(pipeline.stages.count) stages, \(pipeline.environments.count) environments)")
                    }
                } catch let error as PipelineError {
                    reports.append(FileReport(file: path, valid: false, diagnostics: error.diagnostics))
                    if !json { print(error) }
                }
            }
            if json { print(try encodeJSON(reports)) }
            if reports.contains(where: { !$0.valid }) { throw ExitCode(ExitStatus.usage.rawValue) }
        }
    }
}
