import Foundation
import Slipway
import SlipwayCore
import SlipwayPipeline
import SlipwayProcess
import SlipwayStore
import SlipwayTestSupport
import Testing

/// Every built-in check of a checklist, holding and not holding, with the one line it says: real
/// files and git repositories, real HTTP and HTTPS servers (openssl s_server), a real run store.
@Suite("checklist checks", .timeLimit(.minutes(2)))
struct ChecklistCheckTests {
    static let pipelineYAML = """
        app: shop
        image: registry.example/shop
        environments:
          staging: {}
          production:
            promote_from: staging
            strategy: { canary: { steps: [10, 100] } }
            approval: { approvers: 2, distinct_from_trigger: true }
          rolling: { strategy: rolling }
        stages:
          - { name: sign-off, approval: production }
          - { name: production, deploy: production }
        """

    /// Inputs for a check against environment `environment` of the test pipeline.
    static func inputs(
        _ directory: String, environment: String = "production", manifests: String? = nil, image: String? = nil,
        version: String? = "1.2.0", store: (any DeployStore)? = nil, processEnvironment: [String: String] = [:],
        changelog: Changelog? = nil
    ) throws -> ChecklistInputs {
        let pipeline = try PipelineLoader.parse(yaml: pipelineYAML, file: "p.yml").pipeline
        var env = ProcessInfo.processInfo.environment
        for (name, value) in processEnvironment { env[name] = value }
        return ChecklistInputs(
            repository: directory, pipeline: pipeline, environment: try #require(pipeline.environment(named: environment)),
            manifests: manifests, release: Release(sha: String(repeating: "a", count: 40), version: version), image: image,
            changelog: changelog, processEnvironment: env, store: store, runID: 100)
    }

    static func evaluate(_ check: ChecklistCheck, _ inputs: ChecklistInputs) async -> CheckVerdict {
        await ChecklistChecks.evaluate(check, inputs: inputs)
    }

    // MARK: Manifests

    static func deployment(
        replicas: Int = 2, probes: Bool = true, readiness: Bool = true, limits: Bool = true, sidecar: String? = nil
    ) -> String {
        let indent = String(repeating: " ", count: 8)
        var containers = [
            "- name: web", "  image: registry.example/shop:1.0.0", "  resources:", "    requests: { cpu: 50m, memory: 32Mi }",
        ]
        if limits { containers.append("    limits: { cpu: 500m, memory: 128Mi }") }
        if probes { containers.append("  livenessProbe: { httpGet: { path: /health, port: 8080 } }") }
        if readiness { containers.append("  readinessProbe: { httpGet: { path: /health, port: 8080 } }") }
        if let sidecar {
            containers += [
                "- name: proxy", "  image: \(sidecar)",
                "  resources: { requests: { cpu: 10m, memory: 8Mi }, limits: { cpu: 100m, memory: 32Mi } }",
                "  livenessProbe: { tcpSocket: { port: 9000 } }", "  readinessProbe: { tcpSocket: { port: 9000 } }",
            ]
        }
        return """
            apiVersion: apps/v1
            kind: Deployment
            metadata: { name: shop }
            spec:
              replicas: \(replicas)
              selector: { matchLabels: { app: shop } }
              template:
                metadata: { labels: { app: shop } }
                spec:
                  containers:

            """ + containers.map { indent + $0 + "\n" }.joined() + """
                ---
                apiVersion: v1
                kind: Service
                metadata: { name: shop }
                spec: { selector: { app: shop }, ports: [{ port: 80, targetPort: 8080 }] }

                """
    }

