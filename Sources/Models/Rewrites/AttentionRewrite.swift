import ONNXLoader
import Tensor

/// `attention`: replaces torch 1.8.1's exported self-attention block (graphs.md §5.4) with one
/// `FusedAttention` node:
/// ```
/// qkv = Add(MatMul(x, W_in[E,3E]), b_in[3E]);  q, k, v = Split(qkv, axis=-1, three equal parts)
/// Q  = Transpose(Reshape(Mul(q, scale), .), [1,0,2])     scale: a float constant (0.125)
/// KT = Transpose(Reshape(k, .), [1,2,0]);  V = Transpose(Reshape(v, .), [1,0,2])
/// P  = Softmax(MatMul(Q, KT) [+ mask], axis=2 or -1)
/// y  = Add(MatMul(Reshape(Transpose(MatMul(P, V), [1,0,2]), .), W_out[E,E]), b_out[E])
/// [Add(residual, y)]                                     absorbed when y has no other reader
/// ```
/// The mask, when present, becomes an input of the fused node (it is not assumed causal). The
/// number of heads is read from the graph: from a constant reshape shape [L, N*H, head_dim], or
/// from the computed shape's `Div(embed, H)` (head_dim) or `Mul(batch, H)` (N*H) constant. The
/// scale is used as given (in CLIP it is head_dim^-0.5). Intermediate values read elsewhere
/// keep their nodes (see `GraphEditor`), so a partial overlap stays correct.
public struct AttentionRewrite: GraphRewrite {
    public let name = "attention"
    /// A rule with no options; its patterns are fixed by the torch 1.8.1 attention code path.
    public init() {}

