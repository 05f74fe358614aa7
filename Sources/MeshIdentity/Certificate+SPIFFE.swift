import MeshCore
import SwiftASN1
import X509

extension Certificate {
    /// The certificate's SPIFFE ID: its one and only URI SAN. Throws `.invalidIdentity` if there is none,
    /// more than one, or it is not a SPIFFE ID.
    public func spiffeID() throws(MeshError) -> SPIFFEID {
        let names: SubjectAlternativeNames?
        do { names = try extensions.subjectAlternativeNames } catch {
            throw MeshError(.invalidIdentity, "certificate has a malformed subjectAltName extension")
        }
        let uris = (names ?? SubjectAlternativeNames()).compactMap { (name: GeneralName) -> String? in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        }
        guard uris.count == 1, let uri = uris.first else {
            throw MeshError(.invalidIdentity, "certificate must carry exactly one URI SAN (found \(uris.count))")
        }
        return try SPIFFEID(parsing: uri)
    }

    /// The certificate as PEM text.
    public var pemText: String {
        (try? serializeAsPEM().pemString) ?? ""
    }

    /// DER bytes of the certificate.
    public var derBytes: [UInt8] {
        var serializer = DER.Serializer()
        try? serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension Array where Element == Certificate {
    /// Parses every certificate in a PEM bundle. Throws `.invalidCertificate` naming `what` on failure.
    public init(pemBundle text: String, what: String) throws(MeshError) {
        do {
            let documents = try PEMDocument.parseMultiple(pemString: text)
            self = try documents.map { try Certificate(pemDocument: $0) }
        } catch {
            throw MeshError(.invalidCertificate, "\(what) does not hold valid PEM certificates: \(error)")
        }
        guard !isEmpty else { throw MeshError(.invalidCertificate, "\(what) holds no certificate") }
    }

    public var pemText: String { map(\.pemText).joined(separator: "\n") + "\n" }
}
