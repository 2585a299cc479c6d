import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The certificate kube-sim serves HTTPS with when tokens are in use (kubectl sends a bearer token
/// only over TLS): self-signed for 127.0.0.1, kept in the state directory so a restart keeps the
/// kubeconfig valid, and handed to kubectl as `certificate-authority-data`.
struct ServingCertificate {
    let certificatePEM: String
    let keyPEM: String

    static func load(orCreateIn directory: URL) throws -> ServingCertificate {
        let certificateFile = directory.appendingPathComponent("serving.crt")
        let keyFile = directory.appendingPathComponent("serving.key")
        if let certificate = try? String(contentsOf: certificateFile, encoding: .utf8),
            let key = try? String(contentsOf: keyFile, encoding: .utf8)
        {
            return ServingCertificate(certificatePEM: certificate, keyPEM: key)
        }
        let signingKey = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(signingKey)
        let name = try DistinguishedName { CommonName("kube-sim") }
        let now = Date()
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])), .dnsName("localhost")])
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: key)
        let serving = ServingCertificate(
            certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: signingKey.pemRepresentation)
        try serving.certificatePEM.write(to: certificateFile, atomically: true, encoding: .utf8)
        try serving.keyPEM.write(to: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile.path, 0o600)
        return serving
    }

    func tlsConfiguration() throws -> TLSConfiguration {
        let certificate = try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        configuration.applicationProtocols = ["http/1.1"]
        return configuration
    }

    /// For the kubeconfig's `certificate-authority-data`.
    var base64: String { Data(certificatePEM.utf8).base64EncodedString() }
}
