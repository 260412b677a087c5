import ONNXLoader
import Tensor

// Pow (opset 1, 7, 12, 13, 15): Z = X ^ Y. From opset 7 multidirectional broadcasting, one type T
// (float); opset 12 lets base (T) and exponent (T1) differ and allows integers. Supported: float32
// base with float32 or int64 exponent, int64 base with int64 exponent >= 0 (wrapping). A single
// exponent value of 2 (the LayerNorm's Pow(d, 2.0)), 0.5, 1, 3, 0, -1 or -0.5 takes a fast path.

/// ONNX Pow (numpy broadcasting); see `BinaryElementwise`.
struct PowOperator: Operator {
    init(node: ONNXNode, opset: Int) throws { try BinaryElementwise.checkLegacyBroadcast(node, opset: opset) }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.run(.pow, inputs) }
}
