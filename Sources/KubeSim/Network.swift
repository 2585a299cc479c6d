public import Foundation

/// Loopback addresses for Services, load balancers and pods.
///
/// Every instance claims one block `127.B.0.0/16` (B recorded in its state directory, and claimed
/// machine-wide by a lock file naming its pid), so instances side by side never share an address:
/// `127.B.0.x` Service cluster IPs, `127.B.1.x` load-balancer and ingress addresses, `127.B.2-255.x` pods.
public actor Network {
    public let block: Int
    private var used: Set<String> = []
    private var nodePorts: Set<Int> = []
    private var nextPod = 0
    private let claimFile: URL

    public init(stateDirectory: URL, claims: URL = URL(fileURLWithPath: "/tmp/kube-sim-networks")) throws {
        try FileManager.default.createDirectory(at: claims, withIntermediateDirectories: true)
        let saved = stateDirectory.appendingPathComponent("network")
        var preferred = (try? String(contentsOf: saved, encoding: .utf8)).flatMap { Int($0.trimmingSpaces) }
        var chosen: Int?
        var candidates = Array(100...250).shuffled()
        if let preferred { candidates.insert(preferred, at: 0) }
        for candidate in candidates {
            let file = claims.appendingPathComponent("\(candidate)")
            if Self.claim(file) {
                chosen = candidate
                break
            }
        }
        guard let chosen else { throw CocoaError(.fileWriteFileExists) }
        preferred = chosen
        block = chosen
        claimFile = claims.appendingPathComponent("\(chosen)")
        try String(chosen).write(to: saved, atomically: true, encoding: .utf8)
    }

    /// Takes `file` for this process unless a live process holds it.
    private static func claim(_ file: URL) -> Bool {
        let me = String(getpid())
        if let holder = try? String(contentsOf: file, encoding: .utf8), let pid = Int32(holder.trimmingSpaces) {
            if pid != getpid(), kill(pid, 0) == 0 || errno == EPERM { return false }
            try? FileManager.default.removeItem(at: file)
        }
        let descriptor = open(file.path, O_CREAT | O_EXCL | O_WRONLY, 0o644)
        guard descriptor >= 0 else { return false }
        _ = me.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
        return true
    }

    public func release() {
        try? FileManager.default.removeItem(at: claimFile)
    }

    /// Marks addresses and node ports already recorded in objects (after a restart) as taken.
    public func reserve(addresses: [String], nodePorts ports: [Int]) {
        used.formUnion(addresses)
        nodePorts.formUnion(ports)
    }

    public func serviceAddress() -> String { next(third: 0) }
    /// Where Ingresses and HTTPRoutes are served: `127.B.1.254`.
    public nonisolated var edgeAddress: String { "127.\(block).1.254" }
    public func loadBalancerAddress() -> String { next(third: 1) }

    public func podAddress() -> String {
        for _ in 0..<(254 * 254) {
            nextPod = (nextPod + 1) % (254 * 254)
            let address = "127.\(block).\(2 + nextPod / 254).\(1 + nextPod % 254)"
            if used.insert(address).inserted { return address }
        }
        return "127.\(block).255.254"
    }

    public func releaseAddress(_ address: String) { used.remove(address) }

    private func next(third: Int) -> String {
        for host in 1...253 {
            let address = "127.\(block).\(third).\(host)"
            if used.insert(address).inserted { return address }
        }
        return "127.\(block).\(third).254"
    }

    public func nodePort() -> Int {
        var port = Int.random(in: 30000...32767)
        while nodePorts.contains(port) { port = Int.random(in: 30000...32767) }
        nodePorts.insert(port)
        return port
    }

    /// Fills a new Service's cluster IP and, for NodePort and LoadBalancer types, node ports.
    public func allocate(service: JSON) -> JSON {
        var service = service
        if service[path: ["spec", "clusterIP"]]?.string != "None" {
            let address = service[path: ["spec", "clusterIP"]]?.string ?? serviceAddress()
            service[path: ["spec", "clusterIP"]] = .string(address)
            service[path: ["spec", "clusterIPs"]] = [.string(address)]
        }
        let type = service[path: ["spec", "type"]]?.string
        if type == "NodePort" || type == "LoadBalancer", let ports = service[path: ["spec", "ports"]]?.array {
            service[path: ["spec", "ports"]] = .array(
                ports.map { port in
                    var port = port
                    if port["nodePort"] == nil { port["nodePort"] = .int(nodePort()) }
                    return port
                })
        }
        return service
    }
}
