import ONNXLoader
import Tensor

// Erf (opset 9, 13): Y = erf(X). Opset 9 accepts numeric types, 13 adds bfloat16.
// Supported: float32 (max abs error ~2e-7).

/// ONNX Erf; see `UnaryElementwise`.
struct ErfOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.erf, inputs) }
}
