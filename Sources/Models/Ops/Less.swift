import ONNXLoader
import Tensor

// Less (opset 1, 7, 9, 13): C = (A < B) as bool. From opset 7 numpy broadcasting; opset 7 takes
// floats, opset 9 adds integers, 13 bfloat16. Supported: float32 and int64 (NaN compares false).

/// ONNX Less (numpy broadcasting); see `BinaryElementwise`.
struct LessOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.less, inputs) }
}
