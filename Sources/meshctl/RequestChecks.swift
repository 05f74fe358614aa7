import ArgumentParser
import Foundation
import MeshCore
import SwiftProtobuf

/// Checks made before a request leaves, so that what the control plane would refuse for its size or shape is
/// refused here with the limit named (rather than as a dropped call).

/// Refuses a request over the API's message limit (exit 64), saying how big it is and what is allowed.
func refuseOversized(_ request: some SwiftProtobuf.Message, _ what: String) throws {
    let size = (try? request.serializedBytes() as [UInt8])?.count ?? 0
    guard size <= APILimits.maxMessageBytes else {
        let mib = { (n: Int) in String(format: "%.1f MiB", Double(n) / 1_048_576) }
        printError(
            "\(what) come to \(mib(size)); the control plane accepts at most \(mib(APILimits.maxMessageBytes)) per request: apply them in parts"
        )
        throw ExitCode(64)
    }
}

/// A document name as `metadata.name` allows it (a service name), checked before it is sent.
func checkName(_ name: String) throws {
    do { _ = try ServiceName(name) } catch {
        throw ValidationError(error.message.replacingOccurrences(of: "service name", with: "name"))
    }
}
