import ONNXLoader
import Tensor

// Sqrt (opset 1, 6, 13): Y = sqrt(X). Opset 6 dropped consumed_inputs, 13 adds bfloat16.
// Supported: float32 (negative input gives NaN).

/// ONNX Sqrt; see `UnaryElementwise`.
struct SqrtOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.sqrt, inputs) }
}
