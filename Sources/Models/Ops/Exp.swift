import ONNXLoader
import Tensor

// Exp (opset 1, 6, 13): Y = e^X. Opset 6 dropped consumed_inputs, 13 adds bfloat16.
// Supported: float32 (SIMD polynomial, ~1.5e-7 relative; results below 3e-38 flush to 0).

/// ONNX Exp; see `UnaryElementwise`.
struct ExpOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.exp, inputs) }
}
