import Foundation
import ONNXLoader
import Tensor

/// Shape specialization of the CLIP text graph to the true token length of its rows.
///
/// Why it is exact: every token row is `SOT, k ids, EOT, 0, 0, ...` padded to 77, and the graph's
/// output is the hidden state at the EOT position (`x[arange(N), text.argmax(-1)]`, graphs.md §5.5).
/// All layers act on each position separately except attention, whose causal mask gives position
/// `i` weight exactly 0 (`exp(-inf)`) on every position `j > i`. So the state at EOT depends only
/// on positions `0...EOT`, and running the graph on the first `L ≥ EOT + 1` tokens, with the
/// positional embedding cut to its first `L` rows and every mask to its `L×L` top-left block,
/// computes the same feature (up to float summation order inside the smaller GEMMs).
///
/// The graph is not rewritten by hand: `analyze` checks the preconditions on the loaded graph and
/// answers `.fallback(reason)` when any does not hold, and the caller then runs the full 77-token
/// graph. The preconditions:
/// - (a) one graph input `[*, 77]` int64, read only by a Gather on a rank-2 token-embedding
///   constant and by the EOT ArgMax;
/// - (b) the Gather's output (through Casts/Identities) is added to a `[77, E]` positional-embedding
///   constant that nothing else reads;
/// - (c) every `[1, 77, 77]` or `[77, 77]` float constant is an exactly causal mask (0 on and below
///   the diagonal, -inf above), read only by Add nodes, and there is at least one;
/// - (d) `ArgMax(text, axis=-1, keepdims=0)` feeds the indices of a Gather, and the graph output
///   depends on the token activations only through that Gather's data input (Shape nodes aside:
///   they read dimensions, which the specialized graph recomputes for `L`);
/// - (e) no other constant bakes the length: no other constant has a dimension of 77, no integer
///   constant holds the value 77, and no Reshape has a constant shape holding the declared batch
///   (the `default` torch exporter folds such shapes, so its graphs fall back).
public struct TextLengthSpecialization: Sendable {
    /// CLIP's context length, the token axis every text graph declares.
    public static let contextLength = 77
    /// Name used by `RewriteOptions` switches (`ACTION_CLIP_DISABLE_REWRITES=textlength`).
    public static let rewriteName = "textlength"

    /// Result of checking a graph.
    public enum Analysis: Sendable {
        case specializable(TextLengthSpecialization)
        /// A precondition failed; the reason names it and the node or tensor involved.
        case fallback(reason: String)
    }

    /// Where a constant lives: an initializer, or the `value` of a Constant node.
    enum ConstantSource: Sendable, Hashable {
        case initializer(String)
        case constantNode(index: Int)
    }

    /// The graph as loaded (before any other rewrite).
    public let graph: ONNXGraph
    /// Name of the `[rows, 77]` int64 token input.
    public let inputName: String
    /// Width of the positional embedding.
    public let embeddingWidth: Int
    /// How many causal masks the graph holds (one per transformer block).
    public let maskCount: Int
    let positionalEmbedding: (source: ConstantSource, tensor: Tensor)
    let masks: [(source: ConstantSource, tensor: Tensor)]

    // MARK: Analysis

    /// Checks preconditions (a)–(e) on `graph`.
    public static func analyze(_ graph: ONNXGraph) -> Analysis {
        do {
            return .specializable(try TextLengthAnalyzer(graph).run())
        } catch {
            return .fallback(reason: error.description)
        }
    }

    // MARK: Specialized graphs

    /// The graph for rows of `length` tokens (1...77): token input declared `[*, length]`,
    /// positional embedding cut to its first `length` rows, every mask to its top-left block.
    public func graph(length: Int) throws -> ONNXGraph {
        let context = Self.contextLength
        guard (1...context).contains(length) else {
            throw TextLengthError("text length \(length) is outside 1...\(context)")
        }
        var result = graph
        if length == context { return result }
        declareTokenInput(in: &result, batch: nil, length: length)
        Self.replace(positionalEmbedding.source, with: try Self.rows(positionalEmbedding.tensor, at: Array(0..<length)),
                     in: &result)
        for mask in masks {
            Self.replace(mask.source, with: try Self.topLeftBlock(mask.tensor, size: length), in: &result)
        }
        return result
    }

