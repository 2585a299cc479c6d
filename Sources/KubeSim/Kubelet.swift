import Foundation
import NIOCore
import NIOPosix
import SlipwayProcess

/// How pods run.
public enum PodRuntime: Sendable {
    /// Each container runs for real: `docker run` (the docker CLI against podman, or podman itself)
    /// with its container ports published on the pod's loopback address; probes run against it.
    case containers(command: String, environment: [String: String])
    /// Nothing runs: a pod becomes Ready `readyAfter` its start, as the transcripts' lab did — except
    /// an image whose tag contains `bad` (CrashLoopBackOff). For replaying transcripts and fast tests.
    case simulated(readyAfter: Duration)
}

/// The node agent: starts pods' containers, probes them, reports pod status as a kubelet does,
/// restarts what fails (with back-off), and removes terminating pods once their containers are gone.
///
/// Test hook: a pod annotated `kube-sim.slipway.dev/unready: "true"` (or the transcripts'
/// `sim.example/force-unready: "true"`) never becomes Ready, whatever its probes say.
public actor Kubelet {
    public static let nodeName = "kube-sim"
    static let unreadyAnnotations = ["kube-sim.slipway.dev/unready", "sim.example/force-unready"]

    let store: Store
    let network: Network
    let runtime: PodRuntime
    let instance: String
    let runner = ProcessRunner()

    struct ContainerState {
        var name: String
        var image: String
        var containerID: String?
        var startedAt: String?
        var ready = false
        var restartCount = 0
        var waitingReason: String?
        var waitingMessage: String?
        var terminated: JSON?
        var lastTerminated: JSON?
        var readinessSuccesses = 0
        var readinessFailures = 0
        var livenessFailures = 0
        /// Readiness and liveness each keep their own schedule (their own period and initial delay).
        var nextReadinessProbe = Date.distantPast
        var nextLivenessProbe = Date.distantPast
        var backoffUntil: Date?
        var backoff: TimeInterval = 0
        var readySince: String?
    }

    struct PodState {
        var uid: String
        var namespace: String
        var name: String
        var address: String
        var startTime: String
        var containers: [ContainerState]
        var started: Date
        var busy = false
    }

    var pods: [String: PodState] = [:]

    public init(store: Store, network: Network, runtime: PodRuntime, instance: String) {
        self.store = store
        self.network = network
        self.runtime = runtime
        self.instance = instance
    }

    public func run() async {
        while !Task.isCancelled {
            await pass()
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The container name of a pod's container: `ksim-<instance>-<namespace>-<pod>-<container>`.
    func containerName(_ pod: PodState, _ container: String) -> String {
        "ksim-\(instance)-\(pod.namespace)-\(pod.name)-\(container)"
    }

    public func pass() async {
        guard let podType = await store.catalog.find(group: "", resource: "pods") else { return }
        let all = await store.list(podType, namespace: nil).items.filter {
            $0[path: ["spec", "nodeName"]]?.string == Self.nodeName
        }
        let liveUIDs = Set(all.map { ControllerManager.uid($0) })
        let snapshot = await containerSnapshot()
        // Pods deleted outright: their containers go.
        for (uid, state) in pods where !liveUIDs.contains(uid) {
            pods[uid] = nil
            await stopContainers(state)
            await network.releaseAddress(state.address)
        }
        for pod in all {
            let uid = ControllerManager.uid(pod)
            if pod[path: ["metadata", "deletionTimestamp"]] != nil {
                if let state = pods[uid] {
                    if state.busy { continue }
                    pods[uid]?.busy = true
                    await stopContainers(state)
                    pods[uid] = nil
                    await network.releaseAddress(state.address)
                }
                _ = try? await store.delete(podType, namespace: ControllerManager.namespace(pod), name: ControllerManager.name(pod))
                continue
            }
            if pods[uid] == nil {
                await admit(pod)
            }
            guard var state = pods[uid], !state.busy else { continue }
            state = await advance(state, pod: pod, snapshot: snapshot)
            pods[uid] = state
            await report(state, pod: pod, podType: podType)
        }
    }

    /// Takes a new pod: gives it an address (or keeps the one it had before a restart).
    func admit(_ pod: JSON) async {
        let uid = ControllerManager.uid(pod)
        let address: String
        if let existing = pod[path: ["status", "podIP"]]?.string {
            address = existing
            await network.reserve(addresses: [existing], nodePorts: [])
        } else {
            address = await network.podAddress()
        }
        let containers = (pod[path: ["spec", "containers"]]?.array ?? []).map { container in
            ContainerState(name: container["name"]?.string ?? "", image: container["image"]?.string ?? "")
        }
        pods[uid] = PodState(
            uid: uid, namespace: ControllerManager.namespace(pod) ?? "default", name: ControllerManager.name(pod),
            address: address, startTime: pod[path: ["status", "startTime"]]?.string ?? Clock.timestamp(),
            containers: containers, started: Clock.parse(pod[path: ["status", "startTime"]]?.string) ?? Date())
    }

    // MARK: Lifecycle

    func advance(_ state: PodState, pod: JSON, snapshot: [String: (running: Bool, exitCode: Int)]?) async -> PodState {
        var state = state
        let specs = pod[path: ["spec", "containers"]]?.array ?? []
        let forcedUnready = Self.unreadyAnnotations.contains {
            pod[path: ["metadata", "annotations", $0]]?.string == "true"
        }
        for index in state.containers.indices {
            let spec = specs.first { $0["name"]?.string == state.containers[index].name } ?? [:]
            switch runtime {
            case .simulated(let readyAfter):
                state.containers[index] = simulate(state.containers[index], started: state.started, readyAfter: readyAfter)
            case .containers(let command, let environment):
                state.containers[index] = await manage(
                    state.containers[index], spec: spec, pod: state, command: command, environment: environment,
                    snapshot: snapshot)
            }
            if forcedUnready { state.containers[index].ready = false }
        }
        return state
    }

    func simulate(_ container: ContainerState, started: Date, readyAfter: Duration) -> ContainerState {
        var container = container
        let tag = container.image.split(separator: "/").last.map { String($0) } ?? container.image
        if tag.contains("bad") {
            if container.startedAt == nil { container.startedAt = Clock.timestamp() }
            let elapsed = Date().timeIntervalSince(started)
            let restarts = Int(elapsed / 10)
            if container.restartCount != restarts || container.waitingReason == nil {
                container.restartCount = restarts
                container.waitingReason = "CrashLoopBackOff"
                container.waitingMessage = "back-off 10s restarting failed container"
                container.lastTerminated = [
                    "exitCode": 1, "reason": "Error", "startedAt": .string(container.startedAt!),
                    "finishedAt": .string(container.startedAt!),
                ]
            }
            container.ready = false
            return container
        }
        if container.startedAt == nil { container.startedAt = Clock.timestamp() }
        let seconds = Double(readyAfter.components.seconds) + Double(readyAfter.components.attoseconds) / 1e18
        container.ready = Date().timeIntervalSince(started) >= seconds
        if container.ready, container.readySince == nil { container.readySince = Clock.timestamp() }
        return container
    }

    func docker(_ command: String, _ environment: [String: String], _ arguments: [String]) async -> (ok: Bool, output: String) {
        let spec = ProcessSpec(executable: command, arguments: arguments, environment: environment, timeout: .seconds(120))
        guard let result = try? await runner.capture(spec) else { return (false, "cannot run \(command)") }
        return (result.termination.succeeded, result.output)
    }

    /// Starts, watches, probes and restarts one real container.
    func manage(
        _ container: ContainerState, spec: JSON, pod: PodState, command: String, environment: [String: String],
        snapshot: [String: (running: Bool, exitCode: Int)]?
    ) async -> ContainerState {
        var container = container
        let name = containerName(pod, container.name)
        let now = Date()
        if container.containerID == nil {
            if let until = container.backoffUntil, now < until { return container }
            container.waitingReason =
                container.restartCount == 0 && container.lastTerminated == nil ? "ContainerCreating" : container.waitingReason
            _ = await docker(command, environment, ["rm", "-f", name])
            var arguments = ["run", "-d", "--name", name, "--label", "kube-sim.instance=\(instance)", "--label", "kube-sim.pod=\(pod.uid)"]
            for port in spec["ports"]?.array ?? [] {
                guard let number = port["containerPort"]?.int else { continue }
                arguments += ["-p", "\(pod.address):\(number):\(number)"]
            }
            for variable in spec["env"]?.array ?? [] {
                guard let key = variable["name"]?.string, let value = variable["value"]?.string else { continue }
                arguments += ["-e", "\(key)=\(value)"]
            }
            let entrypoint = (spec["command"]?.array ?? []).compactMap(\.string)
            if let first = entrypoint.first { arguments += ["--entrypoint", first] }
            arguments.append(container.image)
            arguments += entrypoint.dropFirst()
            arguments += (spec["args"]?.array ?? []).compactMap(\.string)
            let (ok, output) = await docker(command, environment, arguments)
            if ok {
                container.containerID = output.split(separator: "\n").last.map(String.init)
                container.startedAt = Clock.timestamp()
                container.waitingReason = nil
                container.waitingMessage = nil
                container.terminated = nil
                container.readinessFailures = 0
                container.readinessSuccesses = 0
                container.livenessFailures = 0
                container.nextReadinessProbe = now.addingTimeInterval(
                    Double(spec[path: ["readinessProbe", "initialDelaySeconds"]]?.int ?? 0))
                // The kubelet's first liveness probe comes one period in (plus any initial delay), so a
                // slow start is not a failure counted from the first instant.
                let liveness = spec["livenessProbe"]
                container.nextLivenessProbe = now.addingTimeInterval(
                    Double((liveness?["initialDelaySeconds"]?.int ?? 0) + (liveness?["periodSeconds"]?.int ?? 10)))
                container.ready = spec["readinessProbe"] == nil
                if container.ready { container.readySince = Clock.timestamp() }
            } else {
                let pullFailed = output.contains("pull") || output.contains("manifest") || output.contains("image")
                container.waitingReason =
                    pullFailed
                    ? (container.restartCount > 0 || container.waitingReason == "ErrImagePull" ? "ImagePullBackOff" : "ErrImagePull")
                    : "CreateContainerError"
                // The daemon's own words (`Error response from daemon: …`), not the CLI's usage hint.
                let lines = output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("Run '") }
                container.waitingMessage = lines.last { $0.localizedCaseInsensitiveContains("error") } ?? lines.last ?? output
                // Pulls back off as the kubelet does (5 s doubling to 60 s); a container that could
                // not be created (often a busy daemon) is tried again sooner (1 s doubling to 8 s).
                container.backoff = pullFailed ? min(max(container.backoff * 2, 5), 60) : min(max(container.backoff * 2, 1), 8)
                container.backoffUntil = now.addingTimeInterval(container.backoff)
                FileHandle.standardError.write(
                    Data(
                        "kube-sim: pod \(pod.namespace)/\(pod.name): \(container.waitingReason ?? ""): \(container.waitingMessage ?? "")\n"
                            .utf8))
            }
            return container
        }
        // Running: has it exited? (Only a listing that worked says so: a slow daemon is not an exit.)
        if let snapshot, snapshot[name]?.running != true {
            let exitCode = snapshot[name]?.exitCode ?? 137
            container.lastTerminated = [
                "exitCode": .int(exitCode), "reason": exitCode == 0 ? "Completed" : "Error",
                "startedAt": .string(container.startedAt ?? Clock.timestamp()), "finishedAt": .string(Clock.timestamp()),
                "containerID": .string("docker://\(container.containerID ?? "")"),
            ]
            await restart(&container, name: name, command: command, environment: environment)
            return container
        }
        // Probes, each on its own period.
        if let readiness = spec["readinessProbe"], now >= container.nextReadinessProbe {
            container.nextReadinessProbe = now.addingTimeInterval(Double(readiness["periodSeconds"]?.int ?? 10))
            let passed = await probe(readiness, spec: spec, pod: pod, name: name, command: command, environment: environment)
            if passed {
                container.readinessSuccesses += 1
                container.readinessFailures = 0
                if container.readinessSuccesses >= (readiness["successThreshold"]?.int ?? 1) {
                    if !container.ready { container.readySince = Clock.timestamp() }
                    container.ready = true
                }
            } else {
                container.readinessFailures += 1
                container.readinessSuccesses = 0
                if container.readinessFailures >= (readiness["failureThreshold"]?.int ?? 3) || !container.ready {
                    container.ready = false
                }
            }
        }
        if let liveness = spec["livenessProbe"], now >= container.nextLivenessProbe {
            container.nextLivenessProbe = now.addingTimeInterval(Double(liveness["periodSeconds"]?.int ?? 10))
            let passed = await probe(liveness, spec: spec, pod: pod, name: name, command: command, environment: environment)
            container.livenessFailures = passed ? 0 : container.livenessFailures + 1
            if container.livenessFailures >= (liveness["failureThreshold"]?.int ?? 3) {
                container.lastTerminated = [
                    "exitCode": 137, "reason": "Error", "startedAt": .string(container.startedAt ?? Clock.timestamp()),
                    "finishedAt": .string(Clock.timestamp()),
                ]
                _ = await docker(command, environment, ["rm", "-f", name])
                await restart(&container, name: name, command: command, environment: environment)
            }
        }
        return container
    }

    /// Every container of this instance and whether it runs (one listing per pass), or nil when
    /// the listing failed.
    func containerSnapshot() async -> [String: (running: Bool, exitCode: Int)]? {
        guard case .containers(let command, let environment) = runtime, !pods.isEmpty else { return nil }
        let (ok, output) = await docker(
            command, environment,
            ["ps", "-a", "--filter", "label=kube-sim.instance=\(instance)", "--format", "{{.Names}}\t{{.State}}\t{{.Status}}"])
        guard ok else { return nil }
        var result: [String: (running: Bool, exitCode: Int)] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count >= 2 else { continue }
            // `Exited (1) 3 seconds ago`
            var exitCode = 0
            if fields.count > 2, let open = fields[2].firstIndex(of: "("), let close = fields[2].firstIndex(of: ")") {
                exitCode = Int(fields[2][fields[2].index(after: open)..<close]) ?? 1
            }
            result[fields[0]] = (fields[1].lowercased().hasPrefix("running") || fields[1].lowercased().hasPrefix("up"), exitCode)
        }
        return result
    }

    /// A container that ended starts again after a back-off (10 s, doubling to 5 minutes), as CrashLoopBackOff.
    func restart(_ container: inout ContainerState, name: String, command: String, environment: [String: String]) async {
        _ = await docker(command, environment, ["rm", "-f", name])
        container.containerID = nil
        container.ready = false
        container.readySince = nil
        container.restartCount += 1
        container.backoff = container.backoff == 0 ? 10 : min(container.backoff * 2, 300)
        container.backoffUntil = Date().addingTimeInterval(container.backoff)
        container.waitingReason = "CrashLoopBackOff"
        container.waitingMessage = "back-off \(Int(container.backoff))s restarting failed container=\(container.name)"
    }

    func probe(
        _ probe: JSON, spec: JSON, pod: PodState, name: String, command: String, environment: [String: String]
    ) async -> Bool {
        let timeout = Double(probe["timeoutSeconds"]?.int ?? 1)
        if let http = probe["httpGet"] {
            let port = Self.port(http["port"], container: spec) ?? 80
            let path = http["path"]?.string ?? "/"
            return await Self.httpGet(host: pod.address, port: port, path: path, timeout: timeout)
        }
        if let tcp = probe["tcpSocket"] {
            let port = Self.port(tcp["port"], container: spec) ?? 80
            return await Self.connects(host: pod.address, port: port, timeout: timeout)
        }
        if let exec = probe[path: ["exec", "command"]]?.array?.compactMap(\.string), !exec.isEmpty {
            return await docker(command, environment, ["exec", name] + exec).ok
        }
        return true
    }

    /// A probe's port: a number, or the name of one of the container's ports.
    static func port(_ value: JSON?, container: JSON?) -> Int? {
        switch value {
        case .int(let number): return number
        case .string(let text):
            if let number = Int(text) { return number }
            let ports = container?["ports"]?.array ?? []
            return ports.first { $0["name"]?.string == text }?["containerPort"]?.int
        default: return nil
        }
    }

    /// A probe's HTTP GET: success is a status from 200 to 399, as the kubelet counts it.
    static func httpGet(host: String, port: Int, path: String, timeout: TimeInterval) async -> Bool {
        guard
            let response = await exchange(
                host: host, port: port, request: "GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nUser-Agent: kube-probe/1.28\r\n\r\n",
                timeout: timeout)
        else { return false }
        let statusLine = response.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let code = Int(parts[1]) else { return false }
        return (200..<400).contains(code)
    }

    static func connects(host: String, port: Int, timeout: TimeInterval) async -> Bool {
        await exchange(host: host, port: port, request: nil, timeout: timeout) != nil
    }

    /// Connects, optionally sends a request and reads the start of the answer.
    static func exchange(host: String, port: Int, request: String?, timeout: TimeInterval) async -> String? {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(timeout * 1000)))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        guard let request else { return "" }
                        try await outbound.write(ByteBuffer(string: request))
                        var text = ""
                        for try await chunk in inbound {
                            text += String(buffer: chunk)
                            if text.contains("\r\n") { break }
                        }
                        return text
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                if first == nil { try? await channel.channel.close() }
                return first
            }
        } catch {
            return nil
        }
    }

    func stopContainers(_ state: PodState) async {
        guard case .containers(let command, let environment) = runtime else { return }
        for container in state.containers {
            _ = await docker(command, environment, ["rm", "-f", containerName(state, container.name)])
        }
    }

    /// Removes every container this instance started (shutdown).
    public func stopAll() async {
        for (_, state) in pods { await stopContainers(state) }
        pods = [:]
        guard case .containers(let command, let environment) = runtime else { return }
        let (_, output) = await docker(command, environment, ["ps", "-aq", "--filter", "label=kube-sim.instance=\(instance)"])
        let ids = output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        if !ids.isEmpty { _ = await docker(command, environment, ["rm", "-f"] + ids) }
    }
}
