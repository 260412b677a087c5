import ONNXLoader
import Tensor

/// `quickgelu`: replaces `Mul(h, Sigmoid(Mul(h, 1.702)))` (graphs.md §5.3, either operand order
/// in both Muls) with one `FusedQuickGELU(h)`. The constant must be exactly Float(1.702), the
/// value the kernel uses; any other factor is left alone.
public struct QuickGELURewrite: GraphRewrite {
    public let name = "quickgelu"
    /// A rule with no options; the 1.702 factor is checked on each match.
    public init() {}

    /// Replaces every `x · sigmoid(1.702 x)` chain by one `FusedQuickGELU` node; returns how many.
    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let index = GraphIndex(graph)
        var editor = GraphEditor()
        for sigmoid in graph.nodes where sigmoid.opType == "Sigmoid" && sigmoid.inputs.count == 1 {
            guard let (_, scaled) = index.node(producing: sigmoid.inputs[0], "Mul"), scaled.inputs.count == 2 else { continue }
            let candidates: [(h: String, factor: String)] = [(scaled.inputs[0], scaled.inputs[1]), (scaled.inputs[1], scaled.inputs[0])]
            guard let h = candidates.first(where: { index.scalar($0.factor) == Float(1.702) && index.constant($0.h) == nil })?.h else { continue }
            for (productIndex, product) in index.consumers(of: sigmoid.outputs[0], "Mul")
            where GraphIndex.otherOperand(of: product, than: sigmoid.outputs[0]) == h && !editor.isClaimed(productIndex) {
                editor.replace(productIndex, with: fusedNode(
                    .fusedQuickGELU, name: "FusedQuickGELU(\(product.name.isEmpty ? product.outputs[0] : product.name))",
                    inputs: [h], output: product.outputs[0]))
            }
        }
        return editor.apply(to: &graph)
    }
}
