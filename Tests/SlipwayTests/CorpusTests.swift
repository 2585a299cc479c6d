import Foundation
import Slipway
import Testing

/// The project's corpus of hostile pipeline files (Tests/Corpus/): each file's first line says
/// what `deploy validate` must make of it, `# expect: exit 0` or
/// `# expect: exit 2 at LINE:COLUMN: part of the message`. scripts/fuzz seeds libFuzzer with them.
@Suite("Hostile pipeline corpus")
struct CorpusTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus").path

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".yml") }.sorted()
    }

    struct Expectation {
        var exit: Int
        var line: Int?
        var column: Int?
        var message: String?
    }

    static func expectation(_ file: String) throws -> Expectation {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
        let header = String(decoding: data.prefix { $0 != 0x0A }, as: UTF8.self)
        let parts = header.split(separator: " ", maxSplits: 5).map(String.init)
        // "# expect: exit N [at L:C: message]"
        guard parts.count >= 4, parts[1] == "expect:", let exit = Int(parts[3]) else {
            throw CorpusError(description: "\(file) has no `# expect:` line")
        }
        guard parts.count == 6, parts[4] == "at" else { return Expectation(exit: exit) }
        let rest = parts[5]
        let location = rest.prefix { $0 != " " }.dropLast()
        let numbers = location.split(separator: ":").compactMap { Int($0) }
        return Expectation(
            exit: exit, line: numbers.first, column: numbers.last, message: String(rest.dropFirst(location.count + 2)))
    }

    struct CorpusError: Error, CustomStringConvertible {
        var description: String
    }

    @Test("the corpus is not empty")
    func corpusPresent() {
        #expect(Self.files.count >= 15)
    }

    @Test("each hostile file gets its expected exit and diagnostic", arguments: files)
    func hostileFile(_ file: String) throws {
        let expected = try Self.expectation(file)
        let path = Self.directory + "/" + file
        do {
            _ = try PipelineLoader.load(path: path)
            #expect(expected.exit == 0, "\(file) validated, expected exit \(expected.exit)")
        } catch {
            #expect(expected.exit == 2, "\(file): \(error)")
            let match = error.diagnostics.first { diagnostic in
                diagnostic.location.line == expected.line && diagnostic.location.column == expected.column
                    && expected.message.map { diagnostic.message.contains($0) } ?? true
            }
            #expect(match != nil, "\(file): \(error.diagnostics.map(\.description))")
        }
    }
}