    /// Replaces every matching attention block by one `FusedAttention` node; returns how many.
    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let index = GraphIndex(graph)
        var editor = GraphEditor()
        for split in graph.nodes where split.opType == "Split" {
            guard let match = match(split: split, index), !editor.isClaimed(match.anchor) else { continue }
            let anchorNode = graph.nodes[match.anchor]
            var inputs = [match.x, match.inWeight, match.inBias, match.outWeight, match.outBias]
            if match.mask != nil || match.residual != nil { inputs.append(match.mask ?? "") }
            if let residual = match.residual { inputs.append(residual) }
            editor.replace(match.anchor, with: fusedNode(
                .fusedAttention, name: "FusedAttention(\(anchorNode.name.isEmpty ? match.output : anchorNode.name))",
                inputs: inputs, output: match.output,
                attributes: ["heads": .int(Int64(match.heads)), "scale": .float(match.scale)]))
        }
        return editor.apply(to: &graph)
    }

    struct Match {
        var x: String, inWeight: String, inBias: String, outWeight: String, outBias: String
        var mask: String?, residual: String?
        var heads: Int, scale: Float
        var anchor: Int, output: String
    }

    func match(split: ONNXNode, _ index: GraphIndex) -> Match? {
        guard split.inputs.count == 1, split.outputs.count == 3,
              let axis = try? split.int("axis", default: 0), axis == -1 || axis == 2 else { return nil }
        // Input projection: qkv = Add(MatMul(x, W_in), b_in).
        guard let (_, inAdd) = index.node(producing: split.inputs[0], "Add"),
              let (inMatMul, inBias) = MatMulBiasRewrite().linearOperands(of: inAdd, index),
              let inWeight = index.constant(inMatMul.inputs[1]) else { return nil }
        let embed = inWeight.shape[0]
        guard embed > 0, inWeight.shape[1] == 3 * embed else { return nil }
        if let parts = (try? split.ints("split")) ?? nil, parts != [Int64](repeating: Int64(embed), count: 3) { return nil }
        let (q, k, v) = (split.outputs[0], split.outputs[1], split.outputs[2])

        // Q = Transpose(Reshape(q * scale)), KT, V.
        guard let (_, scaleMul) = index.soleConsumer(of: q), scaleMul.opType == "Mul",
              let scaleName = GraphIndex.otherOperand(of: scaleMul, than: q), let scale = index.scalar(scaleName),
              let (queryShape, queries) = headView(of: scaleMul.outputs[0], perm: [1, 0, 2], index),
              let (_, keys) = headView(of: k, perm: [1, 2, 0], index),
              let (_, values) = headView(of: v, perm: [1, 0, 2], index) else { return nil }
        guard let heads = headCount(shape: queryShape, embed: embed, index), heads > 0, embed % heads == 0 else { return nil }

        // Scores, optional mask, softmax over the last axis.
        guard let (_, scores) = index.soleConsumer(of: queries), scores.opType == "MatMul", scores.inputs == [queries, keys],
              let (_, afterScores) = index.soleConsumer(of: scores.outputs[0]) else { return nil }
        var mask: String?
        var softmax = afterScores
        if afterScores.opType == "Add" {
            guard afterScores.inputs[0] == scores.outputs[0], afterScores.inputs.count == 2,
                  let (_, next) = index.soleConsumer(of: afterScores.outputs[0]) else { return nil }
            mask = afterScores.inputs[1]
            softmax = next
        }
        guard softmax.opType == "Softmax", let softmaxAxis = try? softmax.int("axis"), softmaxAxis == 2 || softmaxAxis == -1,
              let (_, context) = index.soleConsumer(of: softmax.outputs[0]), context.opType == "MatMul",
              context.inputs == [softmax.outputs[0], values] else { return nil }

        // Back to [L, N, E] and the output projection.
        guard let (_, transpose) = index.soleConsumer(of: context.outputs[0]), transpose.opType == "Transpose",
              (try? transpose.ints("perm")) == [1, 0, 2],
              let (_, reshape) = index.soleConsumer(of: transpose.outputs[0]), reshape.opType == "Reshape",
              reshape.inputs.first == transpose.outputs[0],
              let (_, outMatMul) = index.soleConsumer(of: reshape.outputs[0]), outMatMul.opType == "MatMul",
              outMatMul.inputs.first == reshape.outputs[0],
              let (outAddIndex, outAdd) = index.soleConsumer(of: outMatMul.outputs[0]), outAdd.opType == "Add",
              let (checkedMatMul, outBias) = MatMulBiasRewrite().linearOperands(of: outAdd, index),
              checkedMatMul.outputs == outMatMul.outputs,
              let outWeight = index.constant(outMatMul.inputs[1]), outWeight.shape == [embed, embed] else { return nil }

        var result = Match(x: inMatMul.inputs[0], inWeight: inMatMul.inputs[1], inBias: inBias,
                           outWeight: outMatMul.inputs[1], outBias: outBias, mask: mask, residual: nil,
                           heads: heads, scale: scale, anchor: outAddIndex, output: outAdd.outputs[0])
        if let (residualIndex, residualAdd) = index.soleConsumer(of: outAdd.outputs[0]), residualAdd.opType == "Add",
           let residual = GraphIndex.otherOperand(of: residualAdd, than: outAdd.outputs[0]), residual != outAdd.outputs[0],
           index.constant(residual) == nil {
            result.residual = residual
            result.anchor = residualIndex
            result.output = residualAdd.outputs[0]
        }
        return result
    }

    /// `Transpose(Reshape(value, shape), perm)` as the only reader chain of `value`: the shape
    /// input's name and the transposed value.
    func headView(of value: String, perm: [Int64], _ index: GraphIndex) -> (shape: String, result: String)? {
        guard let (_, reshape) = index.soleConsumer(of: value), reshape.opType == "Reshape",
              reshape.inputs.count == 2, reshape.inputs[0] == value,
              let (_, transpose) = index.soleConsumer(of: reshape.outputs[0]), transpose.opType == "Transpose",
              (try? transpose.ints("perm")) == perm else { return nil }
        return (reshape.inputs[1], transpose.outputs[0])
    }

    /// Heads from the per-head reshape shape [L, N*H, head_dim]: a constant, or a Concat whose
    /// last entry is (through Unsqueeze/Cast) `Div(embed, H)` or whose middle entry is `Mul(N, H)`.
    func headCount(shape: String, embed: Int, _ index: GraphIndex) -> Int? {
        if let constant = index.constant(shape), constant.dataType == .int64, constant.count == 3 {
            let headSize = Int(constant.int64s[2])
            return headSize > 0 && embed % headSize == 0 ? embed / headSize : nil
        }
        guard let (_, concat) = index.node(producing: shape, "Concat"), concat.inputs.count == 3 else { return nil }
        func unwrap(_ value: String) -> ONNXNode? {
            var current = value
            while let producerIndex = index.producer[current] {
                let node = index.graph.nodes[producerIndex]
                guard node.opType == "Unsqueeze" || node.opType == "Cast", let first = node.inputs.first else { return node }
                current = first
            }
            return nil
        }
        if let div = unwrap(concat.inputs[2]), div.opType == "Div", div.inputs.count == 2,
           let heads = index.integerScalar(div.inputs[1]), heads > 0, heads <= Int64(embed) {
            return Int(heads)
        }
        if let mul = unwrap(concat.inputs[1]), mul.opType == "Mul", mul.inputs.count == 2 {
            for operand in mul.inputs {
                if let heads = index.integerScalar(operand), heads > 0, heads <= Int64(embed) { return Int(heads) }
            }
        }
        return nil
    }
}
