import ONNXLoader
import Tensor

// ReduceMean (opset 1, 11, 13, 18): mean over `axes` (attribute; negative allowed from opset 11;
// absent = all axes), keepdims default 1. Opset 13 adds bfloat16. From opset 18 the axes come from
// an optional second input with `noop_with_empty_axes` (handled too). Supported: float32. The graphs
// use axes=[-1] with keepdims absent (=1) for LayerNorm and axes=[1], keepdims=0 over frames.

/// ONNX ReduceMean on float32.
struct ReduceMeanOperator: Operator {
    let reduction: ReductionAxes

    init(node: ONNXNode, opset: Int) throws {
        reduction = try ReductionAxes(node: node, opset: opset, inputOpset: 18)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0, "data")
        guard let axes = try reduction.axes(inputs, rank: data.rank) else { return [data] }
        return [try mathKernel { () throws(KernelError) in try reduceMean(data, axes: axes, keepDims: reduction.keepDims) }]
    }
}
