// ONNX NonZero (opsets 9, 13): int64 output [rank, nnz] holding the indices of the non-zero
// input elements in row-major order (column j = multi-index of the j-th non-zero). A 0-d input
// gives [1, nnz], as in ONNX Runtime. Input: any element type (floats: -0.0 is zero, NaN is not).
import ONNXLoader
import Tensor

/// ONNX NonZero (`Movement.nonZero`); the output size depends on the data.
public struct NonZeroOperator: Operator {
    public init(node: ONNXNode, opset: Int) throws {
        guard opset >= 9 else { throw OpError("NonZero needs opset 9 or later (model has \(opset))") }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "X")
        return [try movementOp { () throws(MovementError) in try Movement.nonZero(input) }]
    }
}
