import Crypto
import Foundation
import MeshCore
import SwiftASN1
import X509

/// Building and checking the CSRs a workload sends to the CA.
public enum WorkloadCSR {
    /// A PKCS#10 request (DER) for `identity`, signed by `key`; the SPIFFE ID is its only SAN.
    public static func make(for identity: SPIFFEID, key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)])
        }
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName(),
            privateKey: .init(key),
            attributes: try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        return serializer.serializedBytes
    }

    /// What a CSR asks for, once it parsed and its signature proved possession of the key.
    public struct Request: Sendable {
        public let identity: SPIFFEID
        public let publicKey: Certificate.PublicKey
    }

    /// The first checks of the CA's checklist: parses → self-signature verifies → exactly one SPIFFE URI SAN.
    public static func check(der: [UInt8]) throws(MeshError) -> Request {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(derEncoded: der) } catch {
            throw MeshError(.invalidCertificate, "CSR does not parse as PKCS#10 DER: \(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw MeshError(
                .invalidCertificate, "CSR signature does not verify with its own key (proof of possession failed)")
        }
        let names: SubjectAlternativeNames?
        do { names = try csr.attributes.extensionRequest?.extensions.subjectAlternativeNames } catch {
            throw MeshError(.invalidCertificate, "CSR extension request is malformed")
        }
        let sans = Array(names ?? SubjectAlternativeNames())
        let uris = sans.compactMap { (n: GeneralName) -> String? in
            if case .uniformResourceIdentifier(let u) = n { return u }
            return nil
        }
        guard uris.count == 1, sans.count == 1 else {
            throw MeshError(.invalidIdentity, "CSR must request exactly one SAN, a SPIFFE URI (found \(sans.count))")
        }
        return Request(identity: try SPIFFEID(parsing: uris[0]), publicKey: csr.publicKey)
    }
}

/// A short-lived self-signed certificate for a freshly generated key: what a workload presents on first
/// contact, before it holds a workload certificate. The CA then requires the CSR to be for this same key.
public enum EnrolmentCertificate {
    public static func make(key: P256.Signing.PrivateKey, now: Date = Date()) throws -> Certificate {
        let name = try DistinguishedName { CommonName("meshwork enrolment") }
        return try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
            },
            issuerPrivateKey: .init(key)
        )
    }

    /// True if `certificate` is a self-signed enrolment certificate (issuer == subject, no SPIFFE ID,
    /// signature verifies with its own key).
    public static func isEnrolment(_ certificate: Certificate) -> Bool {
        guard certificate.issuer == certificate.subject, (try? certificate.spiffeID()) == nil else { return false }
        return certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
    }
}
