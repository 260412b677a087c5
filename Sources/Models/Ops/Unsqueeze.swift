// ONNX Unsqueeze: inserts size-1 dimensions.
// Opset 1: attribute `axes` (INTS, required), non-negative positions in the OUTPUT shape.
// Opset 11: negative axes allowed, counted from the back of the output (rank + len(axes)).
// Opset 13: `axes` moves to required input 1 (int64 1-D).
// Repeated or out-of-range axes are errors. Any element type. The output shares the input's storage.
import ONNXLoader
import Tensor

/// ONNX Unsqueeze: a view with size-1 axes inserted at the given output positions (no copy).
public struct UnsqueezeOperator: Operator {
    let attributeAxes: [Int]?
    let axesFromInput: Bool

    public init(node: ONNXNode, opset: Int) throws {
        axesFromInput = opset >= 13
        if axesFromInput {
            attributeAxes = nil
        } else {
            guard let axes = try node.intList("axes") else { throw OpError("Unsqueeze before opset 13 needs the 'axes' attribute") }
            attributeAxes = axes
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let axes = try attributeAxes ?? vectorValues(try inputs.required(1, "axes"), role: "Unsqueeze axes")
        let outputRank = input.rank + axes.count
        let resolved = Set(try resolvedAxes(axes, rank: outputRank, role: "Unsqueeze axes"))
        var shape: [Int] = []
        var next = 0
        for position in 0..<outputRank {
            if resolved.contains(position) {
                shape.append(1)
            } else {
                shape.append(input.shape[next])
                next += 1
            }
        }
        return [try tensorOp { () throws(TensorError) in try input.reshaped(shape) }]
    }
}
