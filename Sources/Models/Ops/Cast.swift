// ONNX Cast: converts every element to the type in the `to` attribute (an ONNX data type code).
// Opset 6: `to` became an INT code (opset 1 used a string; not supported). Opset 9 added
// string conversions (not supported), opset 13 bfloat16 (not supported), opset 19 `saturate`
// (float8 only; ignored). Supported types: float32, float64, float16, int64, int32, int8, uint8,
// bool, in every direction (rules in `Movement.cast`: float->int truncates toward zero,
// anything->bool is != 0, bool->number is 0/1). Casting to the input's own type returns the input.
import ONNXLoader
import Tensor

/// ONNX Cast (`Movement.cast`).
public struct CastOperator: Operator {
    let target: DataType

    public init(node: ONNXNode, opset: Int) throws {
        guard let code = try node.int("to") else { throw OpError("Cast needs the 'to' attribute") }
        guard let small = Int32(exactly: code), let type = DataType(rawValue: small) else {
            let name = Int32(exactly: code).map { DataType.onnxName(code: $0) } ?? "data type \(code)"
            throw OpError("Cast to \(name) is not supported")
        }
        target = type
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        return [try movementOp { () throws(MovementError) in try Movement.cast(input, to: target) }]
    }
}
