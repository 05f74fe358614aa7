import Crypto
import Foundation
import GRPCCore
import MeshCore
import MeshIdentity
import Testing
import X509

@testable import MeshControlPlane

@Suite struct CertificateAuthorityTests {
    @Test func leavesCarryOnlyTheirSPIFFEIDAndVerifyAgainstTheBundle() async throws {
        let ca = try CertificateAuthority.generate(trustDomain: .default)
        let key = P256.Signing.PrivateKey()
        let id = try SPIFFEID(parsing: "spiffe://mesh.local/svc/orders")
        let leaf = try ca.issue(identity: id, publicKey: .init(key.publicKey), lifetime: .seconds(86400))
        #expect(try leaf.spiffeID() == id)
        #expect(leaf.subject == DistinguishedName(), "the identity lives only in the URI SAN")
        #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
        #expect(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) == 86400 + 60)
        #expect(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName]?.critical == true)
        let verified = await ca.bundle.verify(presented: [leaf], trustDomain: .default, expected: id)
        #expect(try verified.get().identity == id)
    }

    @Test func shortLivedLeavesLeaveTheRenewalWindowAhead() throws {
        let ca = try CertificateAuthority.generate(trustDomain: .default)
        let now = Date()
        let key = P256.Signing.PrivateKey()
        let leaf = try ca.issue(
            identity: try SPIFFEID(parsing: "spiffe://mesh.local/svc/a"), publicKey: .init(key.publicKey),
            lifetime: .seconds(10), now: now)
        #expect(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) == 11)
        let earliest = RenewalSchedule.renewalTime(
            notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter, now: now, unit: 0)
        #expect(earliest.timeIntervalSince(now) > 5, "renewal must not be due at issuance")
    }

    @Test func caFilesAreCreatedPrivateAndReloadedNotReplaced() throws {
        let dir = NSTemporaryDirectory() + "ca-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (first, created) = try CAFiles.loadOrCreate(dataDir: dir, trustDomain: .default)
        #expect(created)
        #expect(SecureFiles.mode(of: dir + "/ca/root.key") == 0o600)
        let (second, createdAgain) = try CAFiles.loadOrCreate(dataDir: dir, trustDomain: .default)
        #expect(!createdAgain)
        #expect(second.root == first.root)
        // A half-present CA is refused, never silently replaced.
        try FileManager.default.removeItem(atPath: dir + "/ca/root.pem")
        #expect(throws: MeshError(.invalidConfiguration, "")) {
            try CAFiles.loadOrCreate(dataDir: dir, trustDomain: .default)
        }
    }

    @Test func aCAOfAnotherTrustDomainIsRefused() throws {
        let dir = NSTemporaryDirectory() + "ca-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CAFiles.loadOrCreate(dataDir: dir, trustDomain: .default)
        #expect(throws: MeshError(.invalidConfiguration, "")) {
            try CAFiles.loadOrCreate(dataDir: dir, trustDomain: try TrustDomain("other.test"))
        }
    }
}

