import Foundation
import ONNXLoader
import Tensor

/// A readable outline of a transformer network derived from its graph (nothing is hard-coded
/// per model): the embedding stem, each transformer block with its width, heads, MLP width,
/// parameters and MACs, the head, and totals.
///
/// MACs come from the actual MatMul/Gemm/Conv shapes of one run at the declared input shape;
/// per-sample figures divide by the batch (first dimension) of the first input, so the image
/// graph reports per frame and the text graph per 77-token row.
public struct NetworkOutline: Sendable {
    /// A notable node of the stem or head (weighted ops, lookups, LayerNorms, reductions).
    public struct Item: Sendable {
        public var operation: String
        public var detail: String
        /// The node-name scope (`/visual/ln_post`), empty when the file has no scoped names.
        public var scope: String
        public var inputShape: [Int]?
        public var outputShape: [Int]?
        public var multiplyAccumulates: Int
    }

    /// The nodes before the first block (embedding) or after the last (head).
    public struct Section: Sendable {
        public var name: String
        public var nodeCount: Int
        public var parameterCount: Int
        public var multiplyAccumulates: Int
        public var items: [Item]
    }

    /// One transformer block's figures.
    public struct Block: Sendable {
        public var index: Int
        public var nodeCount: Int
        public var width: Int?
        public var heads: Int?
        public var headDimension: Int?
        public var mlpWidth: Int?
        public var parameterCount: Int
        public var multiplyAccumulates: Int
        public var outputShape: [Int]?
    }

    public var graphName: String
    /// Where the shapes came from (`image float32[8,3,224,224]`).
    public var feedDescription: String
    public var batch: Int
    public var detection: BlockStructure.Method
    public var embedding: Section
    public var blocks: [Block]
    public var head: Section
    public var totalParameters: Int
    /// MACs of one run at the declared input (all `batch` samples).
    public var totalMultiplyAccumulates: Int

    public var multiplyAccumulatesPerSample: Int { batch > 0 ? totalMultiplyAccumulates / batch : totalMultiplyAccumulates }

    /// Builds the outline; `topology` must carry captured shapes for the MAC counts.
    public init(topology: GraphTopology, structure: BlockStructure) {
        let graph = topology.graph
        let nodes = graph.nodes
        let shape: (String) -> ValueShape? = { topology.shape(of: $0) }
        var macs = [Int](repeating: 0, count: nodes.count)
        for index in nodes.indices { macs[index] = OperationCost.multiplyAccumulates(nodes[index], shape: shape) ?? 0 }

        var counted = Set<String>()
        func parameters(of members: [Int]) -> Int {
            var total = 0
            for index in members {
                for input in nodes[index].inputs where !counted.contains(input) {
                    guard let tensor = graph.initializers[input] else { continue }
                    counted.insert(input)
                    total += tensor.count
                }
            }
            return total
        }

        let firstOutput = structure.blocks.first.flatMap { topology.producer[$0.outputValue] }
        var stem: [Int] = []
        var tail: [Int] = []
        for index in topology.order where structure.blockOfNode[index] == nil && !topology.isConstant[index] {
            let beforeBlocks = firstOutput.map { topology.node($0, dependsOn: index) } ?? false
            if beforeBlocks { stem.append(index) } else { tail.append(index) }
        }

        func section(_ name: String, _ members: [Int]) -> Section {
            Section(name: name, nodeCount: members.count, parameterCount: parameters(of: members),
                    multiplyAccumulates: members.reduce(0) { $0 + macs[$1] },
                    items: Self.items(members, topology: topology, macs: macs))
        }
        let embedding = section("embedding", stem)
        var blocks: [Block] = []
        for block in structure.blocks {
            blocks.append(Self.describe(block, topology: topology, macs: macs, parameterCount: parameters(of: block.nodes)))
        }
        let head = section("head", tail)

        self.graphName = graph.name
        self.feedDescription = topology.shapes?.feedDescription ?? "(no run)"
        self.batch = max(1, topology.shapes?.batch ?? 1)
        self.detection = structure.method
        self.embedding = embedding
        self.blocks = blocks
        self.head = head
        self.totalParameters = graph.initializers.values.reduce(0) { $0 + $1.count }
        self.totalMultiplyAccumulates = macs.reduce(0, +)
    }

