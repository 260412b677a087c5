import ONNXLoader
import Tensor

/// One executable ONNX operator.
///
/// An operator is built once per node when the graph is compiled (`init` reads and checks
/// the attributes, so a bad attribute is reported at load, naming the node), then `run` is
/// called on every execution with that call's input tensors. Operators hold no per-run state.
public protocol Operator: Sendable {
    /// Parses the node's attributes for the model's opset (ops whose meaning changed across
    /// opsets decide here which semantics apply).
    init(node: ONNXNode, opset: Int) throws

    /// Computes the outputs, in the node's output order. `inputs[i]` is nil for an omitted
    /// optional input. Must not modify the input tensors.
    func run(_ inputs: [Tensor?]) throws -> [Tensor]
}

/// A failure inside one operator. The interpreter adds the node's name and op type.
public struct OpError: Error, CustomStringConvertible {
    public let message: String
    /// An operator error with a one-line message.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Array where Element == Tensor? {
    /// The input at `index`, or an error naming it when it is missing.
    @inline(__always)
    public func required(_ index: Int, _ role: String) throws(OpError) -> Tensor {
        guard index < count, let tensor = self[index] else {
            throw OpError("missing required input \(index) (\(role))")
        }
        return tensor
    }

    /// The input at `index` if given.
    @inline(__always)
    public func optional(_ index: Int) -> Tensor? {
        index < count ? self[index] : nil
    }
}

extension Tensor {
    /// Throws unless this tensor has one of the given element types.
    public func require(_ types: DataType..., role: String) throws(OpError) {
        guard types.contains(dataType) else {
            let allowed = types.map(\.description).joined(separator: " or ")
            throw OpError("\(role) must be \(allowed), got \(dataType)")
        }
    }

    /// Reads a small integer tensor (a shape, axes or indices input) as `[Int]`.
    public func integerValues(role: String) throws(OpError) -> [Int] {
        switch dataType {
        case .int64: return int64s.map { Int($0) }
        case .int32: return elements(Int32.self).map { Int($0) }
        default: throw OpError("\(role) must be int64, got \(dataType)")
        }
    }
}

/// Maps a possibly negative axis onto `0..<rank`, as every ONNX op with an axis attribute does.
@inline(__always)
public func normalizedAxis(_ axis: Int, rank: Int, role: String = "axis") throws(OpError) -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < max(rank, 1) else {
        throw OpError("\(role) \(axis) is out of range for rank \(rank)")
    }
    return resolved
}

/// Converts a tensor-level error into an op error (the interpreter adds the node).
@inline(__always)
public func tensorOp<Result>(_ body: () throws(TensorError) -> Result) throws(OpError) -> Result {
    do { return try body() } catch { throw OpError(error.description) }
}
