import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The docker target on a bad night: the run store lost, deploys killed at exact moments, nginx's
/// master killed, the proxy directory read-only, podman's API stopped mid-bake, and the on-call
/// engineer's new shell with no DOCKER_HOST. Real podman, registry and nginx; part of the docker
/// suite, so these run one after another with its other tests.
extension DockerTargetTests {
    @Test("a lost run store: no request fails, the serving container is never touched, and its release stays in the history label")
    func lostRunStore() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            project.deleteRunStore()
            // The new store numbers runs from 1 again, as the one that started what serves did.
            try await project.release("1.1.0")
            let loop: RequestLoop
            (result, loop) = try await RequestLoop.around("http://127.0.0.1:\(project.staging)") {
                try await project.deploy("staging")
            }
            try #require(result.status == 0, "\(result.output)")
            let seen = loop.results.with { $0 }
            #expect(seen.failed == 0, "\(seen.failed) of \(seen.ok + seen.failed) requests failed")
            #expect(seen.versions.last == "1.1.0", "versions seen: \(seen.versions)")
            // The new container's record names the release that served before it.
            let names = try await project.containers()
            try #require(names.count == 1, "containers: \(names)")
            let history = try await project.label(names[0], "io.slipway.good-history")
            #expect(history.contains("\"version\":\"1.0.0\""), "good-history label: \(history)")
            // So a rollback still finds 1.0.0, which the new store never saw.
            result = try await project.deploy("rollback", "staging", "--reason", "store was lost")
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
        }
    }

    @Test("SIGKILL before the switch, and at the first canary step: deploy rollback leaves the last good release serving all traffic")
    func killedBeforeSwitchAndMidCanary() async throws {
        try await Project.with(strategy: "{ canary: { steps: [25, 50, 100] } }", stagingGates: "[health]") { project in
            try await project.ship()
            try await project.release("1.1.0")
            // Killed once 1.1.0 answers, before any traffic moves.
            try await project.deploy(killedAt: "started", "staging")
            let status = try await project.deploy("status", "staging")
            #expect(status.output.contains("interrupted"), "\(status.output)")
            #expect(status.output.contains("that process is gone"), "\(status.output)")
            var result = try await project.deploy("rollback", "staging", "--reason", "deploy died")
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("1.0.0 (run 1) already serves all traffic"), "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            #expect(try await project.containers(in: "staging").count == 1)

            result = try await project.deploy("unpin", "staging", "--reason", "try again")
            try #require(result.status == 0, "\(result.output)")
            result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            // Killed at the first canary step: 1.1.0 takes 25 %, 1.0.0 the rest.
            try await project.deploy(killedAt: "moved", "production")
            #expect(try project.routes("production").count == 2)
            result = try await project.deploy("rollback", "production", "--reason", "deploy died mid-canary")
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("takes 75% of traffic: giving it all of it"), "\(result.output)")
            #expect(try project.routes("production") == ["1.0.0 100"])
            #expect(await Self.get(project.production, "/version")?.body == "1.0.0")
            #expect(try await project.containers(in: "production").count == 1)
        }
    }

    @Test("nginx's master killed: status says its worker is orphaned, and a deploy and a rollback replace it")
    func nginxMasterKilled() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            var orphans = try await project.killNginxMaster("staging")
            // The orphaned worker still serves.
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            let status = try await project.deploy("status", "staging")
            #expect(status.output.contains("orphaned worker"), "\(status.output)")

            try await project.release("1.1.0")
            result = try await project.deploy("staging")
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.1.0")
            #expect(orphans.allSatisfy { ProcessWatch.waitForExit($0, timeout: .seconds(10)) }, "orphaned workers still run: \(orphans)")

            orphans = try await project.killNginxMaster("staging")
            result = try await project.deploy("rollback", "staging", "--reason", "nginx died")
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            #expect(orphans.allSatisfy { ProcessWatch.waitForExit($0, timeout: .seconds(10)) }, "orphaned workers still run: \(orphans)")
            // What state.json names is what runs.
            let names = try await project.containers(in: "staging")
            #expect(try project.routedContainers("staging").allSatisfy(names.contains), "routed vs running: \(names)")
        }
    }

    @Test("a proxy directory that cannot be written: exit 1 naming the path and the reason, traffic untouched, nothing left")
    func readOnlyProxyDirectory() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            try await project.release("1.1.0")
            let proxy = project.repo.directory.file(".slipway/proxy/staging")
            try await Self.setWritable(proxy, false)
            result = try await project.deploy("staging")
            try await Self.setWritable(proxy, true)
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains(proxy), "\(result.output)")
            #expect(result.output.contains("Operation not permitted") || result.output.contains("Permission denied"), "\(result.output)")
            #expect(!result.output.contains("NSCocoaErrorDomain"), "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            #expect(try await project.containers(in: "staging").count == 1)
        }
    }

    @Test("podman's API stopped during the bake: the run succeeds with a recorded warning, and the next command removes what was left")
    func podmanStoppedDuringBake() async throws {
        // Services of its own: this test stops them.
        try await ContainerServices.with { services in
            let project = try await Project.make(
                services, strategy: "{ blue_green: { bake: 1s } }", stagingGates: "[health, stop_podman]",
                moreGates: """
                      # Stops podman's API service when the test asks (a file in .slipway/).
                      stop_podman: { command: [sh, -c, "if [ -e .slipway/stop-podman ]; then rm .slipway/stop-podman; kill $(cat \(services.podmanPIDFile)); fi"] }
                    """)
            do {
                var result = try await project.deploy("staging")
                try #require(result.status == 0, "\(result.output)")
                try await project.release("1.1.0")
                let podman = try #require(
                    Int32(
                        try String(contentsOfFile: services.podmanPIDFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
                )
                try project.repo.directory.write(".slipway/stop-podman", "now\n")
                result = try await project.deploy("staging")
                #expect(result.status == 0, "\(result.output)")
                #expect(result.output.contains("was left behind"), "\(result.output)")
                #expect(await Self.get(project.staging, "/version")?.body == "1.1.0")
                let history = try await project.deploy("history", "staging", "--json")
                let runs = try #require(try JSONSerialization.jsonObject(with: Data(history.output.utf8)) as? [[String: Any]])
                let run = try #require(runs.first?["id"] as? Int)
                #expect(runs.first?["outcome"] as? String == "succeeded")
                let shown = try await project.deploy("show", String(run), "--json")
                #expect(shown.output.contains("cleanup.failed"), "\(shown.output)")
                #expect(ProcessWatch.waitForExit(podman, timeout: .seconds(20)), "podman's service \(podman) did not stop")
                try await services.start()
                #expect(try await project.containers(in: "staging").count == 2)
                // The next command that can (a rollback here) removes it.
                result = try await project.deploy("rollback", "staging", "--reason", "check cleanup")
                #expect(result.status == 0, "\(result.output)")
                #expect(try await project.containers(in: "staging").count == 1)
            } catch {
                await project.tearDown()
                throw error
            }
            await project.tearDown()
        }
    }

    @Test(
        "status, rollback and teardown from a shell with no DOCKER_HOST reach the daemon the deploy used; then rollback says nothing serves"
    )
    func noDockerHostInTheShell() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            try await project.release("1.1.0")
            result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            let shell = ["DOCKER_HOST", "DOCKER", "CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF"]
            let status = try await runDeploy(["status", "staging"], in: project.repo.path, unsetting: shell)
            #expect(status.output.contains("serving     1.1.0"), "\(status.output)")
            #expect(!status.output.contains("problem"), "\(status.output)")
            result = try await runDeploy(["rollback", "staging", "--reason", "3 a.m."], in: project.repo.path, unsetting: shell)
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            result = try await runDeploy(["teardown", "staging"], in: project.repo.path, unsetting: shell)
            #expect(result.status == 0, "\(result.output)")
            #expect(try await project.containers(in: "staging").isEmpty)
            // With the store gone too, a rollback says that nothing serves and how to deploy by name.
            project.deleteRunStore()
            result = try await runDeploy(["rollback", "staging", "--reason", "anything?"], in: project.repo.path, unsetting: shell)
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("nothing serves staging"), "\(result.output)")
            #expect(result.output.contains("deploy staging --release VERSION"), "\(result.output)")
        }
    }

    @Test("SIGKILL between nginx's reload and its confirmation: status reads what nginx runs, and rollback goes back from there")
    func killedBeforeConfirmation() async throws {
        try await Project.with(strategy: "{ blue_green: { bake: 1s } }") { project in
            var result = try await project.deploy("staging")
            try #require(result.status == 0, "\(result.output)")
            try await project.release("1.1.0")
            // Killed just after nginx was sent the switch to 1.1.0: state.json still says 1.0.0.
            try await project.deploy(killedAt: "reloaded", "staging")
            #expect(try project.routes("staging") == ["1.0.0 100"])
            let pending = try project.pendingGeneration("staging")
            // nginx takes the configuration it was sent (its own header says which generation serves).
            #expect(await Self.waitForGeneration(project.staging, pending), "nginx never served generation \(pending)")
            let status = try await project.deploy("status", "staging")
            #expect(status.output.contains("serving     1.1.0"), "\(status.output)")
            #expect(try project.routes("staging") == ["1.1.0 100"], "state.json was not brought up to what nginx serves")
            result = try await project.deploy("rollback", "staging", "--reason", "deploy died mid-switch")
            #expect(result.status == 0, "\(result.output)")
            #expect(await Self.get(project.staging, "/version")?.body == "1.0.0")
            #expect(try project.routes("staging") == ["1.0.0 100"])
        }
    }

    /// Asks until nginx answers with `generation` in its X-Slipway-Generation header (at most 200
    /// requests, each a fresh connection): a wait on nginx's own state, not on time.
    static func waitForGeneration(_ port: UInt16, _ generation: Int) async -> Bool {
        for _ in 0..<200 {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/version")!)
            request.setValue("close", forHTTPHeaderField: "Connection")
            if let (_, response) = try? await URLSession.shared.data(for: request),
                (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "X-Slipway-Generation") == String(generation)
            {
                return true
            }
        }
        return false
    }

    /// Makes a directory unwritable, even for root (`chattr +i`), or writable again.
    static func setWritable(_ path: String, _ writable: Bool) async throws {
        if getuid() == 0 {
            _ = try await GitFixture.run(["chattr", writable ? "-i" : "+i", path], in: "/")
        } else {
            chmod(path, writable ? 0o755 : 0o555)
        }
    }
}

