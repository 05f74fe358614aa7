import ArgumentParser
import Foundation
import MeshAPI
import MeshCore

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join tokens: how a new sidecar proves itself once.",
        subcommands: [Create.self, Revoke.self, List.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint a join token for one service; prints it on stdout.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The service the token may enrol") var service: String
        @Option(help: "Lifetime, e.g. 30m, 24h (max 8760h)") var ttl: String = "24h"
        @Option(help: "How many certificates it may obtain (1...1000)") var uses: UInt32 = 1

        func validate() throws {
            do { _ = try ServiceName(service) } catch {
                throw ValidationError("--service \"\(service)\": \(error.message)")
            }
            do { _ = try Duration(parsing: ttl) } catch { throw ValidationError("--ttl \"\(ttl)\": \(error.message)") }
            guard (1...1000).contains(uses) else { throw ValidationError("--uses \(uses): must be 1...1000") }
        }

        func run() async throws {
            var request = Meshwork_V1_CreateTokenRequest()
            request.service = service
            request.ttlSeconds = try Duration(parsing: ttl).wholeSeconds
            request.maxUses = uses
            let response = try await adminCall(global) { [request] c in
                try await Meshwork_V1_Admin.Client(wrapping: c).createToken(request)
            }
            switch global.output {
            case .table: print(response.token)
            case .json, .yaml:
                print(
                    "{\"token\":\"\(response.token)\",\"id\":\"\(response.tokenID)\",\"expires_unix\":\(response.expiresUnix)}"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a join token by id (the second field of the token).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Token id") var id: String

        func run() async throws {
            var request = Meshwork_V1_RevokeTokenRequest()
            request.tokenID = id
            _ = try await adminCall(global) { [request] c in
                try await Meshwork_V1_Admin.Client(wrapping: c).revokeToken(request)
            }
            print("revoked \(id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List join tokens (never their secrets).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let response = try await adminCall(global) { c in
                try await Meshwork_V1_Admin.Client(wrapping: c).listTokens(Meshwork_V1_ListTokensRequest())
            }
            let iso = ISO8601DateFormatter()
            switch global.output {
            case .table:
                print("ID                SERVICE          USES   EXPIRES               REVOKED")
                for t in response.tokens {
                    let expires = iso.string(from: Date(timeIntervalSince1970: TimeInterval(t.expiresUnix)))
                    print(
                        "\(t.tokenID.padding(18))\(t.service.padding(17))\("\(t.uses)/\(t.maxUses)".padding(7))\(expires.padding(22))\(t.revoked)"
                    )
                }
            case .json, .yaml:
                let items = response.tokens.map {
                    "{\"id\":\"\($0.tokenID)\",\"service\":\"\($0.service)\",\"uses\":\($0.uses),\"max_uses\":\($0.maxUses),\"expires_unix\":\($0.expiresUnix),\"revoked\":\($0.revoked)}"
                }
                print("[" + items.joined(separator: ",") + "]")
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
