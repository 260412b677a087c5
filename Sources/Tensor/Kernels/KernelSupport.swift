/// An error from a math kernel: a shape, element type or value the kernel cannot compute with.
/// `message` is one line naming the argument and the problem (the interpreter adds the node).
public struct KernelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// An error with a one-line message.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Plain, obviously-correct versions of the math kernels, used only to test the fast ones.
/// They loop element by element in Float (or Double where noted) and are slow on purpose.
public enum ReferenceKernels {}

/// Allocates a kernel output, turning a tensor-core error into a `KernelError`.
@inline(__always)
func kernelOutput(_ dataType: DataType, _ shape: [Int]) throws(KernelError) -> Tensor {
    do { return try Tensor.uninitialized(dataType, shape: shape) } catch { throw KernelError(error.description) }
}

/// Reinterprets a tensor with a new shape of the same element count, as a kernel error.
@inline(__always)
func kernelReshape(_ tensor: Tensor, _ shape: [Int]) throws(KernelError) -> Tensor {
    do { return try tensor.reshaped(shape) } catch { throw KernelError(error.description) }
}

/// Throws unless `tensor` has one of `types`, naming the kernel argument.
@inline(__always)
func kernelRequire(_ tensor: Tensor, _ types: [DataType], _ role: String) throws(KernelError) {
    guard types.contains(tensor.dataType) else {
        throw KernelError("\(role) must be \(types.map(\.description).joined(separator: " or ")), got \(tensor.dataType)")
    }
}

/// Product of already validated dimensions.
@inline(__always)
func kernelProduct(_ dimensions: ArraySlice<Int>) -> Int {
    var result = 1
    for dimension in dimensions { result *= dimension }
    return result
}

/// Resolves a possibly negative axis against `rank`, or throws naming it.
@inline(__always)
func kernelAxis(_ axis: Int, rank: Int, _ role: String = "axis") throws(KernelError) -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < rank else { throw KernelError("\(role) \(axis) is out of range for rank \(rank)") }
    return resolved
}

/// Offset into an operand of shape `operand` (numpy-broadcast to `output`) for the output element
/// at row-major index `outputIndex`. Used per batch entry or by reference kernels, not per element
/// in fast loops.
func broadcastOffset(_ outputIndex: Int, output: [Int], operand: [Int]) -> Int {
    var remainder = outputIndex, offset = 0, step = 1
    for axis in stride(from: output.count - 1, through: 0, by: -1) {
        let coordinate = remainder % output[axis]
        remainder /= output[axis]
        let operandAxis = axis - (output.count - operand.count)
        if operandAxis >= 0 {
            if operand[operandAxis] != 1 { offset += coordinate * step }
            step *= operand[operandAxis]
        }
    }
    return offset
}
