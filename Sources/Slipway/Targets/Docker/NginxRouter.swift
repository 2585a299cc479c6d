public import Foundation
public import SlipwayCore
import SlipwayPipeline
public import SlipwayProcess

#if canImport(Glibc)
    import Glibc
#endif

/// The nginx in front of one environment's containers. Slipway writes its whole configuration,
/// and switches traffic by rewriting the upstream and reloading (`nginx -s reload`: new workers
/// take new connections, old ones finish what they hold, so nothing is dropped).
///
/// Everything lives in one directory (`<state dir>/proxy/<environment>/`): `nginx.conf`,
/// `state.json` (what serves, with which weight, at which generation), the pid file, the error
/// log, and `control.sock`, a Unix socket where nginx itself answers `/generation`: once it says
/// the new number, new connections get the new upstream.
public struct NginxRouter: Sendable {
    public let directory: String
    public let listen: String
    public let executable: String
    public let environment: [String: String]
    public let launcher: any ProcessLaunching

    public struct Backend: Sendable, Hashable, Codable {
        public var port: Int
        public var weight: Int
        public var container: String
        public var release: ReleaseReference?

        public init(port: Int, weight: Int, container: String, release: ReleaseReference?) {
            self.port = port
            self.weight = weight
            self.container = container
            self.release = release
        }
    }

    public struct State: Sendable, Hashable, Codable {
        public var generation: Int
        public var listen: String
        public var backends: [Backend]
        public var at: Date

        /// The backend with the most traffic.
        public var primary: Backend? { backends.max { $0.weight < $1.weight } }
    }

    public struct ProxyError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(
        directory: String, listen: String, executable: String = "nginx", environment: [String: String], launcher: any ProcessLaunching
    ) {
        // nginx resolves relative paths against its prefix, so everything here is absolute.
        self.directory = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        self.listen = listen
        self.executable = executable
        self.environment = environment
        self.launcher = launcher
    }

    var configPath: String { directory + "/nginx.conf" }
    var statePath: String { directory + "/state.json" }
    var pidPath: String { directory + "/nginx.pid" }
    var controlSocket: String { directory + "/control.sock" }
    var errorLog: String { directory + "/error.log" }

    /// What nginx was last confirmed to serve, if anything.
    public func state() -> State? {
        Self.decode(FileManager.default.contents(atPath: statePath))
    }

    /// A state written before a switch whose confirmation never came (deploy was killed between
    /// the reload and the confirmation).
    func pendingState() -> State? {
        Self.decode(FileManager.default.contents(atPath: statePath + ".next"))
    }

    static func decode(_ data: Data?) -> State? {
        guard let data else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(State.self, from: data)
    }

    /// What serves now: `state.json`, unless a switch was left unconfirmed and nginx itself (its
    /// control socket) says it runs that switch's generation; that state is then made the record.
    public func serving() async -> State? {
        let confirmed = state()
        guard let pending = pendingState(), pending.generation > confirmed?.generation ?? 0 else { return confirmed }
        // Just after a reload an old worker may still accept a connection and answer the old
        // generation: ask a few times (this runs only after a crash left a switch unconfirmed).
        for attempt in 1...10 {
            guard let live = await liveGeneration() else { return confirmed }
            if live >= pending.generation {
                try? ProxyFiles.rename(statePath + ".next", to: statePath)
                return pending
            }
            if attempt < 10 { try? await Task.sleep(for: .milliseconds(5)) }
        }
        return confirmed
    }