    static func describe(_ block: TransformerBlock, topology: GraphTopology, macs: [Int], parameterCount: Int) -> Block {
        let nodes = topology.graph.nodes
        let output = topology.shape(of: block.outputValue)?.shape
        let width = output?.last
        // Attention scores: the first MatMul of two activations; its left operand is [.., L, head_dim].
        var headDimension: Int?
        for index in block.nodes where nodes[index].opType == "MatMul" {
            let inputs = nodes[index].inputs
            guard inputs.count == 2, !inputs.contains(where: { topology.isInitializer($0) || topology.isConstantOutput($0) }),
                  let left = topology.shape(of: inputs[0])?.shape, left.count >= 3 else { continue }
            headDimension = left.last
            break
        }
        // MLP width: the weight output size that is neither the width (out projections) nor 3 × width (packed q,k,v).
        var candidates: [Int] = []
        for index in block.nodes where ["MatMul", "Gemm"].contains(nodes[index].opType) {
            for input in nodes[index].inputs {
                guard let weight = topology.graph.initializers[input], weight.rank == 2 else { continue }
                let transposed = nodes[index].opType == "Gemm" && ((try? nodes[index].int("transB", default: 0)) ?? 0) != 0
                let outputSize = transposed ? weight.shape[0] : weight.shape[1]
                if outputSize != width && outputSize != 3 * (width ?? 0) { candidates.append(outputSize) }
            }
        }
        let heads = headDimension.flatMap { dimension in width.flatMap { dimension > 0 && $0 % dimension == 0 ? $0 / dimension : nil } }
        return Block(index: block.index, nodeCount: block.nodes.count, width: width, heads: heads,
                     headDimension: headDimension, mlpWidth: candidates.max(), parameterCount: parameterCount,
                     multiplyAccumulates: block.nodes.reduce(0) { $0 + macs[$1] }, outputShape: output)
    }

