import ONNXLoader
import Tensor

/// `eot-position`: the text graph's EOT gather at one known position, so that `select-rows` can
/// narrow the last transformer block to that position.
///
/// CLIP's text graph ends with `x[arange(N), text.argmax(-1)]`, which torch 1.8.1 lowers at
/// opset 10 to (graphs.md §5.5, y = [N, L, E] after ln_final):
///
///     idx = Add(ArgMax(text, axis=-1, keepdims=0), Mul(arange(N), Gather(Shape(y), 1)))
///     Gather(Flatten(y, axis=2), idx) -> Reshape(., Concat([-1], Gather(Shape(y), 2)))
///                                     -> Reshape(., Concat(Shape(idx), Gather(Shape(y), 2)))
///
/// where arange(N) is `Range(0, N, 1)` or, at opset 10, the chain `Gather(Shape(y), 0) ->
/// Unsqueeze([0]) -> ConstantOfShape(int64 1) -> NonZero -> Transpose([1, 0]) -> Squeeze([1])`.
/// When the ArgMax is `position` on every row, idx[n] = n·L + position, so the whole chain is
/// `Gather(y, position, axis 1)`: row n's features at `position`, [N, E]. This rule replaces it
/// by that Gather. The Gather has a constant index, so `select-rows` (which must run after this
/// rule) then moves it up through ln_final into the last block: its queries, attention rows,
/// output projection and MLP run for one position instead of L (about 6 % of the text work).
///
/// **Only for inputs whose ArgMax is `position` on every row.** The rewritten graph no longer
/// computes the ArgMax, so it cannot check this itself; the rule is therefore not in the standard
/// pipeline. `TextEncoder` adds it, with position L - 1, only for runs whose rows all need exactly
/// the run's L tokens (their EOT, the largest id, is the last token). Every other node of the
/// pattern is matched by op type, attributes and constant values; anything else (another index
/// formula, an extra node in the tail, a rank that is not statically 3) leaves the graph as it is.
public struct EOTPositionRewrite: GraphRewrite {
    /// The switch name (`ACTION_CLIP_DISABLE_REWRITES=eot-position`).
    public static let ruleName = "eot-position"
    public let name = EOTPositionRewrite.ruleName

    /// Where the features are taken.
    public enum Selection: Sendable, Equatable {
        /// Every row's EOT is at this position: `Gather(y, position, axis 1)`, [N, E].
        case position(Int)
        /// The input is one row (N = 1) holding several prompts as a prefix tree (`PromptPrefixTree`):
        /// the features at these positions of it, one output row each,
        /// `Gather(Flatten(y, axis 2), positions)`, [positions.count, E].
        case positions([Int])
    }

    public let selection: Selection

    public init(selection: Selection) {
        self.selection = selection
    }

    /// Every input row has its EOT at `position`.
    public init(position: Int) {
        self.init(selection: .position(position))
    }

