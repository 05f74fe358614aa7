/// A SPIFFE ID, `spiffe://<trust-domain><path>`. Workloads are `spiffe://<td>/svc/<service>`; the control
/// plane is `spiffe://<td>/control` and the operator credential `spiffe://<td>/admin`.
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible {
    public let trustDomain: TrustDomain
    /// Starts with "/", never ends with "/".
    public let path: String

    public init(trustDomain: TrustDomain, path: String) {
        precondition(path.hasPrefix("/") && !path.hasSuffix("/"), "SPIFFE path must start and not end with /")
        self.trustDomain = trustDomain
        self.path = path
    }

    /// Parses a URI SAN. Throws `.invalidIdentity` for anything that is not a well-formed SPIFFE ID.
    public init(parsing uri: String) throws(MeshError) {
        let scheme = "spiffe://"
        guard uri.hasPrefix(scheme) else {
            throw MeshError(.invalidIdentity, "\"\(uri)\" is not a SPIFFE ID (must start with spiffe://)")
        }
        let rest = uri.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/") else {
            throw MeshError(.invalidIdentity, "\"\(uri)\" has no path")
        }
        let path = String(rest[slash...])
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !path.hasSuffix("/"), !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
            !path.contains("?"), !path.contains("#")
        else {
            throw MeshError(.invalidIdentity, "\"\(uri)\" has an invalid path")
        }
        do { self.trustDomain = try TrustDomain(String(rest[..<slash])) } catch {
            throw MeshError(.invalidIdentity, "\"\(uri)\": \(error.message)")
        }
        self.path = path
    }

    public static func workload(_ service: ServiceName, in trustDomain: TrustDomain) -> SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, path: "/svc/\(service.value)")
    }

    public static func controlPlane(in trustDomain: TrustDomain) -> SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, path: "/control")
    }

    public static func admin(in trustDomain: TrustDomain) -> SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, path: "/admin")
    }

    /// The service of a workload ID (`/svc/<service>`), or nil for any other path.
    public var service: ServiceName? {
        guard path.hasPrefix("/svc/") else { return nil }
        return try? ServiceName(String(path.dropFirst(5)))
    }

    public var uri: String { "spiffe://\(trustDomain.name)\(path)" }
    public var description: String { uri }
}