    static func manifests(_ yaml: String) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory("checklist-manifests")
        try directory.write("k8s/app.yaml", yaml)
        return (directory, "k8s")
    }

    @Test("probes: every container has liveness and readiness probes, or the one without is named")
    func probes() async throws {
        let (good, path) = try Self.manifests(Self.deployment())
        defer { good.remove() }
        let passed = await Self.evaluate(.probes(startup: false), try Self.inputs(good.path, manifests: path))
        #expect(passed == .pass("1 container in k8s have liveness and readiness probes"))
        let (bad, _) = try Self.manifests(Self.deployment(readiness: false))
        defer { bad.remove() }
        let failed = await Self.evaluate(.probes(startup: false), try Self.inputs(bad.path, manifests: path))
        #expect(failed == .fail("k8s: Deployment/shop container web has no readinessProbe: add them to the container spec"))
        let startup = await Self.evaluate(.probes(startup: true), try Self.inputs(good.path, manifests: path))
        #expect(startup == .fail("k8s: Deployment/shop container web has no startupProbe: add them to the container spec"))
    }

    @Test("resources: requests and limits of CPU and memory, or what is missing")
    func resources() async throws {
        let (good, path) = try Self.manifests(Self.deployment())
        defer { good.remove() }
        #expect(
            await Self.evaluate(.resources, try Self.inputs(good.path, manifests: path))
                == .pass("1 container in k8s request and limit CPU and memory"))
        let (bad, _) = try Self.manifests(Self.deployment(limits: false))
        defer { bad.remove() }
        #expect(
            await Self.evaluate(.resources, try Self.inputs(bad.path, manifests: path))
                == .fail("k8s: Deployment/shop container web sets no limits.cpu, limits.memory: add them under `resources:`"))
    }

    @Test("manifests and replicas: what renders, and a Deployment with too few replicas")
    func manifestsAndReplicas() async throws {
        let (good, path) = try Self.manifests(Self.deployment(replicas: 2))
        defer { good.remove() }
        let inputs = try Self.inputs(good.path, manifests: path)
        #expect(await Self.evaluate(.manifests, inputs) == .pass("k8s renders: Deployment shop (2 replicas), Service shop"))
        #expect(await Self.evaluate(.replicas(minimum: 2), inputs) == .pass("Deployment shop runs 2 replicas (at least 2)"))
        #expect(
            await Self.evaluate(.replicas(minimum: 3), inputs)
                == .fail("k8s: Deployment shop runs 2 replicas, fewer than 3: raise spec.replicas"))
        let (broken, _) = try Self.manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n")
        defer { broken.remove() }
        let failed = await Self.evaluate(.manifests, try Self.inputs(broken.path, manifests: path))
        #expect(!failed.passed)
        #expect(failed.detail.hasPrefix("k8s does not render: "))
        let none = await Self.evaluate(.probes(startup: false), try Self.inputs(good.path))
        #expect(none == .fail("no manifests to read: give the checklist `manifests:`"))
    }

    @Test("pinned_images: the release by digest and every other image by digest; a tag or :latest is named")
    func pinnedImages() async throws {
        let digest = "sha256:" + String(repeating: "b", count: 64)
        let (good, path) = try Self.manifests(Self.deployment(sidecar: "registry.example/proxy@\(digest)"))
        defer { good.remove() }
        let release = "registry.example/shop@\(digest)"
        let passed = await Self.evaluate(.pinnedImages, try Self.inputs(good.path, manifests: path, image: release))
        #expect(passed == .pass("2 images pinned by digest: \(release), registry.example/proxy@\(digest)"))
        let (latest, _) = try Self.manifests(Self.deployment(sidecar: "envoyproxy/envoy:latest"))
        defer { latest.remove() }
        let failed = await Self.evaluate(.pinnedImages, try Self.inputs(latest.path, manifests: path, image: release))
        #expect(
            failed
                == .fail(
                    "Deployment/shop container proxy runs envoyproxy/envoy:latest, the moving :latest tag: pin each image by digest (image@sha256:…) in k8s"
                ))
        let unbuilt = await Self.evaluate(.pinnedImages, try Self.inputs(good.path))
        #expect(
            unbuilt
                == .fail(
                    "this run has no image yet (built and pushed images are pinned by digest): run the build and push stages first: pin each image by digest (image@sha256:…)"
                ))
        let tagged = await Self.evaluate(.pinnedImages, try Self.inputs(good.path, image: "registry.example/shop:1.2.0"))
        #expect(tagged.detail.hasPrefix("the release runs registry.example/shop:1.2.0, a tag, not a digest"))
    }

    // MARK: Endpoints

    @Test("http: the endpoint answers as expected, or what it answered")
    func http() async throws {
        let server = try WebhookServer(statuses: [200], responseBody: "ok\n")
        defer { server.stop() }
        let inputs = try Self.inputs("/tmp")
        let passed = await Self.evaluate(.http(url: server.url, status: 200, body: "ok", within: nil), inputs)
        #expect(passed.passed)
        #expect(passed.detail.hasPrefix("GET \(server.url): 200 in "))
        let failing = try WebhookServer(statuses: [503], responseBody: "down\n")
        defer { failing.stop() }
        let failed = await Self.evaluate(.http(url: failing.url, status: 200, body: nil, within: nil), inputs)
        #expect(!failed.passed)
        #expect(failed.detail.hasPrefix("GET \(failing.url): 503 in "))
        #expect(failed.detail.hasSuffix(", expected 200: check that the release is deployed and serving there"))
        let path = await Self.evaluate(.http(url: "/health", status: nil, body: nil, within: nil), inputs)
        #expect(path == .fail("/health is a path, and environment production has no URL to take it on"))
    }

    @Test("metrics: the Prometheus text format, or the line that is not")
    func metrics() async throws {
        let good = try WebhookServer(
            statuses: [200],
            responseBody: """
                # HELP requests_total Requests.
                # TYPE requests_total counter
                requests_total{path="/",status="200"} 12
                # TYPE latency_seconds histogram
                latency_seconds_bucket{le="+Inf"} 12
                latency_seconds_sum 0.3
                latency_seconds_count 12

                """)
        defer { good.stop() }
        let inputs = try Self.inputs("/tmp")
        let exposed = await Self.evaluate(.metrics(url: good.url), inputs)
        #expect(exposed == .pass("GET \(good.url): 2 metric families, 4 samples"))
        let html = try WebhookServer(statuses: [200], responseBody: "<html>dashboard</html>\n")
        defer { html.stop() }
        #expect(
            await Self.evaluate(.metrics(url: html.url), inputs)
                == .fail(
                    "GET \(html.url): not the Prometheus text format: line 1 '<html>dashboard</html>' is neither a comment nor a sample"))
        let missing = try WebhookServer(statuses: [404], responseBody: "not found\n")
        defer { missing.stop() }
        #expect(
            await Self.evaluate(.metrics(url: missing.url), inputs)
                == .fail("GET \(missing.url) answered 404: expose Prometheus metrics there"))
    }

    @Test("tls: a certificate valid long enough, one about to expire, and nothing serving HTTPS")
    func tls() async throws {
        let year = try await TLSServer.start(days: 365)
        let inputs = try Self.inputs("/tmp")
        let passed = await Self.evaluate(.tls(url: year.url, minimumDays: 30), inputs)
        #expect(passed.passed)
        #expect(passed.detail.hasPrefix("the certificate of 127.0.0.1:\(year.port) (CN=slipway-test) is valid until "))
        await year.stop()
        let soon = try await TLSServer.start(days: 5)
        let failed = await Self.evaluate(.tls(url: soon.url, minimumDays: 30), inputs)
        #expect(!failed.passed)
        #expect(failed.detail.hasPrefix("the certificate of 127.0.0.1:\(soon.port) (CN=slipway-test) expires on "))
        #expect(failed.detail.hasSuffix(" days (at least 30 required): renew it"))
        await soon.stop()
        let port = try ContainerServices.freePort()
        #expect(
            await Self.evaluate(.tls(url: "https://127.0.0.1:\(port)", minimumDays: 30), inputs)
                == .fail("no TLS answer from 127.0.0.1:\(port) (connection refused): is HTTPS served there?"))
    }

    // MARK: Repository

    @Test("documents: present and not empty; a missing one and a headings-only one are named")
    func documents() async throws {
        let directory = try TemporaryDirectory("checklist-docs")
        defer { directory.remove() }
        try directory.write("README.md", "# Shop\n\nSells things.\nOn port 8080.\n")
        try directory.write("RUNBOOK.md", "# Runbook\n\n## Alerts\n")
        let inputs = try Self.inputs(directory.path)
        #expect(await Self.evaluate(.documents(["README.md"]), inputs) == .pass("README.md (2 lines)"))
        #expect(
            await Self.evaluate(.documents(["README.md", "RUNBOOK.md", "CHANGELOG.md"]), inputs)
                == .fail("RUNBOOK.md is empty (headings only); CHANGELOG.md does not exist: write it and commit it"))
    }

    @Test("no_secrets: a clean repository passes; a key is reported by file, line and kind, never shown")
    func noSecrets() async throws {
        let repo = try await GitFixture("checklist-secrets")
        defer { repo.remove() }
        try repo.directory.write("app/config.env", "PORT=8080\nLOG=info\n")
        try repo.directory.write("app/settings.py", "password = os.environ[\"DB_PASSWORD\"]\ntoken = \"changeme-example\"\n")
        try await repo.git("add", "-A")
        try await repo.git("commit", "-qm", "config")
        let inputs = try Self.inputs(repo.path)
        let clean = await Self.evaluate(.noSecrets(paths: []), inputs)
        #expect(clean == .pass("no secret-looking strings in 2 files"))
        // Built here, so that no key sits in this repository's own files.
        let key = "AKIA" + "QWERTYUIOPASDFGH"
        let password = "hunter2" + "hunter2"
        try repo.directory.write("app/config.env", "PORT=8080\nAWS_ACCESS_KEY_ID=\(key)\n")
        try repo.directory.write("app/db.yaml", "db:\n  password: \"\(password)\"\n")
        try await repo.git("add", "-A")
        try await repo.git("commit", "-qm", "oops")
        let failed = await Self.evaluate(.noSecrets(paths: ["app"]), inputs)
        #expect(
            failed
                == .fail(
                    "app/config.env:2: an AWS access key id; app/db.yaml:2: a password, secret or token written as a literal: move secrets to the environment or a secret store (`secrets:` in the pipeline), and rotate them"
                ))
        #expect(!failed.detail.contains(key) && !failed.detail.contains(password))
    }

    @Test("pinned_dependencies: lock files, pinned requirements and base images by digest; each loose one named")
    func pinnedDependencies() async throws {
        let directory = try TemporaryDirectory("checklist-deps")
        defer { directory.remove() }
        try directory.write("svc/Package.swift", "// swift-tools-version:6.0\n")
        try directory.write("svc/Package.resolved", "{}\n")
        try directory.write("svc/requirements.txt", "flask==3.0.2\n# a comment\n-r base.txt\n")
        try directory.write(
            "svc/Containerfile", "FROM docker.io/library/alpine@sha256:\(String(repeating: "c", count: 64)) AS build\nFROM build\n")
        let inputs = try Self.inputs(directory.path)
        #expect(
            await Self.evaluate(.pinnedDependencies(path: "svc"), inputs)
                == .pass("pinned: svc/Containerfile, svc/Package.swift by Package.resolved, svc/requirements.txt"))
        try directory.write("web/package.json", "{}\n")
        try directory.write("web/requirements.txt", "flask>=2\nrequests==2.31.0\n")
        try directory.write("web/Dockerfile", "FROM python:3.12\n")
        #expect(
            await Self.evaluate(.pinnedDependencies(path: "web"), inputs)
                == .fail(
                    "web/Dockerfile:1 FROM python:3.12 is not pinned by digest (write python:3.12@sha256:…); web/package.json has no lock file (package-lock.json, npm-shrinkwrap.json, yarn.lock, pnpm-lock.yaml, bun.lockb); web/requirements.txt:1 'flask>=2' not pinned with =="
                ))
    }

    // MARK: Release

    @Test("changelog: commits since the last good release, or none")
    func changelog() async throws {
        let repo = try await GitFixture("checklist-changelog")
        defer { repo.remove() }
        _ = try await repo.commit("feat: first")
        _ = try await repo.commit("fix: second", file: "b.txt")
        let log = try await SlipwayTests.changelog(at: repo.path)
        let passed = await Self.evaluate(.changelog, try Self.inputs(repo.path, changelog: log))
        #expect(passed.passed)
        #expect(passed.detail.hasPrefix("2 commits since "))
        let empty = try await SlipwayTests.changelog(at: repo.path, since: "HEAD")
        let failed = await Self.evaluate(.changelog, try Self.inputs(repo.path, changelog: empty))
        #expect(!failed.passed)
        #expect(failed.detail.hasSuffix(": there is nothing new to release"))
        #expect(
            await Self.evaluate(.changelog, try Self.inputs(repo.path))
                == .fail("this run has no changelog (is the pipeline in a git repository?): `deploy changelog` shows why"))
    }

    @Test("rollback_rehearsal: the last rehearsal of this release passed, failed, or never ran")
    func rehearsal() async throws {
        let directory = try TemporaryDirectory("checklist-store")
        defer { directory.remove() }
        let store = try RunStore(path: directory.file("state.sqlite"))
        let sha = String(repeating: "a", count: 40)
        func run(_ environment: String, sha: String?) async throws -> RunRecord {
            try await store.insert(
                RunRecord(
                    pipeline: "p.yml", app: "shop", environment: environment, trigger: Trigger(user: "ada"), sha: sha, version: "1.2.0",
                    startedAt: Date(), ownerPID: getpid(), ownerHost: "h"))
        }
        let inputs = try Self.inputs(directory.path, store: store)
        #expect(
            await Self.evaluate(.rollbackRehearsal(environment: nil), inputs)
                == .fail("no rollback rehearsal of 1.2.0 (aaaaaaa) in staging: set `rehearse_rollback: true` on staging"))
        let first = try await run("staging", sha: sha)
        try await store.recordRehearsal(runID: first.id, outcome: .failed, milliseconds: 900, at: Date())
        #expect(
            await Self.evaluate(.rollbackRehearsal(environment: "staging"), inputs)
                == .fail(
                    "run \(first.id)'s rollback rehearsal in staging failed (rolled back in 900 ms): `deploy show \(first.id)` says why"))
        let second = try await run("staging", sha: sha)
        try await store.recordRehearsal(runID: second.id, outcome: .passed, milliseconds: 120, at: Date())
        #expect(
            await Self.evaluate(.rollbackRehearsal(environment: nil), inputs)
                == .pass("run \(second.id) rehearsed the rollback of 1.2.0 (aaaaaaa) in staging: passed (rolled back in 120 ms)"))
    }

    @Test("previous_image: the last good release's image is still there, gone, or there is none yet")
    func previousImage() async throws {
        let directory = try TemporaryDirectory("checklist-previous")
        defer { directory.remove() }
        let store = try RunStore(path: directory.file("state.sqlite"))
        // A docker CLI that knows one image, as `docker image inspect` and `docker pull` answer.
        let docker = try directory.write(
            "docker",
            """
            #!/bin/sh
            [ "$1" = image ] && [ "$2" = inspect ] && [ "$5" = "registry.example/shop@sha256:kept" ] && { echo sha256:kept; exit 0; }
            echo "Error: $*: no such image" >&2
            exit 1

            """, executable: true)
        let inputs = try Self.inputs(directory.path, store: store, processEnvironment: ["DOCKER": docker])
        #expect(
            await Self.evaluate(.previousImage, inputs)
                == .pass("production has no earlier good release: there is nothing to roll back to yet"))
        func good(_ image: String) async throws -> RunRecord {
            let run = try await store.insert(
                RunRecord(
                    pipeline: "p.yml", app: "shop", environment: "production", trigger: Trigger(user: "ada"), sha: "b", version: "1.1.0",
                    startedAt: Date(), ownerPID: getpid(), ownerHost: "h"))
            try await store.recordImage(runID: run.id, reference: image, at: Date())
            try await store.finish(runID: run.id, outcome: .succeeded, exitCode: 0, reason: nil, at: Date())
            return run
        }
        let kept = try await good("registry.example/shop@sha256:kept")
        #expect(
            await Self.evaluate(.previousImage, inputs)
                == .pass("registry.example/shop@sha256:kept (run \(kept.id), 1.1.0) is still there for a rollback"))
        let gone = try await good("registry.example/shop@sha256:gone")
        #expect(
            await Self.evaluate(.previousImage, inputs)
                == .fail(
                    "registry.example/shop@sha256:gone, the image of production's last good release (run \(gone.id)), is gone: a rollback cannot run it; keep it in the registry"
                ))
    }

    @Test("semver, strategy and approval: the release's version and the environment's settings")
    func releaseSettings() async throws {
        let inputs = try Self.inputs("/tmp")
        #expect(await Self.evaluate(.semver, inputs) == .pass("version 1.2.0 is a semantic version"))
        #expect(
            await Self.evaluate(.semver, try Self.inputs("/tmp", version: "nightly-7"))
                == .fail(
                    "version 'nightly-7' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.2): tag releases as vMAJOR.MINOR.PATCH"))
        #expect(await Self.evaluate(.strategy(["blue_green", "canary"]), inputs) == .pass("production deploys canary"))
        #expect(
            await Self.evaluate(.strategy(["blue_green", "canary"]), try Self.inputs("/tmp", environment: "rolling"))
                == .fail("rolling deploys with strategy rolling, not blue_green or canary: set `strategy:` on it in p.yml"))
        #expect(
            await Self.evaluate(.approval, inputs)
                == .pass("stage sign-off waits for 2 approvers, not the person who started it before production changes"))
        #expect(
            await Self.evaluate(.approval, try Self.inputs("/tmp", environment: "staging"))
                == .fail(
                    "staging deploys without a person's approval: add `- { name: sign-off, approval: staging }` before its deploy stage"))
    }

    @Test("run and sh: the team's own tool; exit 0 passes, anything else says how it ended and what it said")
    func commands() async throws {
        let inputs = try Self.inputs("/tmp")
        #expect(
            await Self.evaluate(.run(["echo", "all 12 tests passed"], timeout: nil), inputs)
                == .pass("echo 'all 12 tests passed' passed: all 12 tests passed"))
        // Both lines on one stream: lines of stdout and stderr arrive in whichever order the two
        // pipes are read.
        #expect(
            await Self.evaluate(.sh("echo checking >&2; echo 'coverage 71% < 80%' >&2; exit 3", timeout: nil), inputs)
                == .fail("the sh script ended with exit 3: checking | coverage 71% < 80%"))
        let missing = await Self.evaluate(.run(["/nonexistent/tool"], timeout: nil), inputs)
        #expect(!missing.passed)
        #expect(missing.detail.hasPrefix("/nonexistent/tool could not run: "))
        #expect(
            await Self.evaluate(.gate("health"), inputs) == .fail("gate health cannot run here: no environment to check it against"))
    }
}