    /// The input is a single row whose features are wanted at `positions` (see `Selection`).
    public init(positions: [Int]) {
        self.init(selection: .positions(positions))
    }

    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let index = GraphIndex(graph)
        var ranks = StaticRanks(graph: graph, index: index)
        let matches = graph.nodes.indices.compactMap { match(gatherAt: $0, index, &ranks) }
        guard matches.count == 1, let match = matches.first else { return 0 }
        // What the new Gather reads, its constant index and its axis.
        let data: String, indices: Tensor, axis: Int64
        switch selection {
        case .position(let position):
            guard position >= 0 else { return 0 }
            (data, indices, axis) = (match.features, try Tensor([Int64(position)], shape: []), 1)
        case .positions(let positions):
            guard !positions.isEmpty, positions.allSatisfy({ $0 >= 0 }) else { return 0 }
            (data, indices, axis) = (match.flattened, try Tensor(positions.map(Int64.init), shape: [positions.count]), 0)
        }
        let tail = graph.nodes[match.lastReshape]
        let indexName = "eot-position::indices"
        graph.nodes[match.lastReshape] = ONNXNode(
            name: "EOTPosition(\(tail.name.isEmpty ? match.output : tail.name))", opType: "Gather", domain: "",
            inputs: [data, indexName], outputs: [match.output], attributes: ["axis": .int(axis)])
        graph.nodes.insert(ONNXNode(name: indexName, opType: "Constant", domain: "", inputs: [], outputs: [indexName],
                                    attributes: ["value": .tensor(indices)]), at: 0)
        // The EOT Gather, the first Reshape and the whole index computation are now unread.
        GraphEditor.removeDeadNodes(&graph)
        return 1
    }

    private struct Match {
        /// y, the [N, L, E] features the EOT Gather picks rows of.
        let features: String
        /// Flatten(y, axis 2), [N * L, E].
        let flattened: String
        /// The second Reshape, which the new Gather replaces, and its output.
        let lastReshape: Int
        let output: String
    }

    /// The pattern anchored at the EOT `Gather(Flatten(y, axis=2), idx)` at `gatherIndex`.
    private func match(gatherAt gatherIndex: Int, _ index: GraphIndex, _ ranks: inout StaticRanks) -> Match? {
        let gather = index.graph.nodes[gatherIndex]
        guard Self.isStandard(gather, "Gather"), gather.inputs.count == 2, gather.outputs.count == 1,
              (try? gather.int("axis", default: 0)) == 0,
              let (_, flatten) = index.node(producing: gather.inputs[0], "Flatten"), flatten.inputs.count == 1,
              (try? flatten.int("axis", default: 1)) == 2,
              index.soleConsumer(of: gather.inputs[0])?.index == gatherIndex else { return nil }
        let features = flatten.inputs[0]
        guard ranks.rank(of: features) == 3 else { return nil }
        let positions = gather.inputs[1]
        guard isEOTIndex(positions, features: features, index) else { return nil }
        // Reshape(., Concat([-1], dim 2)) then Reshape(., Concat(Shape(idx), dim 2)): both give
        // [N, E] from [N, E], so the new Gather's [N, E] output stands in for the second one.
        guard let (_, first) = index.soleConsumer(of: gather.outputs[0]), Self.isStandard(first, "Reshape"),
              first.inputs.count == 2, first.inputs[0] == gather.outputs[0], first.outputs.count == 1,
              let firstShape = concatParts(first.inputs[1], index), firstShape.count == 2,
              index.constant(firstShape[0]).map({ $0.dataType == .int64 && Array($0.int64s) == [-1] }) == true,
              dimension(firstShape[1], index).map({ $0.source == features && $0.axis == 2 }) == true,
              let (secondIndex, second) = index.soleConsumer(of: first.outputs[0]), Self.isStandard(second, "Reshape"),
              second.inputs.count == 2, second.inputs[0] == first.outputs[0], second.outputs.count == 1,
              let secondShape = concatParts(second.inputs[1], index), secondShape.count == 2,
              let (_, shapeOfPositions) = index.node(producing: secondShape[0], "Shape"),
              shapeOfPositions.inputs == [positions], shapeOfPositions.attributes.isEmpty,
              dimension(secondShape[1], index).map({ $0.source == features && $0.axis == 2 }) == true
        else { return nil }
        return Match(features: features, flattened: gather.inputs[0], lastReshape: secondIndex, output: second.outputs[0])
    }

    /// Whether `value` is `ArgMax(tokens) + arange(N) * L` with N, L the first two dims of `features`.
    private func isEOTIndex(_ value: String, features: String, _ index: GraphIndex) -> Bool {
        guard let (_, add) = index.node(producing: Self.skippingIntegerCasts(value, index), "Add"), add.inputs.count == 2 else {
            return false
        }
        for (argMaxValue, productValue) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
            guard let (_, argMax) = index.node(producing: argMaxValue, "ArgMax"), argMax.inputs.count == 1,
                  let tokens = index.graph.inputs.first(where: { $0.name == argMax.inputs[0] }),
                  let axis = try? argMax.int("axis", default: 0), axis == -1 || (axis == 1 && tokens.shape?.count == 2),
                  (try? argMax.int("keepdims", default: 1)) == 0,
                  (try? argMax.int("select_last_index", default: 0)) == 0,
                  let (_, mul) = index.node(producing: Self.skippingIntegerCasts(productValue, index), "Mul"),
                  mul.inputs.count == 2 else { continue }
            for (rangeValue, lengthValue) in [(mul.inputs[0], mul.inputs[1]), (mul.inputs[1], mul.inputs[0])] {
                if dimension(lengthValue, index).map({ $0.source == features && $0.axis == 1 }) == true,
                   isArange(rangeValue, features: features, index) {
                    return true
                }
            }
        }
        return false
    }

    /// Whether `value` is 0, 1, ..., N - 1 for N = features.shape[0].
    private func isArange(_ value: String, features: String, _ index: GraphIndex) -> Bool {
        let value = Self.skippingIntegerCasts(value, index)
        func isCount(_ candidate: String) -> Bool {
            dimension(candidate, index).map { $0.source == features && $0.axis == 0 && $0.indexRank == 0 } == true
        }
        if let (_, range) = index.node(producing: value, "Range"), range.inputs.count == 3 {
            return index.integerScalar(range.inputs[0]) == 0 && index.integerScalar(range.inputs[2]) == 1
                && isCount(range.inputs[1])
        }
        // opset 10: Squeeze([1]) <- Transpose([1, 0]) <- NonZero <- ConstantOfShape(1) <- Unsqueeze([0]) <- N
        guard let (_, squeeze) = index.node(producing: value, "Squeeze"), squeeze.inputs.count == 1,
              (try? squeeze.ints("axes")) == [1],
              let (_, transpose) = index.node(producing: squeeze.inputs[0], "Transpose"),
              (try? transpose.ints("perm")) == [1, 0],
              let (_, nonZero) = index.node(producing: transpose.inputs[0], "NonZero"),
              let (_, ones) = index.node(producing: nonZero.inputs[0], "ConstantOfShape"), ones.inputs.count == 1,
              let fill = try? ones.tensor("value"), fill.dataType == .int64, Array(fill.int64s) == [1],
              let (_, unsqueeze) = index.node(producing: ones.inputs[0], "Unsqueeze"), unsqueeze.inputs.count == 1,
              (try? unsqueeze.ints("axes")) == [0] else { return false }
        return isCount(Self.skippingIntegerCasts(unsqueeze.inputs[0], index))
    }

    /// For `Gather(Shape(v), k)` (through integer Casts): v, k and the rank of the index k.
    private func dimension(_ value: String, _ index: GraphIndex) -> (source: String, axis: Int64, indexRank: Int)? {
        guard let (_, gather) = index.node(producing: Self.skippingIntegerCasts(value, index), "Gather"),
              gather.inputs.count == 2, (try? gather.int("axis", default: 0)) == 0,
              let (_, shape) = index.node(producing: gather.inputs[0], "Shape"), shape.inputs.count == 1,
              shape.attributes.isEmpty,
              let axis = index.constant(gather.inputs[1]), axis.dataType == .int64, axis.count == 1, axis.rank <= 1,
              let position = axis.int64s.first else { return nil }
        return (shape.inputs[0], position, axis.rank)
    }

    /// The inputs of a `Concat(axis 0)` producing `value`.
    private func concatParts(_ value: String, _ index: GraphIndex) -> [String]? {
        guard let (_, concat) = index.node(producing: value, "Concat"), (try? concat.int("axis")) == 0 else { return nil }
        return concat.inputs
    }

    /// `value` with any `Cast(to=INT64)` / `Identity` producers skipped.
    private static func skippingIntegerCasts(_ value: String, _ index: GraphIndex) -> String {
        var current = value
        while let producer = index.producer[current] {
            let node = index.graph.nodes[producer]
            let isIntegerCast = isStandard(node, "Cast") && (try? node.int("to")) == Int64(DataType.int64.rawValue)
            guard isIntegerCast || isStandard(node, "Identity"), node.inputs.count == 1 else { break }
            current = node.inputs[0]
        }
        return current
    }

    private static func isStandard(_ node: ONNXNode, _ opType: String) -> Bool {
        node.opType == opType && (node.domain.isEmpty || node.domain == "ai.onnx")
    }
}
