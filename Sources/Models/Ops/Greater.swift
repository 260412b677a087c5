import ONNXLoader
import Tensor

// Greater (opset 1, 7, 9, 13): C = (A > B) as bool. From opset 7 numpy broadcasting; opset 7 takes
// floats, opset 9 adds integers, 13 bfloat16. Supported: float32 and int64 (NaN compares false).

/// ONNX Greater (numpy broadcasting); see `BinaryElementwise`.
struct GreaterOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.greater, inputs) }
}
