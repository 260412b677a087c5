// ONNX Concat: joins its inputs along `axis`.
// Opset 1: `axis` optional, default 1.
// Opset 4: `axis` required.
// Opset 11, 13: negative `axis` allowed (counted from the back).
// Inputs must share the element type and the rank (>= 1) and agree on every other dimension.
// Any element type.
import ONNXLoader
import Tensor

/// ONNX Concat (`Movement.concat`).
public struct ConcatOperator: Operator {
    let axis: Int

    public init(node: ONNXNode, opset: Int) throws {
        if opset < 4 {
            axis = Int(try node.int("axis", default: 1) ?? 1)
        } else {
            guard let given = try node.int("axis") else { throw OpError("Concat needs the 'axis' attribute") }
            axis = Int(given)
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        guard !inputs.isEmpty else { throw OpError("Concat has no inputs") }
        let tensors = try inputs.indices.map { (index: Int) throws(OpError) in try inputs.required(index, "input \(index)") }
        let rank = tensors[0].rank
        guard rank >= 1 else { throw OpError("Concat inputs must have rank 1 or more, got 0-d tensors") }
        let resolved = try normalizedAxis(axis, rank: rank, role: "Concat axis")
        return [try movementOp { () throws(MovementError) in try Movement.concat(tensors, axis: resolved) }]
    }
}
