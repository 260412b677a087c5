import Foundation
import ONNXLoader
import Tensor

/// Renders a graph as Graphviz DOT for study.
///
/// - Each node is a box labelled with its op type and output shape(s).
/// - Initializers and Constant nodes are not drawn: they are folded into their consumer's label
///   (`W[768,2304]` for a weight, `= 0.125` for a small constant, `C[1,77,77]` for a large one).
/// - The nodes of each transformer block sit in a `subgraph cluster_block_N`.
/// - Integer shape-program nodes are grey with dashed edges, or left out with `hideShapeOps`.
public struct GraphDiagram: Sendable {
    public var hideShapeOps: Bool
    /// A line written under the graph's title (e.g. "shapes from a run on …").
    public var caption: String

    /// Drawing options: leave integer shape programs out, and a caption under the graph.
    public init(hideShapeOps: Bool = false, caption: String = "") {
        self.hideShapeOps = hideShapeOps
        self.caption = caption
    }

    /// The DOT text of `topology`'s graph with `structure`'s blocks as clusters.
    public func render(_ topology: GraphTopology, structure: BlockStructure, title: String) -> String {
        let graph = topology.graph
        let nodes = graph.nodes
        var out = "digraph \(Self.quoted(title)) {\n"
        let label = caption.isEmpty ? title : title + "\n" + caption
        out += "  graph [rankdir=TB, labelloc=t, fontname=\"Helvetica\", fontsize=12, label=\(Self.quoted(label))];\n"
        out += "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=10];\n"
        out += "  edge [color=\"#555555\", arrowsize=0.6];\n"

        func hidden(_ index: Int) -> Bool { topology.isConstant[index] || (hideShapeOps && topology.isIntegerNode[index]) }

        for (offset, info) in graph.inputs.enumerated() {
            let shape = topology.shape(of: info.name)?.description ?? Self.declared(info)
            out += "  in\(offset) [shape=ellipse, fillcolor=\"#dbeafe\", label=\(Self.quoted(info.name + "\n" + shape))];\n"
        }
        for (offset, info) in graph.outputs.enumerated() {
            let shape = topology.shape(of: info.name)?.description ?? Self.declared(info)
            out += "  out\(offset) [shape=ellipse, fillcolor=\"#dcfce7\", label=\(Self.quoted(info.name + "\n" + shape))];\n"
        }

        var inBlock = Set<Int>()
        for block in structure.blocks {
            out += "  subgraph cluster_block_\(block.index) {\n"
            out += "    label=\(Self.quoted("block \(block.index)")); style=\"rounded,filled\"; fillcolor=\"#f5f5f4\"; color=\"#a8a29e\";\n"
            for index in block.nodes where !hidden(index) {
                out += "    " + nodeStatement(index, topology) + "\n"
                inBlock.insert(index)
            }
            out += "  }\n"
        }
        for index in topology.order where !hidden(index) && !inBlock.contains(index) {
            out += "  " + nodeStatement(index, topology) + "\n"
        }

        for index in topology.order where !hidden(index) {
            var seen = Set<String>()
            for input in nodes[index].inputs where !input.isEmpty && !seen.contains(input) {
                seen.insert(input)
                let from: String
                let integerEdge: Bool
                if let producer = topology.producer[input] {
                    if hidden(producer) { continue }
                    from = "n\(producer)"
                    integerEdge = topology.isIntegerNode[producer]
                } else if let offset = graph.inputs.firstIndex(where: { $0.name == input }) {
                    from = "in\(offset)"
                    integerEdge = !(topology.shape(of: input)?.isFloatingPoint ?? true)
                } else {
                    continue
                }
                out += "  \(from) -> n\(index)" + (integerEdge ? " [color=\"#c8c8c8\", style=dashed]" : "") + ";\n"
            }
        }
        for (offset, info) in graph.outputs.enumerated() {
            if let producer = topology.producer[info.name], !hidden(producer) {
                out += "  n\(producer) -> out\(offset);\n"
            } else if let input = graph.inputs.firstIndex(where: { $0.name == info.name }) {
                out += "  in\(input) -> out\(offset);\n"
            }
        }
        out += "}\n"
        return out
    }

    func nodeStatement(_ index: Int, _ topology: GraphTopology) -> String {
        let node = topology.graph.nodes[index]
        var lines = [node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"]
        let shapes = node.outputs.filter { !$0.isEmpty }.map { topology.shape(of: $0)?.shapeText ?? "?" }
        if !shapes.isEmpty { lines.append(shapes.joined(separator: " ")) }
        for input in node.inputs where !input.isEmpty {
            if let text = Self.foldedText(input, topology) { lines.append(text) }
        }
        var attributes = "label=\(Self.quoted(lines.joined(separator: "\n")))"
        attributes += ", tooltip=\(Self.quoted(node.name.isEmpty ? node.outputs.first ?? node.opType : node.name))"
        if topology.isIntegerNode[index] {
            attributes += ", color=\"#c8c8c8\", fontcolor=\"#9a9a9a\", fillcolor=\"#f7f7f7\", fontsize=8"
        } else if ["MatMul", "Gemm", "Conv"].contains(node.opType) {
            attributes += ", fillcolor=\"#fde68a\""
        } else if node.opType == "Softmax" {
            attributes += ", fillcolor=\"#fbcfe8\""
        }
        return "n\(index) [\(attributes)];"
    }

    /// The label line for an initializer or Constant input, or nil for an activation.
    static func foldedText(_ value: String, _ topology: GraphTopology) -> String? {
        let isWeight = topology.isInitializer(value)
        guard isWeight || topology.isConstantOutput(value), let tensor = topology.constantTensor(value) else { return nil }
        let dims = "[" + tensor.shape.map(String.init).joined(separator: ",") + "]"
        if tensor.count <= 4 && tensor.count > 0 {
            let values: [String]
            switch tensor.dataType {
            case .float32: values = tensor.floats.map { String(format: "%g", Double($0)) }
            case .int64: values = tensor.int64s.map { String($0) }
            default: values = [dims]
            }
            let text = tensor.rank == 0 ? values.joined() : "[" + values.joined(separator: ",") + "]"
            return (isWeight ? "W = " : "= ") + text
        }
        return (isWeight ? "W" : "C") + dims
    }

    static func declared(_ info: ValueInfo) -> String {
        DataType.onnxName(code: info.elementTypeCode) + (info.shape.map { "[" + $0.map(\.description).joined(separator: ",") + "]" } ?? "")
    }

    /// A DOT double-quoted string; newlines become `\n` line breaks.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for character in text {
            switch character {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result + "\""
    }
}
