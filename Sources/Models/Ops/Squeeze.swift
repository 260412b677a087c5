// ONNX Squeeze: removes size-1 dimensions.
// Opset 1: attribute `axes` (INTS, optional), non-negative.
// Opset 11: negative axes allowed (counted from the back).
// Opset 13: `axes` moves to optional input 1 (int64 1-D).
// Without axes, every dimension equal to 1 is removed. Squeezing a dimension that is not 1 is an
// error, as is a repeated axis. Any element type. The output shares the input's storage.
import ONNXLoader
import Tensor

/// ONNX Squeeze: a view without the listed (or all) size-1 axes (no copy).
public struct SqueezeOperator: Operator {
    let attributeAxes: [Int]?
    let axesFromInput: Bool

    public init(node: ONNXNode, opset: Int) throws {
        axesFromInput = opset >= 13
        attributeAxes = axesFromInput ? nil : try node.intList("axes")
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let axes: [Int]?
        if axesFromInput {
            axes = try inputs.optional(1).map { (tensor: Tensor) throws(OpError) in try vectorValues(tensor, role: "Squeeze axes") }
        } else {
            axes = attributeAxes
        }
        let shape: [Int]
        if let axes {
            let resolved = try resolvedAxes(axes, rank: input.rank, role: "Squeeze axes")
            for axis in resolved where input.shape[axis] != 1 {
                throw OpError("Squeeze axis \(axis) has size \(input.shape[axis]), not 1 (input shape \(input.shape))")
            }
            shape = input.shape.enumerated().filter { !resolved.contains($0.offset) }.map(\.element)
        } else {
            shape = input.shape.filter { $0 != 1 }
        }
        return [try tensorOp { () throws(TensorError) in try input.reshaped(shape) }]
    }
}
