#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Movement {
    /// Joins tensors along `axis` (0..<rank, already normalised). All tensors must share the
    /// element type, the rank (at least 1) and every dimension except `axis`.
    public static func concat(_ tensors: [Tensor], axis: Int) throws(MovementError) -> Tensor {
        guard let first = tensors.first else { throw .invalidArgument("concat needs at least one tensor") }
        let rank = first.rank
        guard rank >= 1 else { throw .invalidArgument("concat cannot join 0-d tensors") }
        guard axis >= 0, axis < rank else { throw .invalidArgument("concat axis \(axis) is out of range for rank \(rank)") }
        var joined = 0
        for (position, tensor) in tensors.enumerated() {
            guard tensor.dataType == first.dataType else {
                throw .invalidArgument("concat input \(position) is \(tensor.dataType), input 0 is \(first.dataType)")
            }
            guard tensor.rank == rank else {
                throw .invalidArgument("concat input \(position) has rank \(tensor.rank), input 0 has rank \(rank)")
            }
            for other in 0..<rank where other != axis && tensor.shape[other] != first.shape[other] {
                throw .invalidArgument("concat input \(position) has shape \(tensor.shape), incompatible with \(first.shape) outside axis \(axis)")
            }
            let (sum, overflow) = joined.addingReportingOverflow(tensor.shape[axis])
            guard !overflow else { throw .invalidArgument("concat result is too large along axis \(axis)") }
            joined = sum
        }
        var outputShape = first.shape
        outputShape[axis] = joined
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(first.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }
        let elementSize = first.dataType.byteSize
        let outer = movementProduct(first.shape[0..<axis])
        let inner = movementProduct(first.shape[(axis + 1)...])
        let outputRowBytes = joined * inner * elementSize
        var columnOffset = 0
        for tensor in tensors {
            let chunkBytes = tensor.shape[axis] * inner * elementSize
            let source = UnsafeRawPointer(tensor.storage.pointer)
            for row in 0..<outer where chunkBytes > 0 {
                memcpy(output.storage.pointer + row * outputRowBytes + columnOffset, source + row * chunkBytes, chunkBytes)
            }
            columnOffset += chunkBytes
        }
        return output
    }

    /// Cuts `tensor` along `axis` (already normalised) into pieces of the given sizes, which must
    /// be non-negative and add up to the dimension.
    public static func split(_ tensor: Tensor, axis: Int, sizes: [Int]) throws(MovementError) -> [Tensor] {
        let rank = tensor.rank
        guard axis >= 0, axis < rank else { throw .invalidArgument("split axis \(axis) is out of range for rank \(rank)") }
        let dimension = tensor.shape[axis]
        var total = 0
        for size in sizes {
            guard size >= 0 else { throw .invalidArgument("split sizes \(sizes) contain a negative size") }
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard !overflow else { throw .invalidArgument("split sizes \(sizes) overflow") }
            total = sum
        }
        guard total == dimension else {
            throw .invalidArgument("split sizes \(sizes) add up to \(total), but axis \(axis) has size \(dimension)")
        }
        let elementSize = tensor.dataType.byteSize
        let outer = movementProduct(tensor.shape[0..<axis])
        let inner = movementProduct(tensor.shape[(axis + 1)...])
        let inputRowBytes = dimension * inner * elementSize
        var outputs: [Tensor] = []
        outputs.reserveCapacity(sizes.count)
        var columnOffset = 0
        for size in sizes {
            var shape = tensor.shape
            shape[axis] = size
            let piece = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(tensor.dataType, shape: shape) }
            let chunkBytes = size * inner * elementSize
            if chunkBytes > 0 {
                for row in 0..<outer {
                    memcpy(piece.storage.pointer + row * chunkBytes,
                           tensor.storage.pointer + row * inputRowBytes + columnOffset, chunkBytes)
                }
            }
            columnOffset += chunkBytes
            outputs.append(piece)
        }
        return outputs
    }

    /// One axis of a slice after the ONNX clamping rules: element `i` of the output along this
    /// axis is input element `start + i * step`.
    public struct SliceRange: Equatable, Sendable {
        public var start: Int
        public var step: Int
        public var count: Int
    }

    /// Resolves ONNX Slice bounds for one axis of size `dimension`.
    ///
    /// Negative `start`/`end` count from the back (`+ dimension`). Then, for a positive step,
    /// both are clamped to `[0, dimension]`; for a negative step, `start` is clamped to
    /// `[0, dimension - 1]` and `end` to `[-1, dimension - 1]` (so `end = INT64_MIN` walks down
    /// to index 0). Huge values such as `INT64_MAX` are therefore fine. A zero step is an error.
    public static func sliceRange(start: Int, end: Int, step: Int, dimension: Int) throws(MovementError) -> SliceRange {
        guard step != 0 else { throw .invalidArgument("slice step must not be 0") }
        var first = start < 0 ? start &+ dimension : start
        var last = end < 0 ? end &+ dimension : end
        // `&+` cannot wrap here: a negative value plus a non-negative dimension stays in range.
        let count: Int
        if step > 0 {
            first = Swift.min(Swift.max(first, 0), dimension)
            last = Swift.min(Swift.max(last, 0), dimension)
            count = last > first ? (last - first + step - 1) / step : 0
        } else {
            first = Swift.min(Swift.max(first, 0), dimension - 1)
            last = Swift.min(Swift.max(last, -1), dimension - 1)
            count = first > last ? (first - last + (-step) - 1) / (-step) : 0
        }
        return SliceRange(start: count > 0 ? first : 0, step: step, count: count)
    }

    /// ONNX Slice: `starts`, `ends` and optional `axes` (negative allowed, default `0..<starts.count`)
    /// and `steps` (default 1), with the clamping of `sliceRange`. Axes not listed are kept whole.
    public static func slice(_ tensor: Tensor, starts: [Int], ends: [Int], axes: [Int]? = nil,
                             steps: [Int]? = nil) throws(MovementError) -> Tensor {
        let rank = tensor.rank
        guard starts.count == ends.count else {
            throw .invalidArgument("slice starts \(starts) and ends \(ends) differ in length")
        }
        let axisList = axes ?? Array(0..<starts.count)
        let stepList = steps ?? [Int](repeating: 1, count: starts.count)
        guard axisList.count == starts.count else {
            throw .invalidArgument("slice axes \(axisList) and starts \(starts) differ in length")
        }
        guard stepList.count == starts.count else {
            throw .invalidArgument("slice steps \(stepList) and starts \(starts) differ in length")
        }
        var ranges = tensor.shape.map { SliceRange(start: 0, step: 1, count: $0) }
        var used = [Bool](repeating: false, count: rank)
        for position in axisList.indices {
            let given = axisList[position]
            let axis = given < 0 ? given + rank : given
            guard axis >= 0, axis < rank else { throw .invalidArgument("slice axis \(given) is out of range for rank \(rank)") }
            guard !used[axis] else { throw .invalidArgument("slice axes \(axisList) repeat axis \(given)") }
            used[axis] = true
            ranges[axis] = try sliceRange(start: starts[position], end: ends[position], step: stepList[position],
                                          dimension: tensor.shape[axis])
        }
        let outputShape = ranges.map(\.count)
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(tensor.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }
        let elementSize = tensor.dataType.byteSize

        // Trailing axes taken whole form one contiguous block; the axis before them is the
        // innermost one that needs a loop (a single memcpy when its step is 1).
        var blockElements = 1
        var innermost = rank - 1
        while innermost >= 0, ranges[innermost] == SliceRange(start: 0, step: 1, count: tensor.shape[innermost]) {
            blockElements *= tensor.shape[innermost]
            innermost -= 1
        }
        if innermost < 0 {
            memcpy(output.storage.pointer, tensor.storage.pointer, tensor.byteCount)
            return output
        }
        let inputStrides = Shape.strides(tensor.shape).map { $0 * elementSize }
        let blockBytes = blockElements * elementSize
        let innerRange = ranges[innermost]
        let innerStep = innerRange.step * inputStrides[innermost]
        var index = [Int](repeating: 0, count: innermost)
        var sourceOffset = 0
        for axis in 0...innermost { sourceOffset += ranges[axis].start * inputStrides[axis] }
        var destination = output.storage.pointer
        let rows = movementProduct(outputShape[0..<innermost])
        let source = UnsafeRawPointer(tensor.storage.pointer)
        for _ in 0..<rows {
            if innerRange.step == 1 {
                memcpy(destination, source + sourceOffset, innerRange.count * blockBytes)
                destination += innerRange.count * blockBytes
            } else {
                var offset = sourceOffset
                for _ in 0..<innerRange.count {
                    memcpy(destination, source + offset, blockBytes)
                    destination += blockBytes
                    offset += innerStep
                }
            }
            var axis = innermost - 1
            while axis >= 0 {
                index[axis] += 1
                let axisStep = ranges[axis].step * inputStrides[axis]
                sourceOffset += axisStep
                if index[axis] < ranges[axis].count { break }
                sourceOffset -= axisStep * ranges[axis].count
                index[axis] = 0
                axis -= 1
            }
        }
        return output
    }
}