    /// The graph for one row holding `tree` (`PromptPrefixTree`): token input declared
    /// `[1, tree.count]`, positional embedding rows taken at the nodes' depths, every mask replaced
    /// by the tree's visibility mask. Its output is only meaningful at the tree's end nodes, which
    /// the caller selects with `EOTPositionRewrite(positions:)` (the graph's own EOT gather would
    /// look for one ArgMax in the whole row).
    public func graph(tree: PromptPrefixTree) throws -> ONNXGraph {
        let count = tree.count
        guard count >= 1, tree.depths.count == count,
              tree.depths.allSatisfy({ (0..<positionalEmbedding.tensor.shape[0]).contains($0) }) else {
            throw TextLengthError("a prefix tree of \(count) nodes with depths outside 0..<\(Self.contextLength)")
        }
        var result = graph
        declareTokenInput(in: &result, batch: .fixed(1), length: count)
        Self.replace(positionalEmbedding.source, with: try Self.rows(positionalEmbedding.tensor, at: tree.depths), in: &result)
        // One tensor for every block's mask: they are all the same causal mask.
        let visibility = tree.visibilityMask()
        var shared: [[Int]: Tensor] = [:]
        for mask in masks {
            var shape = mask.tensor.shape
            shape[shape.count - 1] = count
            shape[shape.count - 2] = count
            let tensor = try shared[shape] ?? Tensor(visibility, shape: shape)
            shared[shape] = tensor
            Self.replace(mask.source, with: tensor, in: &result)
        }
        return result
    }

    static func replace(_ source: ConstantSource, with tensor: Tensor, in graph: inout ONNXGraph) {
        switch source {
        case .initializer(let name):
            graph.initializers[name] = tensor
        case .constantNode(let index):
            graph.nodes[index].attributes["value"] = .tensor(tensor)
        }
    }

    /// Declares the token input `[batch, length]`; a nil `batch` keeps the declared batch dimension.
    func declareTokenInput(in graph: inout ONNXGraph, batch: ValueInfo.Dimension?, length: Int) {
        for index in graph.inputs.indices where graph.inputs[index].name == inputName {
            var info = graph.inputs[index]
            info.shape = [batch ?? info.shape?.first ?? .symbolic("rows"), .fixed(length)]
            graph.inputs[index] = info
        }
    }

    /// Rows `indices` of a `[77, E]` tensor, in that order: `[indices.count, E]`.
    static func rows(_ tensor: Tensor, at indices: [Int]) throws -> Tensor {
        let width = tensor.shape[1]
        let result = try Tensor.uninitialized(.float32, shape: [indices.count, width])
        let source = tensor.floats
        let destination = result.mutableFloats
        for (row, index) in indices.enumerated() {
            for column in 0..<width { destination[row * width + column] = source[index * width + column] }
        }
        return result
    }

    /// The `[.., size, size]` top-left block of a `[1, 77, 77]` or `[77, 77]` mask.
    static func topLeftBlock(_ tensor: Tensor, size: Int) throws -> Tensor {
        let context = tensor.shape[tensor.rank - 1]
        var shape = tensor.shape
        shape[shape.count - 1] = size
        shape[shape.count - 2] = size
        let result = try Tensor.uninitialized(.float32, shape: shape)
        let source = tensor.floats
        let destination = result.mutableFloats
        for row in 0..<size {
            for column in 0..<size { destination[row * size + column] = source[row * context + column] }
        }
        return result
    }
}

/// A specialization precondition that failed, or a bad length.
public struct TextLengthError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The checks of `TextLengthSpecialization.analyze`, one method per precondition.
private struct TextLengthAnalyzer {
    typealias Source = TextLengthSpecialization.ConstantSource
    let graph: ONNXGraph
    let context = TextLengthSpecialization.contextLength
    /// Every constant tensor: initializers and Constant-node values, by the value name they define.
    var constants: [String: (source: Source, tensor: Tensor)] = [:]
    /// Node indices reading each value name.
    var consumers: [String: [Int]] = [:]
    var producer: [String: Int] = [:]

