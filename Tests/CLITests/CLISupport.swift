import Foundation

/// Runs the built `action-clip` executable and prepares the files the CLI tests feed it.
enum CLI {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// What one run of the executable produced.
    struct Result {
        let status: Int32
        let standardOutput: String
        let standardError: String
        /// Output lines without the trailing empty string of the final newline.
        var lines: [String] {
            var lines = standardOutput.components(separatedBy: "\n")
            if lines.last == "" { lines.removeLast() }
            return lines
        }
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tinyFixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures/tiny")
    static let frameFixtures = repositoryRoot.appendingPathComponent("Tests/ModelsTests/Fixtures/frames")
    static let vocabulary = repositoryRoot.appendingPathComponent("Weights/bpe_simple_vocab_16e6.txt.gz")
    static let sampleClip = frameFixtures.appendingPathComponent("clip_small.gif").path

    /// The `action-clip` built with this test bundle: it sits in the products directory of the
    /// current build, next to the `.xctest` bundle (SwiftPM builds every product for `swift test`).
    static func executable() throws -> String {
        var directories: [URL] = Bundle.allBundles.map { bundle in
            let url = bundle.bundleURL
            return url.pathExtension == "xctest" ? url.deletingLastPathComponent() : url
        }
        if let executable = Bundle.main.executableURL {
            directories.append(executable.deletingLastPathComponent())
            // On macOS the runner's executable is inside PackageTests.xctest/Contents/MacOS.
            directories.append(executable.deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent())
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent("action-clip").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let searched = Set(directories.map(\.path)).sorted().joined(separator: ", ")
        throw Failure(description: "action-clip executable not found next to the test bundle (searched \(searched)); build it with `swift build` before `swift test`")
    }

    /// Runs `action-clip arguments` to completion. Output goes through files, so a chatty child
    /// can never block on a full pipe.
    /// `environment` adds to (or replaces) the test process's variables.
    static func run(_ arguments: [String], in directory: URL? = nil, environment extra: [String: String] = [:]) throws -> Result {
        let scratch = try temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outputURL = scratch.appendingPathComponent("stdout"), errorURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL), error = try FileHandle(forWritingTo: errorURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable())
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["ACTION_CLIP_MODELS"] = nil
        // Under Scripts/sanitize.sh the child is an ASan build too. It may exit on an error while
        // another thread is still loading a model (an over-long label is found before the text
        // network is ready); LeakSanitizer's exit-time scan would report what that thread holds, so
        // leaks are checked in the test process only.
        if let options = environment["ASAN_OPTIONS"] { environment["ASAN_OPTIONS"] = options + ":detect_leaks=0" }
        environment.merge(extra) { $1 }
        process.environment = environment
        if let directory { process.currentDirectoryURL = directory }
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try output.close()
        try error.close()
        return Result(status: process.terminationStatus,
                      standardOutput: String(decoding: try Data(contentsOf: outputURL), as: UTF8.self),
                      standardError: String(decoding: try Data(contentsOf: errorURL), as: UTF8.self))
    }

    /// A fresh scratch directory.
    static func temporaryDirectory(_ purpose: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-\(purpose)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A model directory holding symlinks to the tiny stand-in models and the CLIP vocabulary.
    /// The vocabulary is not committed (Weights/ is git-ignored); Scripts/fetch-vocab.sh fetches it.
    static func tinyModelDirectory() throws -> URL {
        guard FileManager.default.fileExists(atPath: vocabulary.path) else {
            throw Failure(description: "\(vocabulary.path) is missing: run Scripts/fetch-vocab.sh (or Scripts/setup.sh) first")
        }
        let directory = try temporaryDirectory("models")
        for name in ["vit-32-8f-image_clip.onnx", "vit-32-8f-text_clip.onnx", "vit-32-8f-fusion.onnx"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(name),
                                                       withDestinationURL: tinyFixtures.appendingPathComponent(name))
        }
        try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(vocabulary.lastPathComponent),
                                                   withDestinationURL: vocabulary)
        return directory
    }

    /// Parses JSON text into Foundation objects.
    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}

/// A minimal protobuf writer for hand-made ONNX models (field numbers from onnx.proto).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func integer(_ field: Int, _ value: Int) {
        varint(UInt64(field << 3))
        varint(UInt64(bitPattern: Int64(value)))
    }

    mutating func bytesField(_ field: Int, _ payload: [UInt8]) {
        varint(UInt64(field << 3 | 2))
        varint(UInt64(payload.count))
        bytes += payload
    }

    mutating func string(_ field: Int, _ text: String) { bytesField(field, Array(text.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytesField(field, inner.bytes)
    }

    /// A graph input or output: name, ONNX element type (1 float, 7 int64) and fixed dims.
    struct Value {
        let name: String
        let elementType: Int
        let dims: [Int]
    }

    /// A node: op type, input names, output names.
    struct Node {
        let opType: String
        let inputs: [String]
        let outputs: [String]
    }

    /// ModelProto (IR 5, default domain opset 10) with the given nodes, inputs and outputs.
    static func model(nodes: [Node], inputs: [Value], outputs: [Value]) -> Data {
        func valueInfo(_ writer: inout ProtobufWriter, _ value: Value) {
            writer.string(1, value.name)                                 // ValueInfoProto.name
            writer.message(2) { type in                                  // .type
                type.message(1) { tensor in                              // TypeProto.tensor_type
                    tensor.integer(1, value.elementType)                 // elem_type
                    tensor.message(2) { shape in                         // shape
                        for dim in value.dims { shape.message(1) { $0.integer(1, dim) } }
                    }
                }
            }
        }
        var model = ProtobufWriter()
        model.integer(1, 5)                                              // ir_version
        model.message(7) { graph in                                      // graph
            for (index, node) in nodes.enumerated() {
                graph.message(1) { writer in                             // node
                    for input in node.inputs { writer.string(1, input) }
                    for output in node.outputs { writer.string(2, output) }
                    writer.string(3, "node\(index)")
                    writer.string(4, node.opType)
                }
            }
            graph.string(2, "handmade")                                  // GraphProto.name
            for input in inputs { graph.message(11) { valueInfo(&$0, input) } }
            for output in outputs { graph.message(12) { valueInfo(&$0, output) } }
        }
        model.message(8) { opset in opset.string(1, ""); opset.integer(2, 10) }  // opset_import
        return Data(model.bytes)
    }

    /// One node `opType` mapping float x [2] to y [2].
    static func singleNodeModel(opType: String) -> Data {
        model(nodes: [Node(opType: opType, inputs: ["x"], outputs: ["y"])],
              inputs: [Value(name: "x", elementType: 1, dims: [2])],
              outputs: [Value(name: "y", elementType: 1, dims: [2])])
    }
}
