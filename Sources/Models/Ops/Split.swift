// ONNX Split: cuts the input along `axis` into the node's outputs.
// Opset 1: sizes from input 1 or the `split` attribute; `axis` default 0.
// Opset 2, 11: sizes in the `split` attribute only; opset 11 documents a negative `axis`, which is
// accepted at every opset because torch 1.8.1 writes `axis=-1` at opset 10 (see resolvedAxes).
// Opset 13: sizes move to optional input 1 (int64 1-D).
// Opset 18: optional `num_outputs` attribute; without sizes the chunks are ceil(dim / n) with a
//   smaller last chunk.
// Without sizes (and before 18) the axis is cut into equal parts, one per output: the dimension
// must divide evenly. Given sizes must be one per output and add up to the dimension.
// Any element type.
import ONNXLoader
import Tensor

/// ONNX Split: one copied piece per output (`Movement.split`).
public struct SplitOperator: Operator {
    let axis: Int
    let attributeSizes: [Int]?
    let sizesFromInput: Bool
    let outputCount: Int
    let numberOfOutputs: Int?

    public init(node: ONNXNode, opset: Int) throws {
        axis = Int(try node.int("axis", default: 0) ?? 0)
        sizesFromInput = opset >= 13 || opset < 2
        attributeSizes = opset >= 13 ? nil : try node.intList("split")
        outputCount = node.outputs.count
        guard outputCount >= 1 else { throw OpError("Split has no outputs") }
        numberOfOutputs = opset >= 18 ? try node.int("num_outputs").map { Int($0) } : nil
        if let numberOfOutputs, numberOfOutputs != outputCount {
            throw OpError("Split num_outputs \(numberOfOutputs) differs from its \(outputCount) outputs")
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "input")
        let resolvedAxis = try normalizedAxis(axis, rank: input.rank, role: "Split axis")
        guard input.rank >= 1 else { throw OpError("Split input must have rank 1 or more, got a 0-d tensor") }
        let dimension = input.shape[resolvedAxis]
        var sizes = attributeSizes
        if sizes == nil, sizesFromInput, let given = inputs.optional(1) {
            sizes = try vectorValues(given, role: "Split sizes")
        }
        if let sizes {
            guard sizes.count == outputCount else {
                throw OpError("Split sizes \(sizes) give \(sizes.count) pieces for \(outputCount) outputs")
            }
            let total = sizes.reduce(0, &+)
            guard sizes.allSatisfy({ $0 >= 0 }), total == dimension else {
                throw OpError("Split sizes \(sizes) do not add up to dimension \(dimension) of axis \(resolvedAxis)")
            }
        } else if numberOfOutputs != nil {
            let chunk = (dimension + outputCount - 1) / outputCount
            sizes = (0..<outputCount).map { Swift.max(0, Swift.min(chunk, dimension - $0 * chunk)) }
        } else {
            guard dimension % outputCount == 0 else {
                throw OpError("Split of dimension \(dimension) into \(outputCount) equal parts is not possible")
            }
            sizes = [Int](repeating: dimension / outputCount, count: outputCount)
        }
        let pieces = sizes ?? []
        return try movementOp { () throws(MovementError) in try Movement.split(input, axis: resolvedAxis, sizes: pieces) }
    }
}
