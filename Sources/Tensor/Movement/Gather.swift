#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Movement {
    /// Reads integer indices (int64 or int32, any rank) as `Int`s.
    public static func indexValues(_ indices: Tensor) throws(MovementError) -> [Int] {
        switch indices.dataType {
        case .int64: return indices.int64s.map { Int($0) }
        case .int32: return indices.elements(Int32.self).map { Int($0) }
        default: throw .invalidArgument("indices must be int64 or int32, got \(indices.dataType)")
        }
    }

    /// ONNX Gather: picks entries of `data` along `axis` (negative counts from the back).
    ///
    /// Output shape is `data.shape[..<axis] + indices.shape + data.shape[(axis+1)...]`: a 0-d index
    /// removes the axis, a rank-k index puts k dims in its place. Negative indices count from the
    /// end of the axis. Every index is checked before anything is read; one outside
    /// `-dim ..< dim` throws `indexOutOfRange` naming the index and the dimension.
    public static func gather(_ data: Tensor, indices: Tensor, axis: Int = 0) throws(MovementError) -> Tensor {
        let rank = data.rank
        let resolvedAxis = axis < 0 ? axis + rank : axis
        guard rank >= 1, resolvedAxis >= 0, resolvedAxis < rank else {
            throw .invalidArgument("gather axis \(axis) is out of range for data of rank \(rank)")
        }
        let dimension = data.shape[resolvedAxis]
        var positions = try indexValues(indices)
        for position in positions.indices {
            let index = positions[position]
            guard index >= -dimension, index < dimension else {
                throw .indexOutOfRange(index: index, axis: resolvedAxis, dimension: dimension)
            }
            if index < 0 { positions[position] = index + dimension }
        }
        let outputShape = Array(data.shape[0..<resolvedAxis]) + indices.shape + Array(data.shape[(resolvedAxis + 1)...])
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(data.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }
        let elementSize = data.dataType.byteSize
        let outer = movementProduct(data.shape[0..<resolvedAxis])
        let inner = movementProduct(data.shape[(resolvedAxis + 1)...])
        let source = UnsafeRawPointer(data.storage.pointer)
        if inner == 1 {
            // Gather along the last axis: one element per index, moved as a word, not a memcpy call.
            dispatchMovementWord(byteSize: elementSize, ElementGather(
                source: source, destination: output.storage.pointer, outer: outer, dimension: dimension, positions: positions))
        } else {
            let sliceBytes = inner * elementSize
            var destination = output.storage.pointer
            for row in 0..<outer {
                let rowBase = source + row * dimension * sliceBytes
                for position in positions {
                    memcpy(destination, rowBase + position * sliceBytes, sliceBytes)
                    destination += sliceBytes
                }
            }
        }
        return output
    }
}

private struct ElementGather: MovementWordKernel {
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let outer: Int
    let dimension: Int
    let positions: [Int]

    func run<Word: FixedWidthInteger & UnsignedInteger>(_ word: Word.Type) {
        let input = source.assumingMemoryBound(to: Word.self)
        let output = destination.assumingMemoryBound(to: Word.self)
        var written = 0
        positions.withUnsafeBufferPointer { positions in
            for row in 0..<outer {
                let base = input + row * dimension
                for position in positions {
                    output[written] = base[position]
                    written += 1
                }
            }
        }
    }
}
