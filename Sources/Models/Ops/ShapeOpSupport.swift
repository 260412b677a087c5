import ONNXLoader
import Tensor

// Helpers shared by the shape and data-movement operators (Constant ... Range).

/// Runs a movement kernel and turns its error into an `OpError` (the interpreter adds the node).
@inline(__always)
func movementOp<Result>(_ body: () throws(MovementError) -> Result) throws(OpError) -> Result {
    do { return try body() } catch { throw OpError(error.description) }
}

extension ONNXNode {
    /// An INTS attribute as `[Int]`, or nil when absent.
    func intList(_ name: String) throws -> [Int]? {
        try ints(name)?.map { Int($0) }
    }
}

/// Checks an axes list against `rank`, resolves negatives and rejects repeats. Negative axes are
/// accepted at every opset although the spec documents them from opset 11: torch 1.8.1 exports
/// them at opset 10 (`Split(axis=-1)`) and ONNX Runtime runs such files, so refusing them would
/// refuse the real ActionCLIP models. `role` names the list in messages.
func resolvedAxes(_ axes: [Int], rank: Int, role: String) throws(OpError) -> [Int] {
    var seen = Set<Int>()
    var result: [Int] = []
    for axis in axes {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < rank else {
            throw OpError("\(role) \(axes): axis \(axis) is out of range for rank \(rank)")
        }
        guard seen.insert(resolved).inserted else { throw OpError("\(role) \(axes) repeats axis \(axis)") }
        result.append(resolved)
    }
    return result
}

/// Reads a 1-D integer input (a shape, axes, repeats or starts tensor).
func vectorValues(_ tensor: Tensor, role: String) throws(OpError) -> [Int] {
    guard tensor.rank == 1 else { throw OpError("\(role) must be a 1-D tensor, got shape \(tensor.shape)") }
    return try tensor.integerValues(role: role)
}
