import Foundation
import Tensor

/// A directory written by `Reference/dump_reference.py`: ONNX Runtime's inputs, outputs and
/// (optionally) every intermediate node output, as `.npy` files listed in `manifest.json`.
///
/// Layout: `DIR/manifest.json`, `DIR/inputs/*.npy`, `DIR/outputs/*.npy`, `DIR/nodes/*.npy`.
public struct ReferenceDump: Sendable {
    /// One tensor listed in the dump's `manifest.json`.
    public struct Entry: Sendable, Decodable {
        /// Tensor name in the graph.
        public let name: String
        /// Path of the `.npy` file relative to the dump directory, e.g. `nodes/x.npy`.
        public let file: String
        public let dtype: String?
        public let shape: [Int]?
        public let node: String?
        public let opType: String?

        enum CodingKeys: String, CodingKey {
            case name, file, dtype, shape, node
            case opType = "op_type"
        }
    }

    struct Manifest: Decodable {
        let inputs: [Entry]
        let outputs: [Entry]
        let nodes: [Entry]?
    }

    /// Why a dump could not be read; prints as one line naming the file.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let directory: String
    public let inputs: [Entry]
    public let outputs: [Entry]
    public let nodes: [Entry]

    /// Reads `directory/manifest.json`; throws if it is missing or malformed.
    public init(directory: String) throws(Failure) {
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: manifestPath)) } catch {
            throw Failure(description: "\(manifestPath): cannot read: \((error as NSError).localizedDescription)")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw Failure(description: "\(manifestPath): not a reference manifest: \(error)")
        }
        for entry in manifest.inputs + manifest.outputs + (manifest.nodes ?? []) {
            // Paths come from a file; refuse anything that could leave the dump directory.
            let components = entry.file.split(separator: "/", omittingEmptySubsequences: false)
            guard !entry.file.isEmpty, !entry.file.hasPrefix("/"),
                  !components.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) else {
                throw Failure(description: "\(manifestPath): unsafe file name '\(entry.file)'")
            }
        }
        self.directory = directory
        self.inputs = manifest.inputs
        self.outputs = manifest.outputs
        self.nodes = manifest.nodes ?? []
    }

    /// Absolute path of an entry's `.npy` file.
    public func path(of entry: Entry) -> String {
        (directory as NSString).appendingPathComponent(entry.file)
    }

    /// Loads the recorded graph inputs by name.
    public func loadInputs() throws(NPY.Failure) -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        for entry in inputs { feeds[entry.name] = try NPY.read(path: path(of: entry)) }
        return feeds
    }
}

/// Turns tensor names into file names: every character outside `[A-Za-z0-9._-]` becomes `_`,
/// and a name that collides with an earlier one gets `__2`, `__3`, … appended (the same rule
/// as `Reference/dump_reference.py`).
public struct TensorFileNamer {
    private var used: Set<String> = []

    /// A namer that has handed out no names yet.
    public init() {}

    /// The file-name form of `name`, without uniqueness suffix or `.npy`.
    public static func sanitize(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        var result = String(name.map { allowed.contains($0) ? $0 : "_" })
        // A name made only of dots would point at the directory itself or its parent.
        if result.isEmpty || result.allSatisfy({ $0 == "." }) { result = "_" + result }
        return result
    }

    /// A unique file name (with `.npy`) for this tensor name.
    public mutating func fileName(for name: String) -> String {
        let base = Self.sanitize(name)
        var candidate = base
        var counter = 2
        while used.contains(candidate) {
            candidate = "\(base)__\(counter)"
            counter += 1
        }
        used.insert(candidate)
        return candidate + ".npy"
    }
}
