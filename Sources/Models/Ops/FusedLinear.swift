import ONNXLoader
import Tensor

// FusedLinear (domain ai.action-clip.fused, made by the `matmul-bias` rewrite; no ONNX opset).
// Inputs: X [..., K], W [K, N], B [N] (optional, "" when absent), R (optional residual).
// Attribute: activation = "none" (default) or "quickgelu".
// Output: activation(X @ W + B) + R, replacing Add(MatMul(X, W), B), an optional following
// FusedQuickGELU and an optional residual Add(R, .). R broadcasts with the product as Add does.

/// A linear layer with bias, activation and residual in the GEMM epilogue.
struct FusedLinearOperator: Operator {
    let activation: LinearActivation

    init(node: ONNXNode, opset: Int) throws {
        let name = try node.string("activation", default: "none") ?? "none"
        guard let parsed = LinearActivation(rawValue: name) else {
            throw OpError("FusedLinear activation '\(name)' is not one of none, quickgelu")
        }
        activation = parsed
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X"), weight = try inputs.required(1, "W")
        let bias = inputs.optional(2), residual = inputs.optional(3)
        return [try mathKernel { () throws(KernelError) in
            try linear(x, weight: weight, bias: bias, residual: residual, activation: activation)
        }]
    }
}
