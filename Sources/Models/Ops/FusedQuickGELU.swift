import ONNXLoader
import Tensor

// FusedQuickGELU (domain ai.action-clip.fused, made by the `quickgelu` rewrite; no ONNX opset).
// Input X float32; output X * sigmoid(1.702 X), CLIP's QuickGELU, replacing
// Mul(h, Sigmoid(Mul(h, 1.702))). No attributes: the rewrite only matches the constant 1.702.

/// CLIP's QuickGELU as one node.
struct FusedQuickGELUOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X")
        return [try mathKernel { () throws(KernelError) in try quickGELU(x) }]
    }
}
