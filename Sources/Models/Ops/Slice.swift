// ONNX Slice.
// Opset 1: attributes `starts`, `ends` (required) and `axes` (optional); step is always 1.
// Opset 10: starts, ends, axes?, steps? become inputs 1..4 (int32 or int64 1-D); steps may be
//   negative, never 0.
// Opset 11, 13: negative axes documented (this engine accepts them at every opset).
// Bounds: negative starts/ends count from the back; then starts clamp to [0, dim] (step > 0) or
// [0, dim-1] (step < 0) and ends to [0, dim] or [-1, dim-1], so INT64_MAX / INT64_MIN mean "to the end".
// Axes not listed are taken whole. Any element type.
import ONNXLoader
import Tensor

/// ONNX Slice (`Movement.slice`).
public struct SliceOperator: Operator {
    let attributeStarts: [Int]?
    let attributeEnds: [Int]?
    let attributeAxes: [Int]?
    let boundsFromInputs: Bool

    public init(node: ONNXNode, opset: Int) throws {
        boundsFromInputs = opset >= 10
        if boundsFromInputs {
            attributeStarts = nil
            attributeEnds = nil
            attributeAxes = nil
        } else {
            guard let starts = try node.intList("starts"), let ends = try node.intList("ends") else {
                throw OpError("Slice before opset 10 needs the 'starts' and 'ends' attributes")
            }
            attributeStarts = starts
            attributeEnds = ends
            attributeAxes = try node.intList("axes")
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if boundsFromInputs {
            starts = try vectorValues(try inputs.required(1, "starts"), role: "Slice starts")
            ends = try vectorValues(try inputs.required(2, "ends"), role: "Slice ends")
            axes = try inputs.optional(3).map { (tensor: Tensor) throws(OpError) in try vectorValues(tensor, role: "Slice axes") }
            steps = try inputs.optional(4).map { (tensor: Tensor) throws(OpError) in try vectorValues(tensor, role: "Slice steps") }
        } else {
            starts = attributeStarts ?? []
            ends = attributeEnds ?? []
            axes = attributeAxes
            steps = nil
        }
        return [try movementOp { () throws(MovementError) in try Movement.slice(input, starts: starts, ends: ends, axes: axes, steps: steps) }]
    }
}
