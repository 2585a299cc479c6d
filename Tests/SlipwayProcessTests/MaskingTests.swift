import Foundation
import SlipwayProcess
import Testing

@Suite("Secret masking")
struct MaskingTests {
    @Test("a secret in a line is replaced by ***")
    func masksWholeLine() {
        let masker = SecretMasker(secrets: ["hunter2-token"])
        #expect(masker.mask("login with hunter2-token now") == "login with *** now")
    }

    @Test("a secret split across two chunks is still masked", arguments: Array(1..<13))
    func masksAcrossChunks(cut: Int) {
        // Given output whose secret is cut at every possible byte position
        let secret = "s3cr3t-value"
        let text = "token=\(secret) done\n"
        let bytes = Array(text.utf8)
        let split = "token=".utf8.count + cut
        var assembler = LineAssembler(masker: SecretMasker(secrets: [secret]))
        // When the chunks arrive one after the other
        let lines = assembler.append(bytes[..<split]) + assembler.append(bytes[split...])
        // Then the line is whole and masked
        #expect(lines == ["token=*** done"])
    }

    @Test("a secret straddling the cut of an over-long line is masked")
    func masksAcrossLongLineFlush() {
        let secret = "ABCDEFGHIJKLMNOP"
        var assembler = LineAssembler(masker: SecretMasker(secrets: [secret]), maximumLineLength: 40)
        var emitted: [String] = []
        let stream = String(repeating: "x", count: 30) + secret + String(repeating: "y", count: 30) + secret + "\n"
        for byte in stream.utf8 { emitted += assembler.append([byte]) }
        if let rest = assembler.finish() { emitted.append(rest) }
        let joined = emitted.joined()
        #expect(!joined.contains("ABCDEF"))
        #expect(joined.components(separatedBy: "***").count == 3)
    }

    @Test("longer secrets win over shorter ones they contain, and multi-line secrets mask each line")
    func overlappingAndMultiline() {
        let masker = SecretMasker(secrets: ["abc", "abcdef", "line-one\nline-two"])
        #expect(masker.mask("x abcdef y abc") == "x *** y ***")
        #expect(masker.mask("got line-two") == "got ***")
    }

    @Test("values too short to be secrets are left alone")
    func ignoresTrivialValues() {
        let masker = SecretMasker(secrets: ["", "a", "1"])
        #expect(masker.isEmpty)
        #expect(masker.mask("a 1 a") == "a 1 a")
    }

    @Test("a UTF-8 character split across chunks comes out whole")
    func utf8AcrossChunks() {
        var assembler = LineAssembler(masker: .none)
        let bytes = Array("héllo wörld\n".utf8)
        let lines = assembler.append(bytes[..<2]) + assembler.append(bytes[2...])
        #expect(lines == ["héllo wörld"])
    }

    @Test("CRLF line endings and a last line without a newline")
    func lineEndings() {
        var assembler = LineAssembler(masker: .none)
        #expect(assembler.append(Array("one\r\ntwo\nthree".utf8)) == ["one", "two"])
        #expect(assembler.finish() == "three")
        #expect(assembler.finish() == nil)
    }
}
