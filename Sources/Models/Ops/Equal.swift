import ONNXLoader
import Tensor

// Equal (opset 1, 7, 11, 13): C = (A == B) as bool. From opset 7 numpy broadcasting; opset 7 types
// bool/int32/int64, opset 11 adds floats, 13 bfloat16. Supported: float32, int64, bool (NaN != NaN).

/// ONNX Equal (numpy broadcasting); see `BinaryElementwise`.
struct EqualOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.equal, inputs) }
}
