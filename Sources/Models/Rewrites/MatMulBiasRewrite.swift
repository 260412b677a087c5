import ONNXLoader
import Tensor

/// `matmul-bias`: replaces `Add(MatMul(x, W), b)` (either Add operand order) with W a constant
/// [K, N] and b a constant [N] by one `FusedLinear(x, W, b)` whose GEMM starts from the bias.
/// Two neighbours are absorbed when the Linear's output has no other reader:
/// - a following `FusedQuickGELU` (the first MLP layer; run the `quickgelu` rule first), giving
///   activation = quickgelu;
/// - a following residual `Add(r, .)` / `Add(., r)` with r not a constant (the second MLP layer),
///   given to the node as its residual input (broadcast like Add when shapes differ).
public struct MatMulBiasRewrite: GraphRewrite {
    public let name = "matmul-bias"
    /// A rule with no options.
    public init() {}

    /// Replaces every `Add(MatMul(x, W), b)` (with its activation or residual, when present) by one `FusedLinear`; returns how many.
    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let index = GraphIndex(graph)
        var editor = GraphEditor()
        for (addIndex, add) in graph.nodes.enumerated() where add.opType == "Add" && add.inputs.count == 2 {
            guard let (matched, bias) = linearOperands(of: add, index) else { continue }
            let x = matched.inputs[0], weight = matched.inputs[1]
            var anchor = addIndex, output = add.outputs[0]
            var inputs = [x, weight, bias]
            var attributes: [String: Attribute] = [:]
            if let (nextIndex, next) = index.soleConsumer(of: output) {
                if next.opType == OpKind.fusedQuickGELU.rawValue, next.domain == OpKind.fusedDomain {
                    anchor = nextIndex
                    output = next.outputs[0]
                    attributes["activation"] = .string(Array(LinearActivation.quickGELU.rawValue.utf8))
                } else if next.opType == "Add", next.domain.isEmpty || next.domain == "ai.onnx",
                          let residual = GraphIndex.otherOperand(of: next, than: output), residual != output,
                          index.constant(residual) == nil {
                    anchor = nextIndex
                    output = next.outputs[0]
                    inputs.append(residual)
                }
            }
            guard !editor.isClaimed(anchor) else { continue }
            let anchorNode = graph.nodes[anchor]
            editor.replace(anchor, with: fusedNode(
                .fusedLinear, name: "FusedLinear(\(anchorNode.name.isEmpty ? output : anchorNode.name))",
                inputs: inputs, output: output, attributes: attributes))
        }
        return editor.apply(to: &graph)
    }

    /// For `Add(MatMul(x, W), b)`: the MatMul node and the bias name, when W is a float [K, N]
    /// constant, b a float constant of N elements and the MatMul's only reader is this Add.
    func linearOperands(of add: ONNXNode, _ index: GraphIndex) -> (matMul: ONNXNode, bias: String)? {
        for (product, bias) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] {
            guard let (_, matMul) = index.node(producing: product, "MatMul"), matMul.inputs.count == 2,
                  index.soleConsumer(of: product) != nil,
                  let weight = index.constant(matMul.inputs[1]), weight.dataType == .float32, weight.rank == 2,
                  let biasValue = index.constant(bias), biasValue.dataType == .float32, biasValue.rank <= 1,
                  biasValue.count == weight.shape[1], index.constant(matMul.inputs[0]) == nil else { continue }
            return (matMul, bias)
        }
        return nil
    }
}
