import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The one HTTP client for everything Slipway sends: HTTP gates, Prometheus queries, webhooks,
/// a new release's readiness and nginx's control socket (a Unix socket). One process-wide client
/// (swift-server/async-http-client on swift-nio), with a connect timeout and a deadline on every
/// request, so that nothing Slipway asks over HTTP can hang a deploy.
enum HTTP {
    /// How long a connection may take to open: everything Slipway talks to is near.
    static let connectTimeout = Duration.seconds(2)
    /// The most of a body Slipway reads (a health page, a Prometheus answer).
    static let bodyLimit = 1 << 20

    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: timeAmount(connectTimeout), read: .seconds(60))
        configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
        // Lives as long as the process: it is never shut down, so never deinitialised either.
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    struct Response: Sendable {
        var status: Int
        var body: String
    }

    /// A request that could not be made or was not answered in time.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let userAgent = "slipway/\(SlipwayVersion.current)"

    /// `GET url`, answered within `timeout` (connecting included).
    static func get(_ url: String, timeout: Duration, host: String? = nil) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "Cache-Control", value: "no-cache")
        if let host { request.headers.add(name: "Host", value: host) }
        return try await execute(request, timeout: timeout)
    }

    /// `GET path` over the Unix socket at `socketPath` (nginx's control socket).
    static func get(unixSocket socketPath: String, path: String, timeout: Duration) async throws -> Response {
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else {
            throw Failure(description: "\(socketPath) cannot be addressed as a Unix socket")
        }
        // The socket's path is no host name: servers such as nginx refuse it as one.
        return try await get(url.absoluteString, timeout: timeout, host: "localhost")
    }

    /// `POST url` with a JSON body, answered within `timeout`.
    static func post(_ url: String, json: Data, timeout: Duration) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: json))
        return try await execute(request, timeout: timeout)
    }

    private static func execute(_ request: HTTPClientRequest, timeout: Duration) async throws -> Response {
        do {
            let response = try await client.execute(request, timeout: timeAmount(timeout))
            var body = try await response.body.collect(upTo: bodyLimit)
            return Response(status: Int(response.status.code), body: body.readString(length: body.readableBytes) ?? "")
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw Failure(description: "no answer within \(DurationParser.format(timeout))")
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw Failure(description: "could not connect within \(DurationParser.format(connectTimeout))")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(Int64(min(duration, .seconds(86_400 * 366)) / .nanoseconds(1)))
    }
}
