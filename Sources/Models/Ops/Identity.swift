// ONNX Identity (opsets 1, 13, 14, 16): output = input, any tensor type. Shares the input's storage.
import ONNXLoader
import Tensor

/// ONNX Identity: returns its input unchanged (no copy).
public struct IdentityOperator: Operator {
    public init(node: ONNXNode, opset: Int) throws {}

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try inputs.required(0, "input")]
    }
}
