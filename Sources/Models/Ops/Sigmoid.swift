import ONNXLoader
import Tensor

// Sigmoid (opset 1, 6, 13): Y = 1 / (1 + exp(-X)). Opset 6 dropped consumed_inputs, 13 adds
// bfloat16. Supported: float32, computed from exp(-|x|) so large |x| neither overflows nor gives NaN.

/// ONNX Sigmoid; see `UnaryElementwise`.
struct SigmoidOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.sigmoid, inputs) }
}
