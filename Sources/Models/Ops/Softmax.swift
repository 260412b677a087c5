import ONNXLoader
import Tensor

// Softmax (opset 1, 11, 13).
// Opsets 1-12: the input is coerced to 2-D [prod(dims[..<axis]), prod(dims[axis...])] and each
// row is normalised; axis defaults to 1 (opset 11 only widened the axis range to [-r, r]). For
// axis = rank-1 this is the per-axis softmax; for a smaller axis it normalises several dims jointly.
// Opset 13+: softmax along the single axis `axis`, default -1.
// Supported: float32. Max-subtracted; -inf entries (attention mask) give 0; an all -inf row gives
// NaN, as numpy/torch. The graphs use axis=2 on rank 3.

/// ONNX Softmax with the opset-dependent axis rule.
struct SoftmaxOperator: Operator {
    let axis: Int
    let coerceTo2D: Bool

    init(node: ONNXNode, opset: Int) throws {
        coerceTo2D = opset < 13
        axis = Int(try node.int("axis", default: coerceTo2D ? 1 : -1) ?? -1)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        return [try mathKernel { () throws(KernelError) in
            coerceTo2D ? try softmaxCoerced(input, axis: axis) : try softmax(input, axis: axis)
        }]
    }
}
