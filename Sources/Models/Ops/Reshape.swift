// ONNX Reshape.
// Opset 1 (up to 4): target shape in the `shape` attribute.
// Opset 5, 13: target shape is input 1 (int64, 1-D). Entry 0 copies the input dimension at the same
//   position (which must exist); one entry may be -1, inferred from the element count; anything
//   below -1 is invalid; the element count must match.
// Opset 14: attribute `allowzero` (default 0); with allowzero=1 a 0 means a real 0-sized dim, and a
//   shape may then not hold both 0 and -1.
// Any element type. The output shares the input's storage (no copy).
import ONNXLoader
import Tensor

/// ONNX Reshape: the same elements seen with a new shape (`Tensor.reshaped`).
public struct ReshapeOperator: Operator {
    let attributeShape: [Int]?
    let allowZero: Bool

    public init(node: ONNXNode, opset: Int) throws {
        attributeShape = opset < 5 ? try node.intList("shape") : nil
        if opset < 5, attributeShape == nil { throw OpError("Reshape before opset 5 needs the 'shape' attribute") }
        allowZero = try opset >= 14 && (node.int("allowzero", default: 0) ?? 0) != 0
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let input = try inputs.required(0, "data")
        let requested = try attributeShape ?? vectorValues(try inputs.required(1, "shape"), role: "Reshape shape")
        let shape = try Self.resolve(requested, inputShape: input.shape, count: input.count, allowZero: allowZero)
        return [try tensorOp { () throws(TensorError) in try input.reshaped(shape) }]
    }

    /// Applies the 0 and -1 rules to a requested shape. Public so other code (and tests) can reuse it.
    public static func resolve(_ requested: [Int], inputShape: [Int], count: Int, allowZero: Bool) throws(OpError) -> [Int] {
        var shape = requested
        var inferred: Int?
        for (position, dimension) in requested.enumerated() {
            switch dimension {
            case -1:
                guard inferred == nil else { throw OpError("Reshape shape \(requested) has more than one -1") }
                inferred = position
            case 0 where !allowZero:
                guard position < inputShape.count else {
                    throw OpError("Reshape shape \(requested): 0 at position \(position) has no input dimension to copy (input \(inputShape))")
                }
                shape[position] = inputShape[position]
            case ..<0:
                throw OpError("Reshape shape \(requested) has invalid dimension \(dimension)")
            default:
                break
            }
        }
        if allowZero, inferred != nil, requested.contains(0) {
            throw OpError("Reshape shape \(requested) has both 0 and -1 while allowzero=1")
        }
        if let inferred {
            var known = shape
            known[inferred] = 1
            let knownCount = try tensorOp { () throws(TensorError) in try Shape.elementCount(known) }
            guard knownCount > 0, count % knownCount == 0 else {
                throw OpError("Reshape cannot infer -1 in \(requested): \(count) elements of \(inputShape) do not divide into \(knownCount)")
            }
            shape[inferred] = count / knownCount
        }
        let newCount = try tensorOp { () throws(TensorError) in try Shape.elementCount(shape) }
        guard newCount == count else {
            throw OpError("Reshape of \(inputShape) (\(count) elements) to \(requested) gives \(shape) (\(newCount) elements)")
        }
        return shape
    }
}
