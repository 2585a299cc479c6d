import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SlipwayCore
import SwiftASN1
import Synchronization
import X509

/// Checks of a running endpoint: it answers, it exposes metrics, its certificate is valid.
enum EndpointChecks {
    static func http(_ url: String, status: Int?, body: String?, within: Duration? = nil) async -> CheckVerdict {
        guard let address = URL(string: url), address.scheme != nil else { return .fail("'\(url)' is not a URL") }
        let measurement = await HTTPCheck(url: address, status: status, body: body, within: within).measure()
        return measurement.passed
            ? .pass("GET \(url): \(measurement.detail)")
            : .fail("GET \(url): \(measurement.detail): check that the release is deployed and serving there")
    }

    static func metrics(_ url: String) async -> CheckVerdict {
        let response: HTTP.Response
        do {
            response = try await HTTP.get(url, timeout: .seconds(10))
        } catch {
            return .fail("GET \(url): no answer (\(error)): is the release deployed, and does it serve /metrics?")
        }
        guard (200..<300).contains(response.status) else {
            return .fail("GET \(url) answered \(response.status): expose Prometheus metrics there")
        }
        switch PrometheusText.parse(response.body) {
        case .success(let summary):
            return .pass("GET \(url): \(summary.families) metric famil\(summary.families == 1 ? "y" : "ies"), \(summary.samples) samples")
        case .failure(let problem):
            return .fail("GET \(url): not the Prometheus text format: \(problem.description)")
        }
    }

    static func tls(_ url: String, minimumDays: Int) async -> CheckVerdict {
        guard let components = URLComponents(string: url), components.scheme == "https", let host = components.host else {
            return .fail("'\(url)' is not an https URL")
        }
        let port = components.port ?? 443
        let certificate: Certificate
        do {
            certificate = try await TLSProbe.leafCertificate(host: host, port: port)
        } catch {
            return .fail("no TLS answer from \(host):\(port) (\(TLSProbe.plain(error))): is HTTPS served there?")
        }
        let now = Date()
        let left = certificate.notValidAfter.timeIntervalSince(now) / 86_400
        let until = certificate.notValidAfter.formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
        let subject = certificate.subject.description
        if certificate.notValidBefore > now {
            return .fail("the certificate of \(host):\(port) (\(subject)) is not valid before \(certificate.notValidBefore)")
        }
        if left < 0 { return .fail("the certificate of \(host):\(port) (\(subject)) expired on \(until): renew it") }
        guard left >= Double(minimumDays) else {
            return .fail(
                "the certificate of \(host):\(port) (\(subject)) expires on \(until), in \(Int(left.rounded(.down))) days (at least \(minimumDays) required): renew it"
            )
        }
        return .pass("the certificate of \(host):\(port) (\(subject)) is valid until \(until), \(Int(left.rounded(.down))) days from now")
    }
}

/// The Prometheus text exposition format, read enough to tell it from anything else.
enum PrometheusText {
    struct Summary {
        var families: Int
        var samples: Int
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ text: String) -> Result<Summary, Problem> {
        var families = Set<String>()
        var samples = 0
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3)
                if words.count >= 3, words[1] == "TYPE" || words[1] == "HELP" { families.insert(String(words[2])) }
                continue
            }
            guard let sample = sampleName(line) else {
                return .failure(Problem(description: "line \(number + 1) '\(line.prefix(60))' is neither a comment nor a sample"))
            }
            families.insert(sample)
            samples += 1
        }
        guard samples > 0 else { return .failure(Problem(description: "it holds no samples")) }
        // A histogram's or summary's samples (`_bucket`, `_sum`, `_count`) belong to its family.
        let declared = families
        let counted = Set(
            families.map { name in
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    let family = String(name.dropLast(suffix.count))
                    if declared.contains(family) { return family }
                }
                return name
            })
        return .success(Summary(families: counted.count, samples: samples))
    }

    /// The metric's name when `line` is `name{labels} value [timestamp]`.
    static func sampleName(_ line: String) -> String? {
        let scalars = Array(line.unicodeScalars)
        var index = 0
        func isNameScalar(_ s: Unicode.Scalar, first: Bool) -> Bool {
            s.isASCII && (s.properties.isAlphabetic || s == "_" || s == ":" || (!first && ("0"..."9").contains(s)))
        }
        while index < scalars.count, isNameScalar(scalars[index], first: index == 0) { index += 1 }
        guard index > 0 else { return nil }
        let name = String(String.UnicodeScalarView(scalars[0..<index]))
        var rest = Substring(String(String.UnicodeScalarView(scalars[index...])))
        if rest.hasPrefix("{") {
            guard let close = rest.lastIndex(of: "}") else { return nil }
            rest = rest[rest.index(after: close)...]
        }
        let fields = rest.split(separator: " ")
        guard (1...2).contains(fields.count) else { return nil }
        let value = String(fields[0])
        guard Double(value) != nil || ["NaN", "+Inf", "-Inf"].contains(value) else { return nil }
        return name
    }
}

/// Connects to an HTTPS endpoint and reads the certificate it presents (whoever signed it: the
/// check is about its dates, not its trust).
enum TLSProbe {
    /// The promise of the leaf certificate, kept once: the first of verification, close or timeout wins.
    final class PromiseBox: Sendable {
        let promise: Mutex<EventLoopPromise<[UInt8]>?>
        init(_ promise: EventLoopPromise<[UInt8]>) { self.promise = Mutex(promise) }
        func succeed(_ value: [UInt8]) {
            promise.withLock {
                $0?.succeed(value); $0 = nil
            }
        }
        func fail(_ error: any Error) {
            promise.withLock {
                $0?.fail(error); $0 = nil
            }
        }
    }

    struct NoCertificate: Error, CustomStringConvertible {
        var description: String { "the server presented no certificate" }
    }

    /// An error in a few words: NIO's connection errors carry every attempt's details.
    static func plain(_ error: any Error) -> String {
        let text = "\(error)"
        for (needle, words) in [
            ("Connection refused", "connection refused"), ("timed out", "timed out"), ("No route", "no route to host"),
            ("handshake", "TLS handshake failed"),
        ] where text.localizedCaseInsensitiveContains(needle) {
            return words
        }
        return String(text.prefix(200))
    }

    static func leafCertificate(host: String, port: Int) async throws -> Certificate {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // The custom callback below decides (it accepts any certificate, to read its dates); NIO
        // calls it only when verification is on.
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: [UInt8].self)
        let promiseBox = PromiseBox(promise)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = try NIOSSLClientHandler(
                            context: context, serverHostname: serverName,
                            customVerificationCallback: { certificates, verification in
                                if let leaf = certificates.first, let der = try? leaf.toDERBytes() {
                                    promiseBox.succeed(der)
                                }
                                verification.succeed(.certificateVerified)
                            })
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // Nothing will complete the promise now: complete it, as NIO requires of every promise.
            promiseBox.fail(error)
            throw error
        }
        defer { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in promiseBox.fail(NoCertificate()) }
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount.seconds(10)) {
            promiseBox.fail(NoCertificate())
        }
        defer { timeout.cancel() }
        let der = try await promise.futureResult.get()
        return try Certificate(derEncoded: der)
    }
}
