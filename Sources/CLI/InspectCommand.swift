import ArgumentParser
import Foundation
import Models
import ONNXLoader
import Tensor

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe an ONNX model: versions, inputs and outputs, op histogram, parameters.",
        discussion: "With --verbose every initializer is listed with its type, shape and size."
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Also list every initializer.")
    var verbose = false

    func run() throws {
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

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
