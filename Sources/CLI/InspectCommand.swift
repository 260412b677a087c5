import ArgumentParser
import Foundation
import Models
import ONNXLoader
import Tensor

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe an ONNX model: versions, inputs and outputs, op histogram, parameters.",
        discussion: """
        With --verbose every initializer is listed with its type, shape and size. \
        --summary prints the network as an outline (embedding, transformer blocks with width, heads, \
        MLP width, parameters and MACs/FLOPs, head, totals) from one run at the declared input shape. \
        --dot/--svg/--png draw the graph (Graphviz; --svg/--png need its `dot` program): op types and \
        output shapes, weights folded into their consumers, one cluster per transformer block, \
        integer shape programs in grey (or left out with --hide-shape-ops). --fused shows the graph \
        after the rewrite stage (ACTION_CLIP_FUSE / ACTION_CLIP_DISABLE_REWRITES apply).
        """
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Also list every initializer.")
    var verbose = false

    @Flag(help: "Print the network outline with parameter and FLOP counts (with --json: as JSON).")
    var summary = false

    @Option(help: ArgumentHelp("Write the graph as Graphviz DOT to this file.", valueName: "file.dot"))
    var dot: String?

    @Option(help: ArgumentHelp("Render the graph to SVG with Graphviz's dot.", valueName: "file.svg"))
    var svg: String?

    @Option(help: ArgumentHelp("Render the graph to PNG with Graphviz's dot.", valueName: "file.png"))
    var png: String?

    @Flag(help: "Draw the graph after the rewrite stage (fused kernels).")
    var fused = false

    @Flag(name: .customLong("hide-shape-ops"), help: "Leave integer shape-program nodes out of the drawing.")
    var hideShapeOps = false

    func run() throws {
        if summary || dot != nil || svg != nil || png != nil {
            try study()
            return
        }
        let loaded = try userFacing(naming: model) { try ONNXLoader.load(contentsOf: model) }
        let summary = loaded.summary
        let graph = loaded.graph
        let supported = Set(OpKind.allCases.map(\.rawValue))
        let unsupported = summary.opTypeHistogram.map(\.opType).filter { !supported.contains($0) }

        if json {
            var members: [(String, JSONValue)] = [
                ("file", .string(model)),
                ("ir_version", .int(Int(loaded.irVersion))),
                ("opset_imports", .object(loaded.opsetImports.sorted { $0.key < $1.key }.map {
                    ($0.key.isEmpty ? "ai.onnx" : $0.key, .int(Int($0.value)))
                })),
                ("producer", .string([loaded.producerName, loaded.producerVersion].filter { !$0.isEmpty }.joined(separator: " "))),
                ("inputs", .array(graph.inputs.map(Self.describe))),
                ("outputs", .array(graph.outputs.map(Self.describe))),
                ("node_count", .int(summary.nodeCount)),
                ("op_types", .object(summary.opTypeHistogram.map { ($0.opType, .int($0.count)) })),
                ("unsupported_op_types", .array(unsupported.map { .string($0) })),
                ("initializer_count", .int(summary.initializerCount)),
                ("parameter_count", .int(summary.parameterCount)),
                ("parameter_bytes", .int(summary.parameterBytes)),
                ("constant_nodes", .int(summary.constantNodeCount)),
                ("constant_bytes", .int(summary.constantBytes)),
            ]
            if verbose {
                members.append(("initializers", .array(graph.initializerNames.compactMap { name in
                    graph.initializers[name].map { tensor in
                        .object([("name", .string(name)), ("dtype", .string(tensor.dataType.description)),
                                 ("shape", .array(tensor.shape.map { .int($0) })), ("bytes", .int(tensor.byteCount))])
                    }
                })))
            }
            print(JSONValue.object(members).rendered(indent: 2))
            return
        }

        print("file:        \(model)")
        let opsets = loaded.opsetImports.sorted { $0.key < $1.key }
            .map { "\($0.key.isEmpty ? "ai.onnx" : $0.key) \($0.value)" }.joined(separator: ", ")
        print("ir version:  \(loaded.irVersion)    opset: \(opsets)")
        if !loaded.producerName.isEmpty { print("producer:    \(loaded.producerName) \(loaded.producerVersion)") }
        for info in graph.inputs { print("input:       \(Self.signature(info))") }
        for info in graph.outputs { print("output:      \(Self.signature(info))") }
        print("parameters:  \(summary.parameterCount.formatted()) in \(summary.initializerCount) initializers, \(Self.bytes(summary.parameterBytes))")
        print("constants:   \(summary.constantNodeCount) Constant nodes, \(Self.bytes(summary.constantBytes))")
        print("nodes:       \(summary.nodeCount)")
        for (opType, count) in summary.opTypeHistogram {
            let marker = supported.contains(opType) ? "" : "   (not supported by this engine)"
            print("  \(opType.padding(toLength: 18, withPad: " ", startingAt: 0)) \(String(count).leftPadded(6))\(marker)")
        }
        if verbose {
            print("initializers:")
            for name in graph.initializerNames {
                guard let tensor = graph.initializers[name] else { continue }
                print("  \(name)  \(tensor.dataType)\(tensor.shape)  \(Self.bytes(tensor.byteCount))")
            }
        }
    }

    /// --summary, --dot, --svg, --png.
    func study() throws {
        let loaded = try userFacing(naming: model) { try ONNXLoader.load(contentsOf: model) }
        let title = (model as NSString).lastPathComponent + (fused ? " (after rewrites)" : "")
        if svg != nil || png != nil, GraphvizRenderer.dotExecutable() == nil {
            throw CLIError("--svg/--png need Graphviz's 'dot' program, which is not on PATH "
                           + "(install it with 'apt-get install graphviz', or write DOT with --dot FILE.dot)")
        }
        if dot != nil || svg != nil || png != nil {
            let study = try userFacing(naming: model) { try GraphStudy(model: loaded, fused: fused) }
            if let error = study.captureError { Diagnostics.warn("drawing without shapes: \(error)") }
            let text = study.dot(title: title, hideShapeOps: hideShapeOps)
            if let dot {
                try userFacing { try text.write(toFile: dot, atomically: true, encoding: .utf8) }
                Diagnostics.note("wrote \(dot)")
            }
            for (path, format) in [(svg, "svg"), (png, "png")] {
                guard let path else { continue }
                try GraphvizRenderer.render(text, format: format, to: path)
                Diagnostics.note("wrote \(path)")
            }
        }
        if summary {
            // The outline always describes the graph as exported: fused kernels hide the MatMul shapes.
            let study = try userFacing { try GraphStudy(model: loaded, fused: false) }
            if let error = study.captureError {
                throw CLIError("cannot count operations: the sample run of \(model) failed: \(error)")
            }
            let outline = study.outline
            if json {
                var members: [(String, JSONValue)] = [("file", .string(model))]
                if case .object(let rest) = outline.json { members += rest }
                print(JSONValue.object(members).rendered(indent: 2))
            } else {
                print("file:   \(model)")
                print(outline.text)
            }
        }
    }

    static func signature(_ info: ValueInfo) -> String {
        let type = DataType.onnxName(code: info.elementTypeCode)
        let shape = info.shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "(no shape)"
        return "\(info.name)  \(type) \(shape)"
    }

    static func describe(_ info: ValueInfo) -> JSONValue {
        .object([
            ("name", .string(info.name)),
            ("dtype", .string(DataType.onnxName(code: info.elementTypeCode))),
            ("shape", info.shape.map { .array($0.map { dimension -> JSONValue in
                switch dimension {
                case .fixed(let value): return .int(value)
                case .symbolic(let name): return .string(name)
                case .unknown: return .null
                }
            }) } ?? .null),
        ])
    }

    static func bytes(_ count: Int) -> String {
        count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / 1048576) : "\(count) B"
    }
}

/// Runs Graphviz's `dot` to turn DOT text into an image.
enum GraphvizRenderer {
    /// Path of `dot` on PATH, if installed.
    static func dotExecutable() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/dot"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func render(_ text: String, format: String, to path: String) throws {
        guard let executable = dotExecutable() else {
            throw CLIError("Graphviz's 'dot' program is not on PATH (install graphviz)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-T\(format)", "-o", path]
        let input = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardError = errors
        try userFacing { try process.run() }
        // Write on another thread so a dot that fills its stderr pipe cannot deadlock us.
        let data = Data(text.utf8)
        let writer = Thread {
            input.fileHandleForWriting.write(data)
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let detail = String(decoding: message, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            throw CLIError("dot -T\(format) failed (exit \(process.terminationStatus)): \(detail)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
