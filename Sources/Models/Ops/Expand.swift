// ONNX Expand (opsets 8, 13): broadcasts input 0 to the shape in input 1 (1-D int64) with
// bidirectional (numpy) broadcasting: shapes align on the right, each dim pair must be equal or
// hold a 1, and a 1 in the requested shape keeps the input's dim. The output rank is the larger
// of the two. Negative dims are an error; the size is checked before allocating. Any element type.
import ONNXLoader
import Tensor

/// ONNX Expand (`Movement.expand`).
public struct ExpandOperator: Operator {
    public init(node: ONNXNode, opset: Int) throws {
        guard opset >= 8 else { throw OpError("Expand needs opset 8 or later (model has \(opset))") }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        let shape = try vectorValues(try inputs.required(1, "shape"), role: "Expand shape")
        return [try movementOp { () throws(MovementError) in try Movement.expand(input, to: shape) }]
    }
}
