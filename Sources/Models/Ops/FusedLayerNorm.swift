import ONNXLoader
import Tensor

// FusedLayerNorm (domain ai.action-clip.fused, made by the `layernorm` rewrite; no ONNX opset).
// Inputs: X [..., C] float32, gamma [C], beta [C]. Attribute: epsilon (float, required).
// Output: (X - mean) / sqrt(var + epsilon) * gamma + beta over the last axis, with the biased
// variance, which is what CLIP's LayerNorm and the fusion model's TF-LayerNorm spell out in
// ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add nodes.

/// The LayerNorm the `layernorm` rewrite puts in place of the exported node chain.
struct FusedLayerNormOperator: Operator {
    let epsilon: Float

    init(node: ONNXNode, opset: Int) throws {
        guard let value = try node.float("epsilon") else { throw OpError("FusedLayerNorm needs the 'epsilon' attribute") }
        epsilon = value
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X"), gamma = try inputs.required(1, "gamma"), beta = try inputs.required(2, "beta")
        return [try mathKernel { () throws(KernelError) in try layerNorm(x, gamma: gamma, beta: beta, epsilon: epsilon) }]
    }
}