    /// The generation nginx answers on its control socket, if it answers.
    func liveGeneration() async -> Int? {
        guard let answer = try? await HTTP.get(unixSocket: controlSocket, path: "/generation", timeout: .seconds(1)), answer.status == 200
        else { return nil }
        return Int(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The nginx master's pid, when one is running from this directory.
    public func masterPID() -> Int32? {
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
        else { return nil }
        let cmdline = ProcFile.read("/proc/\(pid)/cmdline") ?? ""
        return cmdline.contains("nginx") ? pid : nil
    }

    /// nginx processes of this directory whose master is gone (killed: its workers live on, keep
    /// the port and serve the last configuration). They are known to be this environment's by the
    /// socket they hold: the control socket bound in this directory, which no other nginx binds.
    public func orphanedWorkers() -> [Int32] {
        let master = masterPID()
        return Self.holders(ofUnixSocket: controlSocket).filter { pid in
            pid != master && Self.parent(of: pid) != master
                && (ProcFile.read("/proc/\(pid)/cmdline")?.hasPrefix("nginx") ?? false)
        }
    }

    /// The processes (of `among`, else all) holding a socket bound to `path`, from /proc/net/unix
    /// and each process's descriptors.
    static func holders(ofUnixSocket path: String, among candidates: [Int32]? = nil) -> [Int32] {
        guard let table = readProcFile("/proc/net/unix") else { return [] }
        // Num RefCount Protocol Flags Type St Inode Path
        let inodes = Set(
            table.split(separator: "\n").dropFirst().compactMap { line -> String? in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 8, fields[7...].joined(separator: " ") == path else { return nil }
                return "socket:[\(fields[6])]"
            })
        guard !inodes.isEmpty else { return [] }
        let processes = candidates ?? (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return processes.filter { pid in
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return descriptors.contains { descriptor in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)")).map(inodes.contains) ?? false
            }
        }
    }

    /// Stops workers left by a dead master: SIGQUIT (each stops listening at once and finishes
    /// the requests it holds), then waits up to 5 seconds until none holds the listening sockets,
    /// so a new master can bind them with the shortest gap. Returns their pids.
    @discardableResult
    func stopOrphanedWorkers() async -> [Int32] {
        let orphans = orphanedWorkers()
        guard !orphans.isEmpty else { return [] }
        for pid in orphans { kill(pid, SIGQUIT) }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !Self.holders(ofUnixSocket: controlSocket, among: orphans).isEmpty {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return orphans
    }

    /// Sends traffic to `backends` (by weight) and returns once nginx answers with the new
    /// generation: from then on new connections go where they say. Starts nginx if it is not
    /// running (first stopping workers a killed master left holding the port).
    ///
    /// `state.json` only ever names what nginx was confirmed to serve: the new state is written
    /// beside it and takes its place once nginx answers with the new generation. A failure before
    /// nginx was signalled or started throws ``TrafficUnchanged`` (the configuration before is put
    /// back); once nginx has the new configuration, a confirmation that does not come is an
    /// ordinary error: nginx may still take it, so the caller cannot assume either split.
    @discardableResult
    public func apply(_ backends: [Backend]) async throws -> State {
        let (state, hadConfiguration) = try await Self.unchanged { try await prepare(backends) }
        if let pid = masterPID() {
            let previousWorkers = Self.children(of: pid)
            // What `nginx -s reload` sends, without another process.
            kill(pid, SIGHUP)
            FaultPoint.reloaded.reached()
            try await waitForGeneration(state.generation, within: .seconds(10))
            try ProxyFiles.rename(statePath + ".next", to: statePath)
            await waitForExit(previousWorkers)
        } else {
            await stopOrphanedWorkers()
            unlink(controlSocket)
            let started = try await nginx(["-c", configPath], daemon: true)
            guard started.termination.succeeded else {
                restore(hadConfiguration: hadConfiguration)
                throw TrafficUnchanged(ProxyError(description: "nginx did not start on \(listen): \(started.output)"))
            }
            // A first start on a busy machine takes longer than a reload.
            try await waitForGeneration(state.generation, within: .seconds(30))
            try ProxyFiles.rename(statePath + ".next", to: statePath)
        }
        unlink(configPath + ".previous")
        return state
    }

    /// Writes and checks the new configuration and puts it in place (the one before kept as
    /// `nginx.conf.previous`), with the new state beside `state.json`; nginx is not told yet.
    private func prepare(_ backends: [Backend]) async throws -> (State, hadConfiguration: Bool) {
        try ProxyFiles.makeDirectory(directory + "/tmp")
        // An unconfirmed switch may be live: never reuse its generation number.
        let generation = max(state()?.generation ?? 0, pendingState()?.generation ?? 0) + 1
        let state = State(generation: generation, listen: listen, backends: backends.filter { $0.weight > 0 }, at: Date())
        let staged = configPath + ".next"
        try ProxyFiles.write(Data(configuration(state).utf8), to: staged)
        // Check the new file before it replaces the one nginx runs, so a bad one never half-applies.
        let check = try await nginx(["-t", "-q", "-c", staged])
        guard check.termination.succeeded else {
            throw ProxyError(description: "nginx rejected the configuration for \(listen): \(check.output)")
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try ProxyFiles.write(try encoder.encode(state), to: statePath + ".next")
        let previous = configPath + ".previous"
        unlink(previous)
        let hadConfiguration = link(configPath, previous) == 0
        do {
            try ProxyFiles.rename(staged, to: configPath)
        } catch {
            restore(hadConfiguration: hadConfiguration)
            throw error
        }
        return (state, hadConfiguration)
    }

    /// Puts back the configuration before and drops the unconfirmed state.
    private func restore(hadConfiguration: Bool) {
        if hadConfiguration { _ = Glibc.rename(configPath + ".previous", configPath) }
        unlink(statePath + ".next")
    }

    /// Runs `body`, whose failures leave traffic where it was: any error becomes ``TrafficUnchanged``.
    static func unchanged<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TrafficUnchanged {
            throw error
        } catch {
            throw TrafficUnchanged(error)
        }
    }

    /// Waits (up to 10 seconds) until the workers of the configuration before are gone. A new
    /// worker answering proves the new configuration is live, but until an old worker has taken
    /// its stop signal it may still accept a connection and send it the old way; once it has, it
    /// only finishes the requests it holds, and then exits. A worker still finishing a long
    /// request after 10 seconds is left to finish it.
    func waitForExit(_ workers: Set<Int32>) async {
        let deadline = ContinuousClock.now + .seconds(10)
        var remaining = workers
        while !remaining.isEmpty, ContinuousClock.now < deadline {
            remaining = remaining.filter { kill($0, 0) == 0 && Self.parent(of: $0) != nil }
            if remaining.isEmpty { return }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The processes whose parent is `pid` (nginx's workers, for its master), from /proc.
    static func children(of pid: Int32) -> Set<Int32> {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return Set(entries.compactMap { Int32($0) }.filter { parent(of: $0) == pid })
    }

    /// A process's parent pid, from /proc/<pid>/stat (nil once it is gone or a zombie).
    /// A /proc file read to its end (``ProcFile``).
    public static func readProcFile(_ path: String) -> String? { ProcFile.read(path) }

    static func parent(of pid: Int32) -> Int32? {
        guard let stat = ProcFile.read("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name in parentheses: state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, fields[0] != "Z" else { return nil }
        return Int32(fields[1])
    }

    /// Waits (up to `limit`) until nginx's control socket reports `generation`.
    func waitForGeneration(_ generation: Int, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        var last = "no answer"
        while ContinuousClock.now < deadline {
            if let seen = await liveGeneration() {
                if seen >= generation { return }
                last = "generation \(seen)"
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        let log =
            (try? String(contentsOfFile: errorLog, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: "\n    ") ?? ""
        // What would explain it: is the master there, has it workers, does the socket exist?
        let master = masterPID()
        let processes =
            master.map { "master \($0), workers \(Self.children(of: $0).map(String.init).joined(separator: ", "))" } ?? "no master"
        let socket = FileManager.default.fileExists(atPath: controlSocket) ? "socket present" : "no socket at \(controlSocket)"
        throw ProxyError(
            description:
                "nginx did not take generation \(generation) within \(DurationParser.format(limit)) (\(last); \(processes); \(socket))"
                + (log.isEmpty ? "" : ":\n    \(log)"))
    }

    /// Stops nginx (gracefully: it finishes the requests it holds) and waits for it to exit.
    public func stop() async {
        guard let pid = masterPID() else {
            await stopOrphanedWorkers()
            return
        }
        kill(pid, SIGQUIT)
        let deadline = ContinuousClock.now + .seconds(10)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    /// Runs nginx. `daemon`: it starts the master, which must outlive this call: nginx's parent
    /// exits as soon as it has forked, before the master calls setsid(), so stopping the parent's
    /// process group then (as for any other child) could kill the master on a busy machine.
    func nginx(_ arguments: [String], daemon: Bool = false) async throws -> (termination: ProcessTermination, output: String) {
        try await launcher.capture(
            ProcessSpec(
                executable: executable, arguments: ["-p", directory, "-e", errorLog] + arguments, environment: environment,
                timeout: .seconds(30), gracePeriod: .seconds(2), keepBackground: daemon))
    }

    func configuration(_ state: State) -> String {
        let servers =
            state.backends.isEmpty
            ? "        server 127.0.0.1:9 down;  # nothing deployed\n"
            : state.backends.map { backend in
                "        server 127.0.0.1:\(backend.port) weight=\(backend.weight);  # \(backend.container)"
                    + (backend.release.map { " \($0.description)" } ?? "") + "\n"
            }.joined()
        let temp = directory + "/tmp"
        return """
            # Written by Slipway (generation \(state.generation)); `deploy status` reads state.json beside it.
            # Do not edit: the next deploy replaces it.
            pid \(directory)/nginx.pid;
            worker_processes 1;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(temp)/client_body;
                proxy_temp_path \(temp)/proxy;
                fastcgi_temp_path \(temp)/fastcgi;
                uwsgi_temp_path \(temp)/uwsgi;
                scgi_temp_path \(temp)/scgi;
                upstream slipway_backend {
            \(servers)    }
                server {
                    listen \(state.listen);
                    location / {
                        proxy_pass http://slipway_backend;
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_connect_timeout 2s;
                        proxy_next_upstream error timeout http_502;
                        add_header X-Slipway-Generation \(state.generation) always;
                    }
                }
                server {
                    listen unix:\(controlSocket);
                    location = /generation { return 200 "\(state.generation)\\n"; }
                    location / { return 404; }
                }
            }

            """
    }
}
