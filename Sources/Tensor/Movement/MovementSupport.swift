#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors raised by the data-movement kernels (`Movement`). Each case prints as one line
/// that names the argument and the problem.
public enum MovementError: Error, CustomStringConvertible, Equatable {
    /// A shape or allocation problem from the tensor core (negative dimension, too large, ...).
    case tensor(TensorError)
    /// An argument that does not fit the tensor (wrong permutation, mismatching dims, ...).
    case invalidArgument(String)
    /// A gather index outside `-dimension ..< dimension`.
    case indexOutOfRange(index: Int, axis: Int, dimension: Int)

    public var description: String {
        switch self {
        case .tensor(let error): return error.description
        case .invalidArgument(let message): return message
        case .indexOutOfRange(let index, let axis, let dimension):
            return "index \(index) is out of range for axis \(axis) of size \(dimension) (valid: \(-dimension)...\(dimension - 1))"
        }
    }
}

/// Data-movement kernels: transpose, concat, split, slice, gather, expand, tile, cast, nonZero.
///
/// All kernels work for every `DataType`: they move bytes in units of the element size
/// (only `cast` and `nonZero` look at values). Outputs are fresh contiguous tensors; inputs
/// are never modified. `ReferenceMovement` holds plain per-element versions used by the tests.
public enum Movement {}

/// Runs a throwing tensor-core call and wraps its error.
@inline(__always)
func movementTensorCall<Result>(_ body: () throws(TensorError) -> Result) throws(MovementError) -> Result {
    do { return try body() } catch { throw .tensor(error) }
}

/// A kernel body generic over a fixed-width word the size of one element, so byte-moving
/// loops compile to plain loads and stores of the right width.
protocol MovementWordKernel {
    func run<Word: FixedWidthInteger & UnsignedInteger>(_ word: Word.Type)
}

/// Calls `kernel.run` with the unsigned integer type whose size is `byteSize` (1, 2, 4 or 8).
@inline(__always)
func dispatchMovementWord<Kernel: MovementWordKernel>(byteSize: Int, _ kernel: Kernel) {
    switch byteSize {
    case 1: kernel.run(UInt8.self)
    case 2: kernel.run(UInt16.self)
    case 4: kernel.run(UInt32.self)
    default: kernel.run(UInt64.self)
    }
}

/// Copies the first `blockBytes` bytes at `base` into the following `times - 1` slots by
/// doubling (1, 2, 4, ... copies per memcpy), so replicating a small block n times costs
/// log2(n) calls instead of n.
@inline(__always)
func replicateMovementBlock(_ base: UnsafeMutableRawPointer, blockBytes: Int, times: Int) {
    guard times > 1, blockBytes > 0 else { return }
    var filled = 1
    while filled < times {
        let copies = Swift.min(filled, times - filled)
        memcpy(base + filled * blockBytes, base, copies * blockBytes)
        filled += copies
    }
}

/// Product of dimensions of a shape already known to be valid (part of an existing tensor).
@inline(__always)
func movementProduct(_ dimensions: ArraySlice<Int>) -> Int {
    dimensions.reduce(1, *)
}
