import ONNXLoader
import Tensor

// Sub (opset 1, 6, 7, 13, 14): C = A - B. From opset 7 multidirectional (numpy) broadcasting;
// opsets 1-6 had broadcast/axis attributes (only the axis-free form is accepted). 13 adds bfloat16,
// 14 small ints. Supported: float32 and int64 (wrapping on overflow), both inputs the same type.

/// ONNX Sub (numpy broadcasting); see `BinaryElementwise`.
struct SubOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.sub, inputs) }
}