    /// LayerNorms (a last-axis ReduceMean whose mean is subtracted from its own input), weighted
    /// ops, embedding lookups, index ops and non-LayerNorm reductions, in execution order.
    static func items(_ members: [Int], topology: GraphTopology, macs: [Int]) -> [Item] {
        let graph = topology.graph
        let nodes = graph.nodes
        func weightText(_ value: String) -> String? {
            guard let tensor = graph.initializers[value] else { return nil }
            let dims = "[" + tensor.shape.map(String.init).joined(separator: ",") + "]"
            let meaningful = !value.hasPrefix("onnx::") && !value.allSatisfy(\.isNumber)
            return meaningful ? "W\(dims) \(value)" : "W\(dims)"
        }
        func producerOp(_ value: String) -> String? { topology.producer[value].map { nodes[$0].opType } }
        func isLayerNormMean(_ index: Int) -> Bool {
            let node = nodes[index]
            guard node.opType == "ReduceMean", let input = node.inputs.first else { return false }
            return (topology.consumers[node.outputs.first ?? ""] ?? []).contains { consumer in
                nodes[consumer].opType == "Sub" && nodes[consumer].inputs.contains(input)
            }
        }
        var items: [Item] = []
        for index in members where !topology.isIntegerNode[index] || nodes[index].opType == "ArgMax" {
            let node = nodes[index]
            var input = node.inputs.first.flatMap { topology.shape(of: $0)?.shape }
            var output = node.outputs.first.flatMap { topology.shape(of: $0)?.shape }
            if node.opType == "Gather", node.inputs.count > 1, topology.isInitializer(node.inputs[0]) {
                input = topology.shape(of: node.inputs[1])?.shape
            }
            if isLayerNormMean(index) { output = input }
            var scope = ""
            if let slash = node.name.lastIndex(of: "/"), slash != node.name.startIndex { scope = String(node.name[..<slash]) }
            func add(_ operation: String, _ detail: String) {
                items.append(Item(operation: operation, detail: detail, scope: scope, inputShape: input,
                                  outputShape: output, multiplyAccumulates: macs[index]))
            }
            let weights = node.inputs.compactMap(weightText)
            switch node.opType {
            case "Conv":
                let kernel = ((try? node.ints("kernel_shape")) ?? nil)?.map(String.init).joined(separator: "x") ?? "?"
                let strides = ((try? node.ints("strides")) ?? nil)?.map(String.init).joined(separator: "x") ?? "1"
                add("Conv", (weights + ["kernel \(kernel)", "stride \(strides)"]).joined(separator: " "))
            case "MatMul", "Gemm":
                add(node.opType, weights.isEmpty ? "activations" : weights.joined(separator: " "))
            case "Gather":
                let axis = ((try? node.int("axis", default: 0)) ?? nil) ?? 0
                if let table = weights.first {
                    add("Gather", "embedding lookup \(table)")
                } else if topology.shape(of: node.outputs.first ?? "")?.isFloatingPoint ?? true {
                    let indexShape = node.inputs.count > 1 ? topology.shape(of: node.inputs[1]) : nil
                    let indices = indexShape.map { $0.shape.isEmpty ? "scalar index" : "indices \($0.shapeText)" } ?? "indices ?"
                    add("Gather", "axis \(axis), \(indices)")
                }
            case "ReduceMean":
                if isLayerNormMean(index) {
                    add("LayerNorm", "")
                } else if node.inputs.first.flatMap(producerOp) != "Pow" {
                    let axes = ((try? node.ints("axes")) ?? nil)?.map(String.init).joined(separator: ",") ?? "all"
                    let keep = ((try? node.int("keepdims", default: 1)) ?? nil) ?? 1
                    add("ReduceMean", "axes [\(axes)] keepdims \(keep)")
                }
            case "Softmax", "Flatten":
                add(node.opType, "")
            case "ArgMax":
                add("ArgMax", "axis \(((try? node.int("axis", default: 0)) ?? nil) ?? 0) (token index)")
            case "Concat":
                add("Concat", "axis \(((try? node.int("axis", default: 0)) ?? nil) ?? 0)")
            case "Add", "Mul":
                // Skip LayerNorm gamma/beta and matmul biases; keep embeddings added in.
                let others = node.inputs.filter { graph.initializers[$0] == nil }.compactMap(producerOp)
                let affine = others.contains { ["Mul", "Div", "MatMul", "Gemm", "Conv"].contains($0) }
                if !weights.isEmpty && !affine { add(node.opType, weights.joined(separator: " ")) }
            default:
                if !weights.isEmpty { add(node.opType, weights.joined(separator: " ")) }
            }
        }
        return items
    }

    // MARK: Rendering

    /// `4.41 GMACs`, `15.19 MMACs`, `4.10 kMACs`, `12 MACs` (with `unit` "MACs").
    public static func scaled(_ value: Int, unit: String = "") -> String {
        let magnitude = Double(value)
        if magnitude >= 1e9 { return String(format: "%.2f G", magnitude / 1e9) + unit }
        if magnitude >= 1e6 { return String(format: "%.2f M", magnitude / 1e6) + unit }
        if magnitude >= 1e3 { return String(format: "%.2f k", magnitude / 1e3) + unit }
        return String(value) + (unit.isEmpty ? "" : " " + unit)
    }

    static func shapeText(_ shape: [Int]?) -> String {
        shape.map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? "?"
    }

