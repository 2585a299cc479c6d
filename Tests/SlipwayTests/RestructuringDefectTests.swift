import Foundation
import Slipway
import SlipwayStore
import SlipwayTestSupport
import Testing

/// Defects found while restructuring the engine (issue 9), each with the test that failed before.
@Suite("Restructuring defects")
struct RestructuringDefectTests {
    /// A pipeline whose staging deploys to a docker target; `DOCKER` names a missing binary, so a
    /// deploy stage that gets as far as docker fails there, after the run has recorded its release.
    static let dockerPipeline = """
        app: hello
        image: 127.0.0.1:5000/hello
        environments:
          staging: { target: { docker: { listen: "127.0.0.1:9" } } }
        stages:
          - { name: test, sh: "echo tested >> $DIR/ran" }
          - { name: build, build: { context: . } }
          - { name: push, push: {} }
          - { name: staging, deploy: staging }
        """

    func fixture() throws -> EngineFixture {
        var fixture = try EngineFixture()
        fixture.environment["DOCKER"] = fixture.directory.file("no-such-docker")
        fixture.environment["PATH"] = "/usr/bin:/bin"
        return fixture
    }

    /// A run that pushed `version` at `sha`, as an earlier `deploy staging` records it.
    func pushed(_ store: RunStore, version: String, sha: String) async throws -> Int64 {
        var record = try await store.insert(
            RunRecord(
                pipeline: "p.yml", app: "hello", environment: "staging", trigger: Trigger(user: "ann"), sha: sha, version: version,
                startedAt: Date(), ownerPID: 1, ownerHost: "h"))
        record.image = "127.0.0.1:5000/hello@sha256:" + String(repeating: "a", count: 64)
        record.outcome = .succeeded
        try await store.update(record)
        return record.id
    }

    @Test("the documented top-level docker: key is accepted and used")
    func dockerKey() throws {
        let pipeline = try PipelineLoader.parse(
            yaml: "app: hello\ndocker: podman\nstages:\n  - { name: test, run: [true] }\n", file: "p.yml"
        ).pipeline
        #expect(pipeline.docker == "podman")
        #expect(pipeline.dockerCommand(environment: [:]) == "podman")
        #expect(pipeline.dockerCommand(environment: ["DOCKER": "docker"]) == "docker")
    }

    @Test("--release of a release never pushed is refused before anything runs, pinned or not")
    func unknownReleaseRefused() async throws {
        let fixture = try fixture()
        defer { fixture.directory.remove() }
        try await fixture.store.pin(environment: "staging", runID: nil, actor: "ann", reason: "rolled back", at: Date())
        await #expect {
            _ = try await fixture.run(
                Self.dockerPipeline, release: Release(sha: "f" + String(repeating: "0", count: 39), version: "9.9.9"), explicitRelease: true
            )
        } throws: { error in
            "\(error)".contains("no release '9.9.9' was built and pushed here")
        }
        await #expect(try fixture.store.history(limit: 10).isEmpty)
        #expect(fixture.read("ran").isEmpty)
    }

    @Test("--release deploys the named release's commit and image, and builds nothing")
    func namedReleaseDeploysItsImage() async throws {
        let fixture = try fixture()
        defer { fixture.directory.remove() }
        let sha = "abcdef0123456789abcdef0123456789abcdef01"
        let builder = try await pushed(fixture.store, version: "1.0.0", sha: sha)
        // HEAD is another commit: the run must not be HEAD relabelled.
        let result = try await fixture.run(
            Self.dockerPipeline, release: Release(sha: "0123456789abcdef0123456789abcdef01234567", version: "1.0.0"),
            explicitRelease: true)
        let detail = try await fixture.detail(result)
        #expect(detail.run.sha == sha)
        #expect(detail.run.version == "1.0.0")
        #expect(detail.run.image == "127.0.0.1:5000/hello@sha256:" + String(repeating: "a", count: 64))
        let skipped = detail.stages.filter { $0.outcome == .skipped }.map(\.name)
        #expect(skipped == ["test", "build", "push"])
        #expect(detail.stages.first { $0.name == "build" }?.reason == "release 1.0.0 (abcdef0) was built and pushed by run \(builder)")
        #expect(fixture.read("ran").isEmpty)
        // The deploy itself reached docker (which is missing here) with that image.
        #expect(detail.stages.last?.name == "staging")
        #expect(detail.stages.last?.outcome == .failed)
    }

    @Test("the largest gate a pipeline may write gives a saturated worst case instead of trapping")
    func worstCaseSaturates() throws {
        let pipeline = try PipelineLoader.parse(
            yaml: """
                app: hello
                environments:
                  staging:
                    target: { docker: { listen: "127.0.0.1:9" } }
                    gates: [smoke]
                    strategy: { canary: { steps: [10, 50, 100], analysis: [smoke] } }
                gates:
                  smoke: { http: { url: "${TARGET_URL}/health" }, every: 366d, times: 100000 }
                stages:
                  - { name: staging, deploy: staging }
                """, file: "p.yml"
        ).pipeline
        let plan = try Plan(pipeline: pipeline, environment: "staging")
        let worst = try #require(plan.worstCaseToAbort)
        #expect(worst.total == .saturated)
        #expect(plan.gatesWorstCase(["smoke"]) == .saturated)
    }
}
