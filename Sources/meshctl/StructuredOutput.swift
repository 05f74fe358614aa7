import Foundation
import Yams

/// `-o json` and `-o yaml`, the same way for every command: keys sorted, slashes unescaped; lists pretty-printed,
/// single results (what an apply or status did) on one line for scripts.
enum StructuredOutput {
    static func print(_ object: Any, as format: OutputFormat, pretty: Bool) throws {
        switch format {
        case .yaml:
            Swift.print(try Yams.dump(object: yamlValues(object), sortKeys: true), terminator: "")
        case .json, .table:
            var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
            if pretty { options.insert(.prettyPrinted) }
            Swift.print(
                String(decoding: try JSONSerialization.data(withJSONObject: object, options: options), as: UTF8.self))
        }
    }

    /// Values as Yams should print them: Foundation hands JSON numbers over as floating point, which Yams would
    /// print as `9e+1` (and `0.5` as `5e-1`, which YAML 1.1 readers take for a string); whole numbers become
    /// integers again, fractions plain decimals (Swift booleans stay booleans).
    static func yamlValues(_ value: Any) -> Any {
        switch value {
        case let dictionary as [String: Any]: dictionary.mapValues(yamlValues)
        case let array as [Any]: array.map(yamlValues)
        case let string as String: string
        case let bool as Bool where type(of: value) == Bool.self: bool
        case let number as NSNumber:
            if let whole = Int(exactly: number.doubleValue) {
                whole
            } else {
                Node("\(number.doubleValue)", Tag(.float))
            }
        default: value
        }
    }
}
