import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import MeshControlClient
import MeshCore

@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "Drive a Meshwork mesh.",
        discussion:
            "Exit codes: 0 ok, 1 invalid policy or the control plane refused or failed, 64 bad usage, 69 control plane unreachable.",
        version: "meshctl \(Meshwork.version)",
        subcommands: [
            Validate.self, Apply.self, Get.self, Delete.self, History.self, Rollback.self, Status.self, Token.self,
        ]
    )
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "meshctl config (default: $MESHCTL_CONFIG, then \(MeshctlConfig.defaultPath))")
    var config: String?

    @Option(name: [.short, .long], help: "Output format: table, json or yaml")
    var output: OutputFormat = .table
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, yaml
}

/// Runs one admin call, turning failures into one clear line and a documented exit code.
func adminCall<R: Sendable>(
    _ options: GlobalOptions, _ body: @Sendable @escaping (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
) async throws -> R {
    let config: MeshctlConfig
    do { config = try MeshctlConfig.load(path: options.config) } catch let error as MeshError {
        printError(error.message)
        throw ExitCode(64)
    }
    do {
        return try await config.client.withClient(body)
    } catch let error as RPCError {
        if error.code == .unavailable {
            printError("cannot reach the control plane at \(config.client.address): \(error.message)")
            throw ExitCode(69)
        }
        if error.code == .invalidArgument {
            // Policy problems come one per line as file:line:column: key.path: message; print them as they are.
            FileHandle.standardError.write(Data((error.message + "\n").utf8))
        } else {
            printError("\(error.message) (\(error.code))")
        }
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("meshctl: \(message)\n".utf8))
}
