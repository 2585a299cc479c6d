// The pipeline loader under libFuzzer: any bytes in, a pipeline or diagnostics out; never a crash,
// a hang or unbounded memory. `scripts/fuzz` builds it with `-sanitize=fuzzer,address -DFUZZING`
// and runs it on the seed corpus in Fuzz/corpus/.

import Foundation
import SlipwayPipeline

/// One input through the loader, as `deploy validate` would read it.
func load(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    _ = try? PipelineLoader.parse(yaml: text, file: "fuzz.yml")
}

#if FUZZING
    /// What libFuzzer calls with each input.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ bytes: UnsafeRawPointer, _ count: Int) -> CInt {
        load(Data(bytes: bytes, count: count))
        return 0
    }

    /// libFuzzer's driver (in the runtime that `-sanitize=fuzzer` links): parses its flags from
    /// argv and calls `callback` with each input.
    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    @main
    struct Fuzz {
        static func main() {
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(
                runDriver(&argc, &argv) { bytes, count in
                    load(bytes.map { Data(bytes: $0, count: count) } ?? Data())
                    return 0
                })
        }
    }
#else
    /// Without libFuzzer: loads each file named on the command line (or every file of a
    /// directory) and says how many it read; a crash here is a crash in the loader.
    @main
    struct Replay {
        static func main() {
            var files: [String] = []
            for path in CommandLine.arguments.dropFirst() {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                    files += names.sorted().map { path + "/" + $0 }
                } else {
                    files.append(path)
                }
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                load(data)
            }
            print("replayed \(files.count) input\(files.count == 1 ? "" : "s") through the pipeline loader")
        }
    }
#endif
