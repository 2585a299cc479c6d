import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The example app (Examples/hello) as the end-to-end tests deploy it: its files in a test's own
/// repository, releases as tagged commits, and plain HTTP requests to wherever it answers.
public enum ExampleApp {
    /// Copies the files a deploy builds the app from into `repo`.
    public static func copy(into repo: GitFixture) throws {
        let example = packageRoot + "/Examples/hello"
        for file in ["Containerfile", ".dockerignore", "prepare", "break", "app/start", "app/handler"] {
            let contents = try String(contentsOfFile: "\(example)/\(file)", encoding: .utf8)
            let executable = FileManager.default.isExecutableFile(atPath: "\(example)/\(file)")
            try repo.directory.write("Examples/hello/\(file)", contents, executable: executable)
        }
    }

    /// A commit tagged `v<version>`; a broken release's `/health` answers 503.
    public static func release(_ repo: GitFixture, _ version: String, broken: Bool = false, files: [String: String] = [:]) async throws {
        for (path, contents) in files { try repo.directory.write(path, contents) }
        if broken {
            try repo.directory.write("Examples/hello/app/broken", "deliberately broken\n")
        } else {
            try? FileManager.default.removeItem(atPath: repo.directory.file("Examples/hello/app/broken"))
        }
        try repo.directory.write("CHANGES", version + "\n")
        try await repo.git("add", "-A")
        try await repo.git("commit", "-q", "-m", broken ? "feat: \(version), broken" : "feat: \(version)")
        try await repo.git("tag", "v\(version)")
    }

    /// Takes down everything a test's project started: each environment (`deploy teardown`), its
    /// nginx (by the pid it recorded, only if that pid is still an nginx: a fault test may have
    /// killed it long ago, and its number may now be another test's process), every container
    /// labelled with `app`; then the repository.
    public static func tearDown(
        _ repo: GitFixture, app: String, environment: [String: String], pipeline: String? = nil,
        environments: [String] = ["staging", "production"]
    ) async {
        for name in environments {
            _ = try? await runDeploy(
                ["teardown", name] + (pipeline.map { ["--pipeline", $0] } ?? []), in: repo.path, environment: environment)
            let pidFile = repo.directory.file(".slipway/proxy/\(name)/nginx.pid")
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("nginx") == true
            {
                kill(pid, SIGKILL)
            }
        }
        let docker = environment["DOCKER"] ?? "docker"
        if let ids = try? await GitFixture.run(
            [docker, "ps", "-aq", "--filter", "label=io.slipway.app=\(app)"], in: repo.path, environment: environment), !ids.isEmpty
        {
            _ = try? await GitFixture.run(
                [docker, "rm", "-f"] + ids.split(separator: "\n").map(String.init), in: repo.path, environment: environment)
        }
        repo.remove()
    }

    /// GET over a fresh connection each time, as a simple client would.
    public static func get(_ url: String) async -> (status: Int, body: String)? {
        var request = URLRequest(url: URL(string: url)!, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData)
        request.timeoutInterval = 5
        request.setValue("close", forHTTPHeaderField: "Connection")
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return (
            (response as? HTTPURLResponse)?.statusCode ?? 0,
            String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        )
    }
}

/// Requests for `/version` to one address until told to stop (at most `limit`); counts the
/// failures and the versions seen, in order.
public final class RequestLoop: Sendable {
    /// Set to end the loop: the request that sees it set is the last one, so the last answer
    /// recorded comes from a request made after it was set.
    public let stopped = MutexBox(false)
    public let results = MutexBox<(ok: Int, failed: Int, versions: [String], failures: [String])>((0, 0, [], []))

    public init() {}

    /// Asks `url + path` one request after another until `stopped` is set (then once more).
    public func run(_ url: String, path: String = "/version") async {
        while true {
            let last = stopped.with { $0 }
            let answer = await ExampleApp.get(url + path)
            results.with { results in
                if let answer, answer.status == 200 {
                    results.ok += 1
                    if results.versions.last != answer.body { results.versions.append(answer.body) }
                } else {
                    results.failed += 1
                    results.failures.append(answer.map { "\($0.status) \($0.body)" } ?? "no answer")
                }
            }
            if last { return }
        }
    }

    /// Runs `body` with the loop going: its first answer is in before `body` starts, and its last
    /// comes from a request made after `body` returned (or threw), whatever the machine's load.
    public static func around<T: Sendable>(_ url: String, path: String = "/version", _ body: () async throws -> T) async rethrows -> (
        T, RequestLoop
    ) {
        let loop = RequestLoop()
        let requests = Task { await loop.run(url, path: path) }
        while loop.results.with({ $0.ok + $0.failed }) == 0 { await Task.yield() }
        let value: T
        do {
            value = try await body()
        } catch {
            loop.stopped.with { $0 = true }
            await requests.value
            throw error
        }
        loop.stopped.with { $0 = true }
        await requests.value
        return (value, loop)
    }
}
