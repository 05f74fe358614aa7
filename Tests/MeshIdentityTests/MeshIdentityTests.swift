import Crypto
import Foundation
import MeshCore
import MeshIdentity
import MeshTestSupport
import Testing
import X509

@Suite struct PeerVerificationTests {
    let orders = "spiffe://mesh.local/svc/orders"

    @Test func aLeafFromTheBundleWithTheExpectedIdentityVerifies() async throws {
        let pki = try TestPKI()
        let id = try pki.identity(orders)
        let result = await pki.bundle.verify(
            presented: id.chain, trustDomain: .default, expected: try SPIFFEID(parsing: orders))
        #expect(try result.get().identity.uri == orders)
        #expect(try result.get().chain.count == 2, "validated chain ends in the root")
    }

    @Test func anotherIdentityIsAMismatchNotATrustFailure() async throws {
        let pki = try TestPKI()
        let id = try pki.identity("spiffe://mesh.local/svc/payments")
        let result = await pki.bundle.verify(
            presented: id.chain, trustDomain: .default, expected: try SPIFFEID(parsing: orders))
        guard case .failure(let f) = result, case .identityMismatch = f.reason else {
            Issue.record("expected identityMismatch, got \(result)")
            return
        }
        #expect(f.detail.contains("svc/payments"))
    }

    @Test func anotherCAOrTrustDomainOrAnExpiredLeafIsUntrusted() async throws {
        let pki = try TestPKI()
        let other = try TestPKI(name: "other CA")
        let foreign = try other.identity(orders)
        #expect(await pki.bundle.verify(presented: foreign.chain, trustDomain: .default).failureReason == .untrusted)
        let wrongDomain = try pki.identity("spiffe://elsewhere.test/svc/orders")
        #expect(
            await pki.bundle.verify(presented: wrongDomain.chain, trustDomain: .default).failureReason == .untrusted)
        let fixed = Date(timeIntervalSince1970: 1_800_000_000)
        let old = try pki.identity(orders, now: fixed, lifetime: 60)
        let later = fixed.addingTimeInterval(3600)
        #expect(
            await pki.bundle.verify(presented: old.chain, trustDomain: .default, at: later).failureReason == .untrusted)
        #expect(await pki.bundle.verify(presented: [], trustDomain: .default).failureReason == .noCertificate)
    }

    @Test func aBundleWithTwoRootsTrustsBoth() async throws {
        let a = try TestPKI(name: "a"), b = try TestPKI(name: "b")
        let bundle = try TrustBundle(roots: [a.root, b.root])
        #expect(
            await bundle.verify(presented: try a.identity(orders).chain, trustDomain: .default).failureReason == nil)
        #expect(
            await bundle.verify(presented: try b.identity(orders).chain, trustDomain: .default).failureReason == nil)
        #expect(try TrustBundle(pem: bundle.pemText) == bundle)
    }
}

extension Result where Failure == PeerVerificationFailure {
    var failureReason: PeerVerificationFailure.Reason? {
        if case .failure(let f) = self { return f.reason }
        return nil
    }
}

@Suite struct CSRAndTokenTests {
    @Test func csrRoundTripsAndProvesPossession() throws {
        let key = P256.Signing.PrivateKey()
        let id = try SPIFFEID(parsing: "spiffe://mesh.local/svc/orders")
        let request = try WorkloadCSR.check(der: try WorkloadCSR.make(for: id, key: key))
        #expect(request.identity == id)
        #expect(request.publicKey == Certificate.PublicKey(key.publicKey))
    }

    @Test func garbageAndTamperedCSRsAreRefused() throws {
        #expect(throws: MeshError(.invalidCertificate, "")) {
            try WorkloadCSR.check(der: [0x30, 0x03, 0x02, 0x01, 0x00])
        }
        var der = try WorkloadCSR.make(
            for: try SPIFFEID(parsing: "spiffe://mesh.local/svc/orders"), key: P256.Signing.PrivateKey())
        der[der.count / 2] ^= 0xff
        #expect(throws: MeshError.self) { try WorkloadCSR.check(der: der) }
    }

    @Test func tokensRoundTripAndMalformedOnesSayWhy() throws {
        let pki = try TestPKI()
        let token = JoinToken.generate(caPin: CAPin(of: pki.root))
        let parsed = try JoinToken(parsing: "  \(token.text)\n")
        #expect(parsed == token)
        #expect(parsed.caPin.matches(pki.root))
        #expect(!parsed.caPin.matches(try TestPKI().root))
        for bad in [
            "", "mwt1", "mwt2.\(token.id).\(token.secret).\(token.caPin.hex)",
            "mwt1.xyz.\(token.secret).\(token.caPin.hex)",
            "mwt1.\(token.id).\(token.secret).abc",
        ] {
            #expect(throws: MeshError(.invalidToken, "")) { try JoinToken(parsing: bad) }
        }
        #expect(constantTimeEquals(token.secretDigest, JoinToken.digest(ofSecret: token.secret)))
    }

    @Test func enrolmentCertificatesAreRecognisedAndWorkloadLeavesAreNot() throws {
        let key = P256.Signing.PrivateKey()
        #expect(EnrolmentCertificate.isEnrolment(try EnrolmentCertificate.make(key: key)))
        #expect(!EnrolmentCertificate.isEnrolment(try TestPKI().identity("spiffe://mesh.local/svc/a").leaf))
    }
}

@Suite struct RenewalScheduleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    var end: Date { start.addingTimeInterval(1000) }

    @Test func renewsBetween60And90PercentOfTheLifetime() {
        #expect(
            RenewalSchedule.renewalTime(notBefore: start, notAfter: end, now: start, unit: 0)
                == start.addingTimeInterval(600))
        #expect(
            RenewalSchedule.renewalTime(notBefore: start, notAfter: end, now: start, unit: 1)
                == start.addingTimeInterval(900))
        #expect(
            RenewalSchedule.renewalTime(notBefore: start, notAfter: end, now: start, unit: 0.5)
                == start.addingTimeInterval(750))
    }

    @Test func renewsImmediatelyPastTheChosenPointOr90Percent() {
        let late = start.addingTimeInterval(950)
        #expect(RenewalSchedule.renewalTime(notBefore: start, notAfter: end, now: late, unit: 0.2) == late)
        let mid = start.addingTimeInterval(700)
        #expect(RenewalSchedule.renewalTime(notBefore: start, notAfter: end, now: mid, unit: 0) == mid)
    }
}
