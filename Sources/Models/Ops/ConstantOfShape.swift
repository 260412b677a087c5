// ONNX ConstantOfShape (opset 9; opset 20 only widens the types): input 0 is a 1-D int64 shape
// (an empty shape gives a 0-d tensor); the optional `value` attribute is a one-element tensor whose
// type and value fill the output (default float32 0). Negative dimensions are an error, and the
// size is checked before allocating. Value: any element type.
import ONNXLoader
import Tensor

/// ONNX ConstantOfShape (`Movement.filled`).
public struct ConstantOfShapeOperator: Operator {
    let value: Tensor

    public init(node: ONNXNode, opset: Int) throws {
        if let given = try node.tensor("value") {
            guard given.count == 1 else {
                throw OpError("ConstantOfShape 'value' must hold one element, got shape \(given.shape)")
            }
            value = given
        } else {
            value = Tensor(scalar: Float(0))
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let shape = try vectorValues(try inputs.required(0, "shape"), role: "ConstantOfShape shape")
        for dimension in shape where dimension < 0 {
            throw OpError("ConstantOfShape shape \(shape) has a negative dimension")
        }
        _ = try tensorOp { () throws(TensorError) in try Shape.elementCount(shape) }
        return [try movementOp { () throws(MovementError) in try Movement.filled(shape: shape, with: value) }]
    }
}
