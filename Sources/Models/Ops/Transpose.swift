// ONNX Transpose (opsets 1, 13; unchanged semantics): attribute `perm` (INTS), output axis i is
// input axis perm[i]; absent `perm` reverses the axes. perm must be a permutation of 0..<rank
// (no negative values). Any element type (the kernel moves bytes).
import ONNXLoader
import Tensor

/// ONNX Transpose: a permuted copy of the input (`Movement.transpose`).
public struct TransposeOperator: Operator {
    let permutation: [Int]?

    public init(node: ONNXNode, opset: Int) throws {
        permutation = try node.intList("perm")
        if let permutation {
            guard Set(permutation).count == permutation.count, permutation.allSatisfy({ $0 >= 0 && $0 < permutation.count }) else {
                throw OpError("Transpose perm \(permutation) is not a permutation of 0..<\(permutation.count)")
            }
        }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let order = permutation ?? Array((0..<input.rank).reversed())
        return [try movementOp { () throws(MovementError) in try Movement.transpose(input, permutation: order) }]
    }
}
