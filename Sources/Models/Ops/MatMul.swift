import ONNXLoader
import Tensor

// MatMul (opset 1, 9, 13): numpy matmul. 1-D operands are promoted ([K] -> [1,K] on the left,
// [K,1] on the right, the added dim removed again); leading (batch) dims broadcast. Opset 9 added
// integer types and 13 bfloat16; this engine supports float32 only. No attributes.
// The graphs use 3-D x 2-D weights (one sgemm with batch folded into rows), 3-D x 3-D attention
// batches and 2-D x 2-D.

/// ONNX MatMul on float32.
struct MatMulOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        return [try mathKernel { () throws(KernelError) in try matmul(a, b) }]
    }
}
