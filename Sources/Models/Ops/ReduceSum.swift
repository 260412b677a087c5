import ONNXLoader
import Tensor

// ReduceSum (opset 1, 11, 13): sum over axes, keepdims default 1. Opsets 1-12: `axes` attribute
// (negative allowed from 11; absent = all axes). Opset 13: axes moved to an optional int64 input;
// absent or empty axes reduce all axes unless noop_with_empty_axes=1, which returns the input.
// Supported: float32.

/// ONNX ReduceSum on float32.
struct ReduceSumOperator: Operator {
    let reduction: ReductionAxes

    init(node: ONNXNode, opset: Int) throws {
        reduction = try ReductionAxes(node: node, opset: opset, inputOpset: 13)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0, "data")
        guard let axes = try reduction.axes(inputs, rank: data.rank) else { return [data] }
        return [try mathKernel { () throws(KernelError) in try reduceSum(data, axes: axes, keepDims: reduction.keepDims) }]
    }
}