@Suite struct TokenRegistryTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func registry(_ path: String? = nil) throws -> (TokenRegistry, CAPin) {
        let pin = CAPin(of: try CertificateAuthority.generate(trustDomain: .default).root)
        return (try TokenRegistry(path: path, caPin: pin), pin)
    }

    @Test func theChecklistRefusesEachBadTokenWithItsOwnReason() async throws {
        let (tokens, _) = try registry()
        let orders = try ServiceName("orders")
        let (token, _) = try await tokens.create(service: orders, ttl: .seconds(60), maxUses: 1, now: now)

        await expectRefusal(.malformedToken) { try await tokens.redeem("nonsense", for: orders, now: now) }
        let unknown = JoinToken.generate(caPin: token.caPin)
        await expectRefusal(.unknownToken) { try await tokens.redeem(unknown.text, for: orders, now: now) }
        let forged = "mwt1.\(token.id).\(String(repeating: "0", count: 64)).\(token.caPin.hex)"
        await expectRefusal(.forgedToken) { try await tokens.redeem(forged, for: orders, now: now) }
        await expectRefusal(.wrongService) {
            try await tokens.redeem(token.text, for: try ServiceName("frontend"), now: now)
        }
        await expectRefusal(.expiredToken) {
            try await tokens.redeem(token.text, for: orders, now: now.addingTimeInterval(61))
        }

        let record = try await tokens.redeem(token.text, for: orders, now: now)
        #expect(record.uses == 1)
        await expectRefusal(.exhaustedToken) { try await tokens.redeem(token.text, for: orders, now: now) }

        let (second, _) = try await tokens.create(service: orders, ttl: .seconds(60), maxUses: 5, now: now)
        #expect(try await tokens.revoke(id: second.id, now: now))
        await expectRefusal(.revokedToken) { try await tokens.redeem(second.text, for: orders, now: now) }
        #expect(try await !tokens.revoke(id: "0000000000000000", now: now))
    }

    /// Concurrent enrolments share disk writes (group commit) but none is answered before its use is on disk,
    /// and none is lost or double-spent.
    @Test func concurrentRedemptionsAreAllDurableAndNoneOverspends() async throws {
        let path = NSTemporaryDirectory() + "tokens-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (tokens, pin) = try registry(path)
        let orders = try ServiceName("orders")
        let (token, _) = try await tokens.create(service: orders, ttl: .seconds(60), maxUses: 150, now: now)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 {
                group.addTask { (try? await tokens.redeem(token.text, for: orders, now: self.now)) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 150, "exactly the 150 uses were granted")
        let reloaded = try TokenRegistry(path: path, caPin: pin)
        #expect(await reloaded.list().first?.uses == 150, "and all 150 are on disk")
    }

    @Test func tokensSurviveARestartAndTheFileHoldsNoSecret() async throws {
        let path = NSTemporaryDirectory() + "tokens-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (tokens, pin) = try registry(path)
        let (token, _) = try await tokens.create(
            service: try ServiceName("orders"), ttl: .seconds(60), maxUses: 2, now: now)
        _ = try await tokens.redeem(token.text, for: try ServiceName("orders"), now: now)
        #expect(SecureFiles.mode(of: path) == 0o600)
        #expect(try !(SecureFiles.readString(path) ?? "").contains(token.secret))
        let reloaded = try TokenRegistry(path: path, caPin: pin)
        #expect(await reloaded.list().first?.uses == 1)
        _ = try await reloaded.redeem(token.text, for: try ServiceName("orders"), now: now)
        await expectRefusal(.exhaustedToken) {
            try await reloaded.redeem(token.text, for: try ServiceName("orders"), now: now)
        }
    }

    @Test func everyRefusalMapsToADistinctStatusAndReason() {
        let reasons: [EnrolmentRefusal.Reason] = [
            .malformedCSR, .keyMismatch, .malformedToken, .unknownToken, .forgedToken, .expiredToken, .revokedToken,
            .exhaustedToken, .wrongService, .wrongTrustDomain,
        ]
        let errors = reasons.map { IdentityAPI.rpcError(EnrolmentRefusal($0, "x")) }
        #expect(
            Set(errors.map { $0.metadata[stringValues: "mesh-reason"].first(where: { _ in true }) ?? "" }).count
                == reasons.count)
        #expect(errors[0].code == .invalidArgument)
        #expect(errors[5].code == .unauthenticated)
        #expect(errors[6].code == .permissionDenied)
    }

    func expectRefusal(_ reason: EnrolmentRefusal.Reason, _ body: () async throws -> TokenRecord) async {
        do {
            _ = try await body()
            Issue.record("expected \(reason), but the token was accepted")
        } catch let refusal as EnrolmentRefusal {
            #expect(refusal.reason == reason, "\(refusal.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