    init(_ graph: ONNXGraph) {
        self.graph = graph
        for (name, tensor) in graph.initializers { constants[name] = (.initializer(name), tensor) }
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
            for output in node.outputs where !output.isEmpty { producer[output] = index }
            if node.opType == "Constant", node.outputs.count == 1,
               let value = try? node.tensor("value") {
                constants[node.outputs[0]] = (.constantNode(index: index), value)
            }
        }
    }

    func fail(_ message: String) -> TextLengthError { TextLengthError(message) }

    func run() throws(TextLengthError) -> TextLengthSpecialization {
        let (input, declaredBatch) = try tokenInput()
        let (embeddingGather, argMax) = try inputReaders(input)
        let embeddingWidth = try tokenEmbeddingWidth(embeddingGather)
        let positional = try positionalEmbedding(after: embeddingGather, width: embeddingWidth)
        let masks = try causalMasks()
        try noBakedLength(skipping: Set([positional.name] + masks.map(\.name)), declaredBatch: declaredBatch)
        try outputTakenAtEOT(argMax: argMax, embeddingGather: embeddingGather)
        return TextLengthSpecialization(
            graph: graph, inputName: input, embeddingWidth: embeddingWidth, maskCount: masks.count,
            positionalEmbedding: (positional.source, positional.tensor),
            masks: masks.map { ($0.source, $0.tensor) })
    }

    /// (a) one int64 `[*, 77]` input.
    func tokenInput() throws(TextLengthError) -> (name: String, batch: Int64?) {
        let fed = graph.inputs.filter { graph.initializers[$0.name] == nil }
        guard fed.count == 1, let input = fed.first else {
            throw fail("the graph has \(fed.count) inputs, expected one token input")
        }
        guard graph.outputs.count == 1 else { throw fail("the graph has \(graph.outputs.count) outputs, expected one") }
        guard input.elementType == .int64 else { throw fail("input '\(input.name)' is not int64") }
        guard let shape = input.shape, shape.count == 2, shape[1] == .fixed(context) else {
            throw fail("input '\(input.name)' is not declared [*, \(context)]")
        }
        if case .fixed(let batch) = shape[0] { return (input.name, Int64(batch)) }
        return (input.name, nil)
    }

    /// (a) the input is read by exactly one embedding Gather and one ArgMax, nothing else.
    func inputReaders(_ input: String) throws(TextLengthError) -> (gather: Int, argMax: Int) {
        var gather: Int?
        var argMax: Int?
        for index in consumers[input] ?? [] {
            let node = graph.nodes[index]
            switch node.opType {
            case "Gather" where node.inputs.count == 2 && node.inputs[1] == input && node.inputs[0] != input
                    && ((try? node.int("axis", default: 0)) ?? -1) == 0 && gather == nil:
                gather = index
            case "ArgMax" where argMax == nil:
                let axis = (try? node.int("axis", default: 0)) ?? 0
                let keepDims = (try? node.int("keepdims", default: 1)) ?? 1
                let selectLast = (try? node.int("select_last_index", default: 0)) ?? 0
                guard axis == -1 || axis == 1, keepDims == 0, selectLast == 0 else {
                    throw fail("ArgMax \(node.displayName) on the tokens is not axis=-1 keepdims=0 first-index")
                }
                argMax = index
            default:
                throw fail("the token input is read by \(node.displayName), expected only the embedding Gather and the EOT ArgMax")
            }
        }
        guard let gather else { throw fail("no Gather reads the token input as indices of a token-embedding table") }
        guard let argMax else { throw fail("no ArgMax over the tokens (the EOT position) reads the token input") }
        return (gather, argMax)
    }

    func tokenEmbeddingWidth(_ gather: Int) throws(TextLengthError) -> Int {
        let table = graph.nodes[gather].inputs[0]
        guard let constant = constants[table], constant.tensor.rank == 2, constant.tensor.dataType == .float32 else {
            throw fail("the token Gather's table '\(table)' is not a rank-2 float constant")
        }
        return constant.tensor.shape[1]
    }

    /// (b) Gather → (Cast/Identity)* → Add(·, pos[77, E]).
    func positionalEmbedding(after gather: Int, width: Int) throws(TextLengthError)
        -> (name: String, source: Source, tensor: Tensor) {
        var value = graph.nodes[gather].outputs[0]
        while true {
            let readers = consumers[value] ?? []
            guard readers.count == 1, let next = readers.first else {
                throw fail("the token embeddings '\(value)' have \(readers.count) readers, expected a single chain to the positional Add")
            }
            let node = graph.nodes[next]
            switch node.opType {
            case "Cast" where ((try? node.int("to")) ?? nil) == 1, "Identity":
                value = node.outputs[0]
            case "Add":
                guard node.inputs.count == 2 else { throw fail("\(node.displayName) does not have two inputs") }
                let other = node.inputs[0] == value ? node.inputs[1] : node.inputs[0]
                guard let constant = constants[other], constant.tensor.dataType == .float32,
                      constant.tensor.shape == [context, width] else {
                    throw fail("\(node.displayName) does not add a [\(context), \(width)] positional-embedding constant")
                }
                let readers = (consumers[other] ?? []).count
                guard readers == 1 else { throw fail("the positional embedding '\(other)' has \(readers) readers, expected 1") }
                return (other, constant.source, constant.tensor)
            default:
                throw fail("the token embeddings reach \(node.displayName) before the positional Add")
            }
        }
    }

    /// (c) every [1,77,77]/[77,77] float constant is an exactly causal mask read only by Adds.
    func causalMasks() throws(TextLengthError) -> [(name: String, source: Source, tensor: Tensor)] {
        var masks: [(name: String, source: Source, tensor: Tensor)] = []
        for (name, constant) in constants.sorted(by: { $0.key < $1.key }) {
            let shape = constant.tensor.shape
            guard shape == [1, context, context] || shape == [context, context] else { continue }
            guard constant.tensor.dataType == .float32 else { throw fail("mask '\(name)' is not float32") }
            let values = constant.tensor.floats
            for row in 0..<context {
                for column in 0..<context {
                    let value = values[row * context + column]
                    let causal = column <= row ? value == 0 : (value == -.infinity)
                    guard causal else {
                        throw fail("mask '\(name)' is not exactly causal at [\(row), \(column)] (value \(value))")
                    }
                }
            }
            for reader in consumers[name] ?? [] where graph.nodes[reader].opType != "Add" {
                throw fail("mask '\(name)' is read by \(graph.nodes[reader].displayName), expected only Add")
            }
            masks.append((name, constant.source, constant.tensor))
        }
        guard !masks.isEmpty else { throw fail("no [1, \(context), \(context)] causal mask constant found") }
        return masks
    }

    /// (e) nothing else bakes the length (or the batch into a Reshape).
    func noBakedLength(skipping: Set<String>, declaredBatch: Int64?) throws(TextLengthError) {
        for (name, constant) in constants.sorted(by: { $0.key < $1.key }) where !skipping.contains(name) {
            let tensor = constant.tensor
            // The token-embedding table is [49408, E]; any other dimension of 77 is sequence-sized.
            if tensor.shape.contains(context) {
                throw fail("constant '\(name)' \(tensor.shape) has a dimension of \(context)")
            }
            if let values = Self.integers(tensor), values.contains(Int64(context)) {
                throw fail("integer constant '\(name)' holds \(context) (a baked sequence length)")
            }
        }
        for node in graph.nodes where node.opType == "Reshape" && node.inputs.count >= 2 {
            guard let shape = constants[node.inputs[1]] else { continue }
            guard let values = Self.integers(shape.tensor) else { continue }
            if let declaredBatch, values.contains(declaredBatch) {
                throw fail("Reshape \(node.displayName) has a constant shape \(values) holding the declared batch \(declaredBatch)")
            }
        }
    }

    static func integers(_ tensor: Tensor) -> [Int64]? {
        switch tensor.dataType {
        case .int64: return Array(tensor.int64s)
        case .int32: return tensor.elements(Int32.self).map(Int64.init)
        default: return nil
        }
    }

    /// (d) the ArgMax feeds a Gather's indices, and the output sees the activations only through
    /// that Gather's data.
    func outputTakenAtEOT(argMax: Int, embeddingGather: Int) throws(TextLengthError) {
        let fromArgMax = reachable(from: [graph.nodes[argMax].outputs[0]], cutting: [])
        let eotGathers = graph.nodes.indices.filter { index in
            let node = graph.nodes[index]
            return node.opType == "Gather" && node.inputs.count == 2 && fromArgMax.contains(node.inputs[1])
                && !fromArgMax.contains(node.inputs[0])
        }
        guard eotGathers.count == 1, let eot = eotGathers.first else {
            throw fail("found \(eotGathers.count) Gathers indexed by the EOT ArgMax, expected 1")
        }
        let output = graph.outputs[0].name
        let activations = [graph.nodes[embeddingGather].outputs[0]]
        guard reachable(from: activations, cutting: []).contains(output) else {
            throw fail("the output does not depend on the token embeddings")
        }
        let leaking = reachable(from: activations, cutting: [eot])
        guard !leaking.contains(output) else {
            throw fail("the output depends on the token activations other than through the EOT Gather \(graph.nodes[eot].displayName)")
        }
        guard reachable(from: [graph.nodes[eot].outputs[0]], cutting: []).contains(output) else {
            throw fail("the EOT Gather \(graph.nodes[eot].displayName) does not reach the output")
        }
    }

    /// Value names reachable forward from `start`. Shape nodes stop the walk (they read only
    /// dimensions), and so do the data inputs of the nodes in `cutting`.
    func reachable(from start: [String], cutting: Set<Int>) -> Set<String> {
        var seen = Set(start)
        var pending = start
        while let value = pending.popLast() {
            for reader in consumers[value] ?? [] {
                let node = graph.nodes[reader]
                if node.opType == "Shape" { continue }
                if cutting.contains(reader), node.inputs.first == value { continue }
                for output in node.outputs where !output.isEmpty && !seen.contains(output) {
                    seen.insert(output)
                    pending.append(output)
                }
            }
        }
        return seen
    }
}
