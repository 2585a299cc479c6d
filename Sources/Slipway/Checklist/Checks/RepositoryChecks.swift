import Foundation
import SlipwayGit

/// Checks of the repository: documents, secrets, pinned dependencies.
enum RepositoryChecks {
    /// The files under `paths` (the whole repository when empty), relative to its root: the ones
    /// git tracks, or every file when the directory is no repository.
    static func files(under paths: [String], inputs: ChecklistInputs) -> [String] {
        let prefixes = paths.map { $0 == "." ? "" : ($0.hasSuffix("/") ? String($0.dropLast()) : $0) }
        func wanted(_ path: String) -> Bool {
            prefixes.isEmpty || prefixes.contains { $0.isEmpty || path == $0 || path.hasPrefix($0 + "/") }
        }
        if let repository = try? Repository(discoveringFrom: inputs.repository), let workdir = repository.workdir,
            let tracked = try? repository.trackedFiles()
        {
            // The index's paths are from the working directory's root; the checklist's are from `repository`.
            let root = URL(fileURLWithPath: workdir).standardizedFileURL.path
            let base = URL(fileURLWithPath: inputs.repository).standardizedFileURL.path
            let offset =
                base.hasPrefix(root) ? String(base.dropFirst(root.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : ""
            return tracked.compactMap { path -> String? in
                if offset.isEmpty { return path }
                return path.hasPrefix(offset + "/") ? String(path.dropFirst(offset.count + 1)) : nil
            }.filter(wanted)
        }
        var result: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: inputs.repository)
        while let path = enumerator?.nextObject() as? String {
            if path.hasPrefix(".git/") || path.hasPrefix(".build") { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: inputs.file(path), isDirectory: &isDirectory), !isDirectory.boolValue, wanted(path) {
                result.append(path)
            }
        }
        return result.sorted()
    }

    // MARK: Documents

    static func documents(_ files: [String], inputs: ChecklistInputs) -> CheckVerdict {
        var problems: [String] = []
        var sizes: [String] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: inputs.file(file)) else {
                problems.append("\(file) does not exist")
                continue
            }
            let text = String(decoding: data, as: UTF8.self)
            // A title alone is not a document: count what is not a heading or blank.
            let body = text.split(whereSeparator: \.isNewline).filter {
                let line = $0.trimmingCharacters(in: .whitespaces)
                return !line.isEmpty && !line.hasPrefix("#") && !line.allSatisfy { "=-~".contains($0) }
            }
            if body.isEmpty {
                problems.append(
                    "\(file) is empty" + (text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "" : " (headings only)"))
            } else {
                sizes.append("\(file) (\(body.count) lines)")
            }
        }
        guard problems.isEmpty else { return .fail(problems.joined(separator: "; ") + ": write it and commit it") }
        return .pass(sizes.joined(separator: ", "))
    }

    // MARK: Secrets

    /// What a secret looks like: a name for the finding, and a pattern.
    static let secretPatterns: [(kind: String, pattern: NSRegularExpression)] = [
        ("an AWS access key id", #"\b(AKIA|ASIA)[0-9A-Z]{16}\b"#),
        ("a private key", #"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"#),
        ("a GitHub token", #"\bgh[pousr]_[A-Za-z0-9]{36,}\b"#),
        ("a Slack token", #"\bxox[abposr]-[A-Za-z0-9-]{10,}"#),
        ("a Google API key", #"\bAIza[0-9A-Za-z_\-]{35}\b"#),
        ("a Stripe live key", #"\b[sr]k_live_[0-9A-Za-z]{16,}"#),
        (
            "a password, secret or token written as a literal",
            #"(?i)\b[a-z0-9_]*(password|passwd|secret|token|api_?key)[a-z0-9_]*["']?\s*[:=]\s*["']([^"'\s$<{]{8,})["']"#
        ),
    ].map { ($0.0, try! NSRegularExpression(pattern: $0.1)) }

    /// The kinds of secret `text` holds (never the secret itself).
    static func secretKinds(in text: String) -> [String] {
        let range = NSRange(text.startIndex..., in: text)
        return secretPatterns.compactMap { kind, pattern in
            guard let match = pattern.firstMatch(in: text, range: range) else { return nil }
            // A placeholder is no secret: `password: "changeme-example"`, `token = "xxxxxxxx"`.
            if match.numberOfRanges > 2, let value = Range(match.range(at: 2), in: text) {
                let literal = text[value].lowercased()
                if ["example", "changeme", "placeholder", "dummy", "xxxx", "your-", "redacted", "****"].contains(where: literal.contains) {
                    return nil
                }
            }
            return kind
        }
    }

    static func noSecrets(paths: [String], inputs: ChecklistInputs) async -> CheckVerdict {
        var findings: [String] = []
        let files = files(under: paths, inputs: inputs)
        for file in files {
            guard let handle = FileHandle(forReadingAtPath: inputs.file(file)) else { continue }
            let data = (try? handle.read(upToCount: 2 << 20)) ?? Data()
            try? handle.close()
            if data.prefix(8192).contains(0) { continue }  // binary
            let text = String(decoding: data, as: UTF8.self)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                for kind in secretKinds(in: String(line)) { findings.append("\(file):\(number + 1): \(kind)") }
            }
        }
        var scanned = "\(files.count) file\(files.count == 1 ? "" : "s")"
        if let image = inputs.image {
            do {
                let output = try await inputs.docker.run(
                    ["image", "inspect", "--format", "{{json .Config.Env}}", image], timeout: .seconds(60))
                let variables = (try? JSONDecoder().decode([String].self, from: Data(output.utf8))) ?? []
                for variable in variables {
                    let parts = variable.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, !parts[1].isEmpty else { continue }
                    let name = parts[0].uppercased()
                    let named = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"].contains {
                        name.contains($0)
                    }
                    if named || !secretKinds(in: parts[1]).isEmpty {
                        findings.append("the image's environment sets \(parts[0]) to a value baked into the image")
                    }
                }
                scanned += " and the image's \(variables.count) environment variables"
            } catch {
                findings.append("the image \(image) could not be inspected (\(error))")
            }
        }
        guard findings.isEmpty else {
            let shown = findings.prefix(5).joined(separator: "; ") + (findings.count > 5 ? "; and \(findings.count - 5) more" : "")
            return .fail("\(shown): move secrets to the environment or a secret store (`secrets:` in the pipeline), and rotate them")
        }
        return .pass("no secret-looking strings in \(scanned)")
    }

    // MARK: Dependencies

    /// A package manifest and the lock files any one of which pins it.
    static let lockFiles: [(manifest: String, locks: [String])] = [
        ("Package.swift", ["Package.resolved"]),
        ("package.json", ["package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb"]),
        ("Cargo.toml", ["Cargo.lock"]),
        ("go.mod", ["go.sum"]),
        ("Gemfile", ["Gemfile.lock"]),
        ("pyproject.toml", ["poetry.lock", "uv.lock", "pdm.lock", "requirements.txt"]),
        ("Pipfile", ["Pipfile.lock"]),
        ("composer.json", ["composer.lock"]),
    ]

    static func pinnedDependencies(_ path: String, inputs: ChecklistInputs) -> CheckVerdict {
        let files = files(under: path == "." ? [] : [path], inputs: inputs)
        let present = Set(files)
        var problems: [String] = []
        var pinned: [String] = []
        for file in files {
            let name = (file as NSString).lastPathComponent
            let directory = (file as NSString).deletingLastPathComponent
            func sibling(_ other: String) -> String { directory.isEmpty ? other : directory + "/" + other }
            if let rule = lockFiles.first(where: { $0.manifest == name }) {
                if let lock = rule.locks.first(where: { present.contains(sibling($0)) }) {
                    pinned.append("\(file) by \(lock)")
                } else {
                    problems.append("\(file) has no lock file (\(rule.locks.joined(separator: ", ")))")
                }
            } else if name.hasPrefix("requirements"), name.hasSuffix(".txt") {
                let text = (try? String(contentsOfFile: inputs.file(file), encoding: .utf8)) ?? ""
                var loose: [String] = []
                for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let line =
                        raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map {
                            $0.trimmingCharacters(in: .whitespaces)
                        } ?? ""
                    if line.isEmpty || line.hasPrefix("-") || line.hasPrefix("\\") { continue }
                    if !line.contains("==") && !line.contains("@") { loose.append("\(file):\(number + 1) '\(line)'") }
                }
                if loose.isEmpty { pinned.append(file) } else { problems.append("\(loose.joined(separator: ", ")) not pinned with ==") }
            } else if ["Dockerfile", "Containerfile"].contains(where: { name == $0 || name.hasPrefix($0 + ".") }) {
                let text = (try? String(contentsOfFile: inputs.file(file), encoding: .utf8)) ?? ""
                var stages = Set<String>()
                for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let words = raw.split(whereSeparator: \.isWhitespace).map(String.init)
                    guard words.first?.uppercased() == "FROM" else { continue }
                    let image = words.dropFirst().first { !$0.hasPrefix("--") } ?? ""
                    if let asIndex = words.firstIndex(where: { $0.uppercased() == "AS" }), asIndex + 1 < words.count {
                        stages.insert(words[asIndex + 1].lowercased())
                    }
                    if image == "scratch" || image.contains("@sha256:") || stages.contains(image.lowercased()) { continue }
                    problems.append("\(file):\(number + 1) FROM \(image) is not pinned by digest (write \(image)@sha256:…)")
                }
                if !problems.contains(where: { $0.hasPrefix(file + ":") }) { pinned.append(file) }
            }
        }
        guard problems.isEmpty else { return .fail(problems.joined(separator: "; ")) }
        guard !pinned.isEmpty else {
            return .pass("no dependency manifests under \(path): nothing to pin (\(files.count) files looked at)")
        }
        return .pass("pinned: " + pinned.joined(separator: ", "))
    }
}
