// swift-tools-version: 6.0
import PackageDescription

/// Settings every target shares: Swift 6 language mode and the upcoming features we adopt.
let strictSettings: [SwiftSetting] = [
    // SE-0335: `any` spelled out for existential types.
    .enableUpcomingFeature("ExistentialAny"),
    // SE-0444: a file sees only the members of modules it imports itself.
    .enableUpcomingFeature("MemberImportVisibility"),
    // SE-0409: imports are internal unless marked `public import`.
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Slipway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "deploy", targets: ["deploy"]),
        .library(name: "Slipway", targets: ["Slipway"]),
        .executable(name: "kube-sim", targets: ["kube-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The command line: ArgumentParser commands only, wiring and output.
        .executableTarget(
            name: "deploy",
            dependencies: [
                // Through Slipway only (it re-exports Core, Pipeline and Store): never a lower module.
                "Slipway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Domain values every module shares: outcomes, triggers, releases, durations. No dependencies.
        .target(
            name: "SlipwayCore",
            swiftSettings: strictSettings
        ),
        // The pipeline file: model, YAML reader with locations, one file per top-level section, validation.
        .target(
            name: "SlipwayPipeline",
            dependencies: [
                "SlipwayCore",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        // The engine, stages, rollout strategies, targets, gates, releases, reporters: what the CLI calls.
        .target(
            name: "Slipway",
            dependencies: [
                "SlipwayCore",
                "SlipwayPipeline",
                "SlipwayGit",
                "SlipwayProcess",
                "SlipwayStore",
                "Yams",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The checklist's tls check reads the certificate an endpoint presents.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            // Debug builds (what the tests run) can stop themselves at named moments (FaultPoint).
            swiftSettings: strictSettings + [.define("SLIPWAY_FAULT_POINTS", .when(configuration: .debug))]
        ),
        // Fuzzes the pipeline loader: `scripts/fuzz` builds it with libFuzzer (-DFUZZING); built
        // plainly, it replays files through the loader (a corpus check).
        .executableTarget(
            name: "pipeline-fuzz",
            dependencies: ["SlipwayPipeline"],
            path: "Fuzz/PipelineFuzzer",
            swiftSettings: strictSettings
        ),
        // libgit2 (Debian: libgit2-dev), as a system library.
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        // Releases from git: commits, tags, versions. Owns every libgit2 handle.
        .target(
            name: "SlipwayGit",
            dependencies: ["CLibGit2"],
            swiftSettings: strictSettings
        ),
        // Child processes: argv, streamed lines, masking, timeouts, process groups.
        .target(
            name: "SlipwayProcess",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess")
            ],
            swiftSettings: strictSettings
        ),
        // The run record: schema, migrations, queries.
        .target(
            name: "SlipwayStore",
            dependencies: [
                "SlipwayCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // kube-sim: a simulated Kubernetes API server, controllers, a kubelet whose pods run through
        // podman, Service and ingress traffic on loopback. A simulator for tests and demos, not a Kubernetes.
        .target(
            name: "KubeSim",
            dependencies: [
                "SlipwayProcess",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("OpenAPI")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kube-sim",
            dependencies: [
                "KubeSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Test helpers: temporary directories, waiting for a pid to end, driving the deploy binary.
        .target(
            name: "CTestShims",
            path: "Tests/CTestShims"
        ),
        .target(
            name: "SlipwayTestSupport",
            dependencies: ["CTestShims", "Slipway", "SlipwayProcess"],
            path: "Tests/SlipwayTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SlipwayProcessTests",
            dependencies: ["SlipwayProcess", "SlipwayTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SlipwayGitTests",
            dependencies: ["SlipwayGit", "SlipwayTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SlipwayStoreTests",
            dependencies: ["SlipwayCore", "SlipwayStore", "SlipwayTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SlipwayTests",
            dependencies: [
                "Slipway", "SlipwayProcess", "SlipwayStore", "SlipwayTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            // Pipeline files the tests read by path (and scripts/fuzz takes as seeds).
            exclude: ["Pipelines"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeSimTests",
            dependencies: ["KubeSim", "SlipwayProcess", "SlipwayTestSupport"],
            // The kubectl ⇄ kube-apiserver transcripts the replay test plays back, and their manifests.
            exclude: ["Transcripts"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["SlipwayCore", "SlipwayStore", "SlipwayProcess", "SlipwayTestSupport"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
