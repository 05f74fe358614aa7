import Foundation
import MeshCore
import MeshPolicy

/// The policy files named by `-f`: files as given, directories walked for `*.yaml`/`*.yml` in name order.
enum PolicyFiles {
    struct Source {
        let name: String
        let text: String
    }

    static func read(_ paths: [String]) throws(PolicyFilesError) -> [Source] {
        var sources: [Source] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw PolicyFilesError(message: "\(path): no such file or directory")
            }
            let files: [String]
            if isDirectory.boolValue {
                let found = (FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? [])
                    .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                guard !found.isEmpty else {
                    throw PolicyFilesError(message: "\(path): no .yaml files in this directory")
                }
                files = found.map { (path as NSString).appendingPathComponent($0) }
            } else {
                files = [path]
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: file),
                    let text = String(data: data, encoding: .utf8)
                else { throw PolicyFilesError(message: "\(file): cannot read it as UTF-8 text") }
                sources.append(Source(name: file, text: text))
            }
        }
        return sources
    }

    /// Every document of `sources`, read as the control plane will read them, and every issue found.
    static func load(_ sources: [Source]) -> (documents: [LoadedDocument], issues: [PolicyIssue]) {
        var documents: [LoadedDocument] = []
        var issues: [PolicyIssue] = []
        for source in sources {
            switch PolicyLoader.load(yaml: source.text, file: source.name) {
            case .success(let loaded): documents += loaded
            case .failure(let errors): issues += errors.issues
            }
        }
        return (documents, issues)
    }
}

struct PolicyFilesError: Error {
    let message: String
}
