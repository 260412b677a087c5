// ONNX Flatten: output is 2-D [prod(shape[..<axis]), prod(shape[axis...])].
// Opset 1, 9 (9 widens the types to all): attribute `axis` (default 1) in [0, rank].
// Opset 11, 13: negative `axis` allowed, in [-rank, rank] (counted from the back). Accepted at
// every opset here, as ONNX Runtime does (see resolvedAxes).
// Any element type. The output shares the input's storage (no copy).
import ONNXLoader
import Tensor

/// ONNX Flatten: a 2-D view of the input (no copy).
public struct FlattenOperator: Operator {
    let axis: Int

    public init(node: ONNXNode, opset: Int) throws {
        axis = Int(try node.int("axis", default: 1) ?? 1)
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        let resolved = axis < 0 ? axis + input.rank : axis
        guard resolved >= 0, resolved <= input.rank else {
            throw OpError("Flatten axis \(axis) is out of range for rank \(input.rank)")
        }
        let outer = input.shape[..<resolved].reduce(1, *)
        let inner = input.shape[resolved...].reduce(1, *)
        return [try tensorOp { () throws(TensorError) in try input.reshaped([outer, inner]) }]
    }
}
