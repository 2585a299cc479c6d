import Foundation
import SlipwayProcess
import SlipwayTestSupport
import Testing

/// Build and push stages against a real podman (through the docker CLI) and a real registry.
@Suite("deploy builds and pushes images", .timeLimit(.minutes(6)))
struct ImageCommandTests {
    @Test("build tags the image with the version and short sha and OCI labels; push records the digest")
    func buildAndPush() async throws {
        try await ContainerServices.with { services in
            let repo = try await GitFixture("image")
            defer { repo.remove() }
            let name = "hello-\(UUID().uuidString.prefix(8).lowercased())"
            let image = "\(services.registry)/\(name)"
            try repo.directory.write(".gitignore", ".slipway/\n")
            try repo.directory.write(
                "slipway.yml",
                """
                app: hello
                image: \(image)
                environments:
                  staging: {}
                stages:
                  - { name: build, build: { context: app, file: Containerfile, no_cache: true } }
                  - { name: push, push: {} }
                  - { name: staging, deploy: staging }

                """)
            try repo.directory.write("app/Containerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n")
            try repo.directory.write("app/hello.txt", "hello\n")
            try await repo.git("add", ".")
            try await repo.git("commit", "-q", "-m", "feat: hello image")
            try await repo.git("tag", "v1.2.0")
            let sha = try await repo.git("rev-parse", "HEAD")
            let docker =
                FileManager.default.isExecutableFile(atPath: "/usr/local/bin/docker")
                    || FileManager.default.isExecutableFile(atPath: "/usr/bin/docker") ? "docker" : "podman"
            var environment = services.environment
            environment["DOCKER"] = docker
            let run = try await runDeploy(["staging"], in: repo.path, environment: environment)
            #expect(run.status == 0, "\(run.output)")
            let show = try await runDeploy(["show", "1", "--json"], in: repo.path)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any])
            let pushed = try #require((json["run"] as? [String: Any])?["image"] as? String)
            #expect(pushed.hasPrefix("\(image)@sha256:"))

            let labels = try await GitFixture.run(
                [
                    docker, "inspect", "--format",
                    "{{index .Config.Labels \"org.opencontainers.image.revision\"}} {{index .Config.Labels \"org.opencontainers.image.version\"}}",
                    "\(image):\(sha.prefix(7))",
                ], in: repo.path, environment: environment)
            #expect(labels == "\(sha) 1.2.0")
            // Clean up the images this test built (the registry's storage goes with its directory).
            _ = try? await GitFixture.run(
                [docker, "rmi", "-f", "\(image):1.2.0", "\(image):\(sha.prefix(7))"], in: repo.path, environment: environment)
        }
    }
}