    /// The outline as text, one line per item and block.
    public var text: String {
        var lines: [String] = []
        let perSample = batch > 1 ? "per sample (batch \(batch))" : "per sample"
        lines.append("shapes: one run on \(feedDescription); figures are \(perSample); FLOPs = 2 x MACs")
        lines.append("blocks: \(blocks.count) found by \(detection.rawValue)")
        func sectionLines(_ section: Section) {
            lines.append("")
            lines.append("\(section.name): \(section.nodeCount) nodes, \(section.parameterCount.formatted()) parameters, "
                         + Self.scaled(section.multiplyAccumulates / batch, unit: "MACs"))
            for item in section.items {
                var line = "  " + item.operation.padding(toLength: 10, withPad: " ", startingAt: 0)
                if !item.detail.isEmpty { line += " " + item.detail }
                line += "  \(Self.shapeText(item.inputShape)) -> \(Self.shapeText(item.outputShape))"
                if item.multiplyAccumulates > 0 { line += "  " + Self.scaled(item.multiplyAccumulates / batch, unit: "MACs") }
                if !item.scope.isEmpty { line += "  (\(item.scope))" }
                lines.append(line)
            }
        }
        sectionLines(embedding)
        lines.append("")
        lines.append("transformer blocks:")
        lines.append("  block  nodes  width  heads  head dim  MLP    parameters   MACs        FLOPs       output")
        for block in blocks {
            func optional(_ value: Int?) -> String { value.map(String.init) ?? "?" }
            let columns: [(String, Int)] = [
                (String(block.index), 5), (String(block.nodeCount), 5), (optional(block.width), 5), (optional(block.heads), 5),
                (optional(block.headDimension), 8), (optional(block.mlpWidth), 5), (block.parameterCount.formatted(), 11),
                (Self.scaled(block.multiplyAccumulates / batch), 10), (Self.scaled(2 * block.multiplyAccumulates / batch), 10),
            ]
            lines.append("  " + columns.map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                         + "  " + Self.shapeText(block.outputShape))
        }
        sectionLines(head)
        lines.append("")
        lines.append("total: \(totalParameters.formatted()) parameters, \(Self.scaled(multiplyAccumulatesPerSample, unit: "MACs")) = "
                     + "\(Self.scaled(2 * multiplyAccumulatesPerSample, unit: "FLOPs")) \(perSample)"
                     + (batch > 1 ? "; \(Self.scaled(totalMultiplyAccumulates, unit: "MACs")) for the whole batch" : ""))
        return lines.joined(separator: "\n")
    }

    /// The outline as JSON (`totals.macs_per_sample` is what the test script checks).
    public var json: JSONValue {
        func optional(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }
        func shape(_ value: [Int]?) -> JSONValue { value.map { .array($0.map { .int($0) }) } ?? .null }
        func section(_ section: Section) -> JSONValue {
            .object([
                ("nodes", .int(section.nodeCount)),
                ("parameters", .int(section.parameterCount)),
                ("macs", .int(section.multiplyAccumulates)),
                ("items", .array(section.items.map { item in
                    .object([("op", .string(item.operation)), ("detail", .string(item.detail)), ("scope", .string(item.scope)),
                             ("input_shape", shape(item.inputShape)), ("output_shape", shape(item.outputShape)),
                             ("macs", .int(item.multiplyAccumulates))])
                })),
            ])
        }
        return .object([
            ("graph", .string(graphName)),
            ("shapes_from", .string(feedDescription)),
            ("batch", .int(batch)),
            ("block_detection", .string(detection.rawValue)),
            ("embedding", section(embedding)),
            ("blocks", .array(blocks.map { block in
                .object([("index", .int(block.index)), ("nodes", .int(block.nodeCount)), ("width", optional(block.width)),
                         ("heads", optional(block.heads)), ("head_dim", optional(block.headDimension)),
                         ("mlp_width", optional(block.mlpWidth)), ("parameters", .int(block.parameterCount)),
                         ("macs", .int(block.multiplyAccumulates)), ("flops", .int(2 * block.multiplyAccumulates)),
                         ("output_shape", shape(block.outputShape))])
            })),
            ("head", section(head)),
            ("totals", .object([
                ("parameters", .int(totalParameters)),
                ("macs", .int(totalMultiplyAccumulates)),
                ("flops", .int(2 * totalMultiplyAccumulates)),
                ("macs_per_sample", .int(multiplyAccumulatesPerSample)),
                ("flops_per_sample", .int(2 * multiplyAccumulatesPerSample)),
            ])),
        ])
    }
}
