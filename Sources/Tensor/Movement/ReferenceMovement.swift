#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain, per-element versions of the `Movement` kernels, written from the definitions with
/// index arithmetic and one element copy at a time. The tests compare the fast kernels with
/// these; nothing in the engine calls them.
public enum ReferenceMovement {
    /// Multi-index of a row-major linear index.
    static func multiIndex(_ linear: Int, shape: [Int]) -> [Int] {
        var remaining = linear
        var index = [Int](repeating: 0, count: shape.count)
        for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] > 0 {
            index[axis] = remaining % shape[axis]
            remaining /= shape[axis]
        }
        return index
    }

    static func linearIndex(_ index: [Int], shape: [Int]) -> Int {
        zip(index, Shape.strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
    }

    static func copyElement(from source: Tensor, at sourceIndex: Int, to destination: Tensor, at destinationIndex: Int) {
        let size = source.dataType.byteSize
        memcpy(destination.storage.pointer + destinationIndex * size, source.storage.pointer + sourceIndex * size, size)
    }

    /// Transpose with `output[i0, i1, ...] = input[index with input axis perm[k] = ik]`.
    public static func transpose(_ tensor: Tensor, permutation: [Int]) throws -> Tensor {
        let outputShape = permutation.map { tensor.shape[$0] }
        let output = try Tensor.uninitialized(tensor.dataType, shape: outputShape)
        for linear in 0..<output.count {
            let outputIndex = multiIndex(linear, shape: outputShape)
            var inputIndex = [Int](repeating: 0, count: tensor.rank)
            for (outputAxis, inputAxis) in permutation.enumerated() { inputIndex[inputAxis] = outputIndex[outputAxis] }
            copyElement(from: tensor, at: linearIndex(inputIndex, shape: tensor.shape), to: output, at: linear)
        }
        return output
    }

    /// Concat: each output element finds its input by walking the sizes along `axis`.
    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        var outputShape = tensors[0].shape
        outputShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let output = try Tensor.uninitialized(tensors[0].dataType, shape: outputShape)
        for linear in 0..<output.count {
            var index = multiIndex(linear, shape: outputShape)
            var which = 0
            while index[axis] >= tensors[which].shape[axis] {
                index[axis] -= tensors[which].shape[axis]
                which += 1
            }
            copyElement(from: tensors[which], at: linearIndex(index, shape: tensors[which].shape), to: output, at: linear)
        }
        return output
    }

    /// Split as a series of slices.
    public static func split(_ tensor: Tensor, axis: Int, sizes: [Int]) throws -> [Tensor] {
        var start = 0
        var pieces: [Tensor] = []
        for size in sizes {
            pieces.append(try slice(tensor, starts: [start], ends: [start + size], axes: [axis], steps: [1]))
            start += size
        }
        return pieces
    }

    /// Slice bounds written from the ONNX Slice text (opset 10+): negative values get the
    /// dimension added; then starts clamp to [0, dim] (step > 0) or [0, dim-1] (step < 0) and
    /// ends to [0, dim] or [-1, dim-1]; elements are enumerated one by one. Note this differs
    /// from Python slicing when a negative start stays negative with a negative step
    /// (ONNX, and ONNX Runtime, take element 0; Python takes none).
    public static func adjustedSlice(start: Int, end: Int, step: Int, length: Int) -> (start: Int, count: Int) {
        func clamp(_ value: Int, _ low: Int, _ high: Int) -> Int { Swift.min(Swift.max(value, low), high) }
        var first = start < 0 ? start + length : start
        var last = end < 0 ? end + length : end
        if step > 0 {
            first = clamp(first, 0, length)
            last = clamp(last, 0, length)
        } else {
            first = clamp(first, 0, length - 1)
            last = clamp(last, -1, length - 1)
        }
        var count = 0
        var position = first
        while step > 0 ? position < last : position > last {
            count += 1
            position += step
        }
        return (first, count)
    }

    /// Slice by computing, for every output element, the input element it comes from.
    public static func slice(_ tensor: Tensor, starts: [Int], ends: [Int], axes: [Int], steps: [Int]) throws -> Tensor {
        var firsts = [Int](repeating: 0, count: tensor.rank)
        var stepOf = [Int](repeating: 1, count: tensor.rank)
        var outputShape = tensor.shape
        for position in axes.indices {
            let axis = axes[position] < 0 ? axes[position] + tensor.rank : axes[position]
            let (first, count) = adjustedSlice(start: starts[position], end: ends[position], step: steps[position],
                                               length: tensor.shape[axis])
            firsts[axis] = first
            stepOf[axis] = steps[position]
            outputShape[axis] = count
        }
        let output = try Tensor.uninitialized(tensor.dataType, shape: outputShape)
        for linear in 0..<output.count {
            let index = multiIndex(linear, shape: outputShape)
            let inputIndex = (0..<tensor.rank).map { firsts[$0] + index[$0] * stepOf[$0] }
            copyElement(from: tensor, at: linearIndex(inputIndex, shape: tensor.shape), to: output, at: linear)
        }
        return output
    }

    /// Gather: output index = (outer index, index multi-index, inner index).
    public static func gather(_ data: Tensor, indices: Tensor, axis: Int) throws -> Tensor {
        let axis = axis < 0 ? axis + data.rank : axis
        let positions = try Movement.indexValues(indices)
        let outputShape = Array(data.shape[..<axis]) + indices.shape + Array(data.shape[(axis + 1)...])
        let output = try Tensor.uninitialized(data.dataType, shape: outputShape)
        for linear in 0..<output.count {
            let index = multiIndex(linear, shape: outputShape)
            let indexPosition = linearIndex(Array(index[axis..<(axis + indices.rank)]), shape: indices.shape)
            var position = positions[indexPosition]
            if position < 0 { position += data.shape[axis] }
            let inputIndex = Array(index[..<axis]) + [position] + Array(index[(axis + indices.rank)...])
            copyElement(from: data, at: linearIndex(inputIndex, shape: data.shape), to: output, at: linear)
        }
        return output
    }

    /// Expand: each output index reads the input index with broadcast axes pinned to 0.
    public static func expand(_ tensor: Tensor, to shape: [Int]) throws -> Tensor {
        let outputShape = try Movement.expandedShape(tensor.shape, to: shape)
        let inputShape = [Int](repeating: 1, count: outputShape.count - tensor.rank) + tensor.shape
        let output = try Tensor.uninitialized(tensor.dataType, shape: outputShape)
        for linear in 0..<output.count {
            let index = multiIndex(linear, shape: outputShape)
            let inputIndex = zip(index, inputShape).map { $1 == 1 ? 0 : $0 }
            copyElement(from: tensor, at: linearIndex(inputIndex, shape: inputShape), to: output, at: linear)
        }
        return output
    }

    /// Tile: each output index reads the input index modulo the input shape.
    public static func tile(_ tensor: Tensor, repeats: [Int]) throws -> Tensor {
        let outputShape = zip(tensor.shape, repeats).map { $0 * $1 }
        let output = try Tensor.uninitialized(tensor.dataType, shape: outputShape)
        for linear in 0..<output.count {
            let index = multiIndex(linear, shape: outputShape)
            let inputIndex = zip(index, tensor.shape).map { $0 % $1 }
            copyElement(from: tensor, at: linearIndex(inputIndex, shape: tensor.shape), to: output, at: linear)
        }
        return output
    }

    /// NonZero over float32 / int64 / bool inputs, by value comparison.
    public static func nonZero(_ tensor: Tensor) throws -> Tensor {
        let shape = tensor.rank == 0 ? [1] : tensor.shape
        var columns: [[Int]] = []
        for linear in 0..<tensor.count {
            let isNonZero: Bool
            switch tensor.dataType {
            case .float32: isNonZero = tensor.floats[linear] != 0
            case .int64: isNonZero = tensor.int64s[linear] != 0
            case .bool: isNonZero = tensor.bools[linear]
            default: throw MovementError.invalidArgument("reference nonZero handles float32, int64 and bool")
            }
            if isNonZero { columns.append(multiIndex(linear, shape: shape)) }
        }
        var values: [Int64] = []
        for axis in 0..<shape.count { values += columns.map { Int64($0[axis]) } }
        return try Tensor(values, shape: [shape.count, columns.count])
    }
}