extension DockerTargetTests.Project {
    /// Runs `deploy` with `SLIPWAY_KILL_AT=point` (a debug build's fault point): it kills itself with
    /// SIGKILL at exactly that moment of the rollout.
    func deploy(killedAt point: String, _ arguments: String...) async throws {
        var environment = self.environment
        environment["SLIPWAY_KILL_AT"] = point
        let child = try DeployProcess(arguments: arguments, directory: repo.path, environment: environment)
        let termination = try await child.wait()
        try #require(termination == .signalled(SIGKILL), "deploy was not killed at \(point): \(child.output.joined(separator: "\n"))")
    }

    /// Deletes the run store (and its journal files), as a lost disk or a careless `rm` would.
    func deleteRunStore() {
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: repo.directory.file(".slipway/state.sqlite\(suffix)"))
        }
    }

    /// The containers of one environment.
    func containers(in environmentName: String) async throws -> [String] {
        let docker = environment["DOCKER"] ?? "docker"
        let names = try await GitFixture.run(
            [
                docker, "ps", "-a", "--format", "{{.Names}}", "--filter", "label=io.slipway.app=\(app)", "--filter",
                "label=io.slipway.environment=\(environmentName)",
            ], in: repo.path, environment: environment)
        return names.split(separator: "\n").map(String.init)
    }

    func label(_ container: String, _ name: String) async throws -> String {
        let docker = environment["DOCKER"] ?? "docker"
        return try await GitFixture.run(
            [docker, "inspect", "--format", "{{index .Config.Labels \"\(name)\"}}", container], in: repo.path, environment: environment)
    }

    /// nginx's confirmed routes for an environment (`1.0.0 100`), from its state.json.
    func routes(_ environmentName: String) throws -> [String] {
        try backends(environmentName).map {
            "\(($0["release"] as? [String: Any])?["version"] as? String ?? "?") \($0["weight"] as? Int ?? 0)"
        }
    }

    /// The generation of a switch written but not confirmed (`state.json.next`).
    func pendingGeneration(_ environmentName: String) throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: repo.directory.file(".slipway/proxy/\(environmentName)/state.json.next")))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(state["generation"] as? Int)
    }

    func routedContainers(_ environmentName: String) throws -> [String] {
        try backends(environmentName).compactMap { $0["container"] as? String }
    }

    private func backends(_ environmentName: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: repo.directory.file(".slipway/proxy/\(environmentName)/state.json")))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return state["backends"] as? [[String: Any]] ?? []
    }

    /// Kills an environment's nginx master with SIGKILL, leaving its workers; returns their pids.
    func killNginxMaster(_ environmentName: String) async throws -> [Int32] {
        let text = try String(contentsOfFile: repo.directory.file(".slipway/proxy/\(environmentName)/nginx.pid"), encoding: .utf8)
        let master = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        let workers = ProcessWatch.children(of: master)
        try #require(!workers.isEmpty, "nginx \(master) has no workers")
        kill(master, SIGKILL)
        try #require(ProcessWatch.waitForExit(master, timeout: .seconds(10)), "nginx's master \(master) did not die")
        return workers
    }
}
