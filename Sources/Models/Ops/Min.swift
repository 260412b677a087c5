import ONNXLoader
import Tensor

// Min (opset 1, 6, 8, 12, 13): elementwise minimum of 1..n inputs. Opsets 6-7 require equal shapes;
// from opset 8 numpy broadcasting (applied here in every opset, a superset). Opset 12 adds integer
// types. Supported: float32 and int64. NaN: `a < b ? a : b` per pair, so a NaN in the second operand
// propagates and one in the first does not (ORT does not define NaN handling either).

/// ONNX Min over one or more inputs; see `BinaryElementwise.runVariadic`.
struct MinOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try BinaryElementwise.runVariadic(.min, inputs) }
}
