import ONNXLoader
import Tensor

// Relu (opset 1, 6, 13, 14): Y = max(0, X). Opset 14 adds signed integers. Supported: float32
// (NaN stays NaN).

/// ONNX Relu; see `UnaryElementwise`.
struct ReluOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try UnaryElementwise.run(.relu, inputs) }
}
