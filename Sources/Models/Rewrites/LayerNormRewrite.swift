import ONNXLoader
import Tensor

/// `layernorm`: replaces the exported LayerNorm node chains with one `FusedLayerNorm`.
///
/// Matches both spellings in graphs.md §5.1-5.2, anchored at the ReduceMean of the input x:
/// ```
/// m = ReduceMean(x, axes=[-1])                      keepdims absent or 1
/// d = Sub(x, m)        (once, or twice: the TF-LayerNorm has no CSE)
///     [d = Cast(d, to=FLOAT)]                       torch 1.13 artifact, optional
/// v = ReduceMean(Pow(d, 2.0), axes=[-1])
/// y = Div(d', Sqrt(Add(v, eps)))                    d' any Sub/Cast of the same (x, m)
/// o = Add(Mul(y, gamma) | Mul(gamma, y), beta)      gamma, beta constants
/// [out = Cast(o, to=FLOAT)]                         absorbed when it is o's only reader
/// ```
/// eps is read from the graph's constant (CLIP 9.999999747e-06, fusion 1e-12). The CLIP input
/// Cast stays in the graph (it is a no-op on float input and its output also feeds the residual);
/// the fused node reads its output x.
public struct LayerNormRewrite: GraphRewrite {
    public let name = "layernorm"
    /// A rule with no options; epsilons are read from each matched graph.
    public init() {}

    /// Replaces every matching LayerNorm chain by one `FusedLayerNorm` node; returns how many.
    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let index = GraphIndex(graph)
        var editor = GraphEditor()
        for (_, mean) in graph.nodes.enumerated() where mean.opType == "ReduceMean" && GraphIndex.reducesLastAxisKeepingIt(mean) {
            guard let match = match(mean: mean, index) else { continue }
            guard !editor.isClaimed(match.anchor) else { continue }
            let anchorNode = graph.nodes[match.anchor]
            editor.replace(match.anchor, with: fusedNode(
                .fusedLayerNorm, name: "FusedLayerNorm(\(anchorNode.name.isEmpty ? match.output : anchorNode.name))",
                inputs: [match.input, match.gamma, match.beta], output: match.output,
                attributes: ["epsilon": .float(match.epsilon)]))
        }
        return editor.apply(to: &graph)
    }

    struct Match {
        var input: String, gamma: String, beta: String, epsilon: Float
        var anchor: Int, output: String
    }

    func match(mean: ONNXNode, _ index: GraphIndex) -> Match? {
        let x = mean.inputs[0], m = mean.outputs[0]
        // Every value equal to x - m: the Sub outputs and their no-op float Casts.
        var centered = Set<String>()
        for (_, sub) in index.consumers(of: m, "Sub") where sub.inputs == [x, m] {
            centered.insert(sub.outputs[0])
            for (_, cast) in index.consumers(of: sub.outputs[0], "Cast") where GraphIndex.isCastToFloat(cast) {
                centered.insert(cast.outputs[0])
            }
        }
        guard !centered.isEmpty else { return nil }
        // Variance: ReduceMean(Pow(d, 2)), then Sqrt(Add(v, eps)).
        var denominator: (value: String, epsilon: Float)?
        search: for value in centered {
            for (_, pow) in index.consumers(of: value, "Pow") where pow.inputs.count == 2 && pow.inputs[0] == value {
                guard index.scalar(pow.inputs[1]) == 2 else { continue }
                for (_, variance) in index.consumers(of: pow.outputs[0], "ReduceMean") where GraphIndex.reducesLastAxisKeepingIt(variance) {
                    for (_, add) in index.consumers(of: variance.outputs[0], "Add") {
                        guard let epsilonName = GraphIndex.otherOperand(of: add, than: variance.outputs[0]),
                              let epsilon = index.scalar(epsilonName) else { continue }
                        if let (_, root) = index.consumers(of: add.outputs[0], "Sqrt").first {
                            denominator = (root.outputs[0], epsilon)
                            break search
                        }
                    }
                }
            }
        }
        guard let denominator else { return nil }
        guard let (_, div) = index.consumers(of: denominator.value, "Div").first,
              div.inputs.count == 2, div.inputs[1] == denominator.value, centered.contains(div.inputs[0]) else { return nil }
        let normalized = div.outputs[0]
        guard let (_, mul) = index.soleConsumer(of: normalized), mul.opType == "Mul",
              let gamma = GraphIndex.otherOperand(of: mul, than: normalized) else { return nil }
        guard let (addIndex, add) = index.soleConsumer(of: mul.outputs[0]), add.opType == "Add",
              let beta = GraphIndex.otherOperand(of: add, than: mul.outputs[0]) else { return nil }
        guard let gammaValue = index.constant(gamma), let betaValue = index.constant(beta),
              gammaValue.dataType == .float32, betaValue.dataType == .float32,
              gammaValue.rank <= 1, betaValue.rank <= 1, gammaValue.count == betaValue.count, gammaValue.count > 1 else { return nil }
        var anchor = addIndex, output = add.outputs[0]
        if let (castIndex, cast) = index.soleConsumer(of: output), GraphIndex.isCastToFloat(cast) {
            anchor = castIndex
            output = cast.outputs[0]
        }
        return Match(input: x, gamma: gamma, beta: beta, epsilon: denominator.epsilon, anchor: anchor, output: output)
    }
}
