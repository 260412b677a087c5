import ONNXLoader
import Tensor

// ArgMax (opset 1, 11, 12, 13): int64 indices of the maxima along `axis` (default 0), keepdims
// default 1. Opset 11 allows negative axes; opset 12 adds select_last_index (default 0: ties give
// the first index). Supported: float32 and int64 input (the text model takes ArgMax of int64 token
// ids, axis=-1, keepdims=0). NaN counts as the largest value (first NaN wins, like numpy).

/// ONNX ArgMax.
struct ArgMaxOperator: Operator {
    let axis: Int
    let keepDims: Bool
    let selectLastIndex: Bool

    init(node: ONNXNode, opset: Int) throws {
        axis = Int(try node.int("axis", default: 0) ?? 0)
        keepDims = try node.int("keepdims", default: 1) != 0
        let selectLast = try node.int("select_last_index", default: 0) ?? 0
        selectLastIndex = opset >= 12 && selectLast != 0
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0, "data")
        return [try mathKernel { () throws(KernelError) in
            try argMax(data, axis: axis, keepDims: keepDims, selectLastIndex: selectLastIndex)
        }]
    }
}
