#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Movement {
    /// The shape `Expand` produces: `shape` and the tensor's shape are aligned on the right and
    /// each pair of dimensions must be equal or contain a 1 (bidirectional broadcasting, so a
    /// 1 in `shape` keeps the tensor's dimension). Negative entries are an error.
    public static func expandedShape(_ inputShape: [Int], to shape: [Int]) throws(MovementError) -> [Int] {
        for dimension in shape where dimension < 0 {
            throw .invalidArgument("expand shape \(shape) has a negative dimension")
        }
        let rank = Swift.max(inputShape.count, shape.count)
        let paddedInput = [Int](repeating: 1, count: rank - inputShape.count) + inputShape
        let paddedTarget = [Int](repeating: 1, count: rank - shape.count) + shape
        var result: [Int] = []
        result.reserveCapacity(rank)
        for axis in 0..<rank {
            let have = paddedInput[axis], want = paddedTarget[axis]
            if have == want || want == 1 {
                result.append(have)
            } else if have == 1 {
                result.append(want)
            } else {
                throw .invalidArgument("cannot expand shape \(inputShape) to \(shape): dimension \(have) vs \(want)")
            }
        }
        _ = try movementTensorCall { () throws(TensorError) in try Shape.elementCount(result) }
        return result
    }

    /// ONNX Expand: broadcasts `tensor` to `expandedShape(tensor.shape, to: shape)`.
    ///
    /// Works outside-in: a broadcast axis writes its first slice once and then replicates it with
    /// doubling memcpys; trailing axes that are not broadcast are one memcpy.
    public static func expand(_ tensor: Tensor, to shape: [Int]) throws(MovementError) -> Tensor {
        let outputShape = try expandedShape(tensor.shape, to: shape)
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(tensor.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }
        let rank = outputShape.count
        let inputShape = [Int](repeating: 1, count: rank - tensor.rank) + tensor.shape
        let elementSize = tensor.dataType.byteSize
        let copier = BroadcastCopier(
            source: UnsafeRawPointer(tensor.storage.pointer), destination: output.storage.pointer,
            inputShape: inputShape, outputShape: outputShape, elementSize: elementSize)
        copier.write(axis: 0, sourceOffset: 0, destinationOffset: 0)
        return output
    }

    /// ONNX Tile: output dimension `i` is `shape[i] * repeats[i]`; `repeats` has one
    /// non-negative entry per axis.
    public static func tile(_ tensor: Tensor, repeats: [Int]) throws(MovementError) -> Tensor {
        guard repeats.count == tensor.rank else {
            throw .invalidArgument("tile repeats \(repeats) have \(repeats.count) entries for a rank-\(tensor.rank) tensor")
        }
        var outputShape: [Int] = []
        for (dimension, count) in zip(tensor.shape, repeats) {
            guard count >= 0 else { throw .invalidArgument("tile repeats \(repeats) contain a negative count") }
            let (size, overflow) = dimension.multipliedReportingOverflow(by: count)
            guard !overflow else { throw .invalidArgument("tile of \(tensor.shape) by \(repeats) is too large") }
            outputShape.append(size)
        }
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(tensor.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }
        let copier = TileCopier(
            source: UnsafeRawPointer(tensor.storage.pointer), destination: output.storage.pointer,
            inputShape: tensor.shape, outputShape: outputShape, repeats: repeats, elementSize: tensor.dataType.byteSize)
        copier.write(axis: 0, sourceOffset: 0, destinationOffset: 0)
        return output
    }
}

/// Recursive broadcast copy for `expand`. Byte offsets throughout.
private struct BroadcastCopier {
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let inputShape: [Int]
    let outputShape: [Int]
    /// Bytes of one index step along each axis, in the input and in the output.
    let inputStep: [Int]
    let outputStep: [Int]
    /// First axis from which no axis is broadcast (the rest is one contiguous block).
    let contiguousFrom: Int
    let elementSize: Int

    init(source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, inputShape: [Int], outputShape: [Int], elementSize: Int) {
        self.source = source
        self.destination = destination
        self.inputShape = inputShape
        self.outputShape = outputShape
        self.elementSize = elementSize
        inputStep = Shape.strides(inputShape).map { $0 * elementSize }
        outputStep = Shape.strides(outputShape).map { $0 * elementSize }
        var first = outputShape.count
        while first > 0, inputShape[first - 1] == outputShape[first - 1] { first -= 1 }
        contiguousFrom = first
    }

    func write(axis: Int, sourceOffset: Int, destinationOffset: Int) {
        if axis >= contiguousFrom {
            let bytes = movementProduct(outputShape[axis...]) * elementSize
            memcpy(destination + destinationOffset, source + sourceOffset, bytes)
            return
        }
        if inputShape[axis] == 1 {
            write(axis: axis + 1, sourceOffset: sourceOffset, destinationOffset: destinationOffset)
            replicateMovementBlock(destination + destinationOffset, blockBytes: outputStep[axis], times: outputShape[axis])
        } else {
            for index in 0..<outputShape[axis] {
                write(axis: axis + 1, sourceOffset: sourceOffset + index * inputStep[axis],
                      destinationOffset: destinationOffset + index * outputStep[axis])
            }
        }
    }
}

/// Recursive copy for `tile`: fill the first repetition of each axis, then replicate it.
private struct TileCopier {
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let inputShape: [Int]
    let outputShape: [Int]
    let repeats: [Int]
    let inputStep: [Int]
    let outputStep: [Int]
    /// First axis from which every repeat is 1 (the rest is copied as one block).
    let contiguousFrom: Int
    let elementSize: Int

    init(source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, inputShape: [Int], outputShape: [Int],
         repeats: [Int], elementSize: Int) {
        self.source = source
        self.destination = destination
        self.inputShape = inputShape
        self.outputShape = outputShape
        self.repeats = repeats
        self.elementSize = elementSize
        inputStep = Shape.strides(inputShape).map { $0 * elementSize }
        outputStep = Shape.strides(outputShape).map { $0 * elementSize }
        var first = repeats.count
        while first > 0, repeats[first - 1] == 1 { first -= 1 }
        contiguousFrom = first
    }

    func write(axis: Int, sourceOffset: Int, destinationOffset: Int) {
        if axis >= contiguousFrom {
            let bytes = movementProduct(inputShape[axis...]) * elementSize
            memcpy(destination + destinationOffset, source + sourceOffset, bytes)
            return
        }
        for index in 0..<inputShape[axis] {
            write(axis: axis + 1, sourceOffset: sourceOffset + index * inputStep[axis],
                  destinationOffset: destinationOffset + index * outputStep[axis])
        }
        replicateMovementBlock(destination + destinationOffset, blockBytes: inputShape[axis] * outputStep[axis], times: repeats[axis])
    }
}
