import ONNXLoader
import Tensor

// Neg (opset 1, 6, 13): Y = -X. Opset 6 types: float, int8/16/32/64. Supported: float32 and int64
// (Int64.min wraps to itself).

/// ONNX Neg; see `UnaryElementwise`.
struct NegOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.neg, inputs) }
}
