// ONNX Gather (opsets 1, 11, 13): picks slices of `data` along `axis` (default 0; negative counts
// from the back) at `indices` (int32 or int64, any rank). Output shape:
// data.shape[..<axis] + indices.shape + data.shape[(axis+1)...], so a 0-d index removes the axis.
// Negative indices count from the end of the axis (documented from opset 11; accepted always).
// An index outside [-dim, dim-1] is an error naming the index. Data: any element type.
import ONNXLoader
import Tensor

/// ONNX Gather (`Movement.gather`).
public struct GatherOperator: Operator {
    let axis: Int

    public init(node: ONNXNode, opset: Int) throws {
        axis = Int(try node.int("axis", default: 0) ?? 0)
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0, "data")
        let indices = try inputs.required(1, "indices")
        return [try movementOp { () throws(MovementError) in try Movement.gather(data, indices: indices, axis: axis) }]
    }
}
