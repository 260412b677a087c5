// ONNX Tile: repeats the input along every axis.
// Opset 1 (tiles/axis inputs) is not supported.
// Opset 6, 13: input 1 `repeats` is int64 1-D with one non-negative entry per input axis; output
// dim i = input dim i * repeats[i]. The size is checked before allocating. Any element type.
import ONNXLoader
import Tensor

/// ONNX Tile (`Movement.tile`).
public struct TileOperator: Operator {
    public init(node: ONNXNode, opset: Int) throws {
        guard opset >= 6 else { throw OpError("Tile before opset 6 (tiles/axis inputs) is not supported") }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        let repeats = try vectorValues(try inputs.required(1, "repeats"), role: "Tile repeats")
        return [try movementOp { () throws(MovementError) in try Movement.tile(input, repeats: repeats) }]
    }
}
