import ONNXLoader
import Tensor

// Tanh (opset 1, 6, 13): Y = tanh(X). Opset 6 dropped consumed_inputs, 13 adds bfloat16.
// Supported: float32.

/// ONNX Tanh; see `UnaryElementwise`.
struct TanhOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.tanh, inputs) }
}
