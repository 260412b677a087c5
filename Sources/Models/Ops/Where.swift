import ONNXLoader
import Tensor

// Where (opset 9, 16): output = condition ? X : Y with numpy broadcasting of all three inputs.
// condition is bool; X and Y share any type (16 adds bfloat16). Supported: every element type this
// engine stores (values are copied as raw bits). The fusion model uses (bool, int64, int64) 1-D.

/// ONNX Where.
struct WhereOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let condition = try inputs.required(0, "condition"), x = try inputs.required(1, "X"), y = try inputs.required(2, "Y")
        return [try mathKernel { () throws(KernelError) in try select(condition, x, y) }]
    }
}
