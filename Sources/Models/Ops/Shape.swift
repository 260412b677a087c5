// ONNX Shape: the input's dimensions as a 1-D int64 tensor. Any input element type.
// Opset 1, 13: whole shape.
// Opset 15: optional `start` (default 0) and `end` (default rank) attributes select a range of
//   axes; negative values count from the back, and both are clamped to [0, rank].
import ONNXLoader
import Tensor

/// ONNX Shape.
public struct ShapeOperator: Operator {
    let start: Int
    let end: Int?

    public init(node: ONNXNode, opset: Int) throws {
        if opset >= 15 {
            start = Int(try node.int("start", default: 0) ?? 0)
            end = try node.int("end").map { Int($0) }
        } else {
            start = 0
            end = nil
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let rank = input.rank
        func clamp(_ value: Int) -> Int { Swift.min(Swift.max(value < 0 ? value + rank : value, 0), rank) }
        let first = clamp(start), last = clamp(end ?? rank)
        let dimensions = first < last ? input.shape[first..<last].map { Int64($0) } : []
        return [try tensorOp { () throws(TensorError) in try Tensor(dimensions, shape: [dimensions.count]) }]
    }
}
