import ONNXLoader
import Tensor

// Div (opset 1, 6, 7, 13, 14): C = A / B. From opset 7 multidirectional (numpy) broadcasting;
// opsets 1-6 had broadcast/axis attributes (only the axis-free form is accepted). 13 adds bfloat16,
// 14 small ints. Supported: float32 (IEEE: x/0 = ±inf) and int64, which truncates toward zero like
// C (-7/2 = -3, the exporter's `embed_dim // heads` with positive operands), throws on a zero
// divisor and wraps Int64.min / -1.

/// ONNX Div (numpy broadcasting); see `BinaryElementwise`.
struct DivOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.div, inputs) }
}
