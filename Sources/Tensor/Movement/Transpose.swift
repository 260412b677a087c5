#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Movement {
    /// Permutes the axes: output axis `i` is input axis `permutation[i]`, so the output shape is
    /// `permutation.map { tensor.shape[$0] }`.
    ///
    /// The permutation is first reduced: size-1 axes are dropped and runs of axes that stay
    /// adjacent and in order are merged. That maps every permutation the networks use onto
    /// three fast loops: `[1,0]` (also what `[1,2,0]` and `[2,0,1]` become) is a cache-blocked
    /// 2-D transpose; `[0,2,1]` is a batch of blocked 2-D transposes; `[1,0,2]` and any
    /// permutation that keeps the last axis copy whole rows with `memcpy`. Anything else falls back
    /// to an odometer loop with a strided inner axis.
    public static func transpose(_ tensor: Tensor, permutation: [Int]) throws(MovementError) -> Tensor {
        let rank = tensor.rank
        guard permutation.count == rank else {
            throw .invalidArgument("permutation \(permutation) has \(permutation.count) entries for a rank-\(rank) tensor")
        }
        var seen = [Bool](repeating: false, count: rank)
        for axis in permutation {
            guard axis >= 0, axis < rank, !seen[axis] else {
                throw .invalidArgument("permutation \(permutation) is not a permutation of 0..<\(rank)")
            }
            seen[axis] = true
        }
        let outputShape = permutation.map { tensor.shape[$0] }
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(tensor.dataType, shape: outputShape) }
        guard output.count > 0 else { return output }

        let (reducedShape, reducedPermutation) = reducePermutation(shape: tensor.shape, permutation: permutation)
        let elementSize = tensor.dataType.byteSize
        let source = UnsafeRawPointer(tensor.storage.pointer)
        let destination = output.storage.pointer

        switch reducedPermutation {
        case [], [0]:
            memcpy(destination, source, tensor.byteCount)
        case [1, 0]:
            dispatchMovementWord(byteSize: elementSize, BlockedTranspose(
                source: source, destination: destination, batch: 1, rows: reducedShape[0], columns: reducedShape[1]))
        case [0, 2, 1]:
            dispatchMovementWord(byteSize: elementSize, BlockedTranspose(
                source: source, destination: destination,
                batch: reducedShape[0], rows: reducedShape[1], columns: reducedShape[2]))
        case [1, 0, 2]:
            // Swap of the two leading axes: each (i, j) pair moves one contiguous row of the last axis.
            let outer = reducedShape[0], middle = reducedShape[1]
            let rowBytes = reducedShape[2] * elementSize
            for i in 0..<middle {
                for j in 0..<outer {
                    memcpy(destination + (i * outer + j) * rowBytes, source + (j * middle + i) * rowBytes, rowBytes)
                }
            }
        default:
            if reducedPermutation.last == reducedPermutation.count - 1 {
                copyRows(source: source, destination: destination, shape: reducedShape,
                         permutation: reducedPermutation, elementSize: elementSize)
            } else {
                dispatchMovementWord(byteSize: elementSize, StridedTranspose(
                    source: source, destination: destination, shape: reducedShape, permutation: reducedPermutation))
            }
        }
        return output
    }

    /// Drops size-1 axes and merges axes that remain neighbours (in the same order) after the
    /// permutation. Returns the merged input shape and the permutation over the merged axes.
    static func reducePermutation(shape: [Int], permutation: [Int]) -> (shape: [Int], permutation: [Int]) {
        // Renumber the input axes that have more than one element.
        var newIndex = [Int](repeating: -1, count: shape.count)
        var keptShape: [Int] = []
        for (axis, dimension) in shape.enumerated() where dimension != 1 {
            newIndex[axis] = keptShape.count
            keptShape.append(dimension)
        }
        let keptPermutation = permutation.compactMap { newIndex[$0] >= 0 ? newIndex[$0] : nil }
        // Groups of consecutive input axes, in output order.
        var groups: [[Int]] = []
        for axis in keptPermutation {
            if let last = groups.last?.last, last + 1 == axis {
                groups[groups.count - 1].append(axis)
            } else {
                groups.append([axis])
            }
        }
        let inputOrder = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
        var rankOfGroup = [Int](repeating: 0, count: groups.count)
        for (position, group) in inputOrder.enumerated() { rankOfGroup[group] = position }
        let mergedShape = inputOrder.map { group in groups[group].reduce(1) { $0 * keptShape[$1] } }
        let mergedPermutation = groups.indices.map { rankOfGroup[$0] }
        return (mergedShape, mergedPermutation)
    }

    /// Permutations that keep the last axis in place: copy whole rows, walking the output in order.
    private static func copyRows(source: UnsafeRawPointer, destination: UnsafeMutableRawPointer,
                                 shape: [Int], permutation: [Int], elementSize: Int) {
        let rank = shape.count
        let rowBytes = shape[rank - 1] * elementSize
        let inputStrides = Shape.strides(shape)
        let outerAxes = rank - 1
        let outputShape = permutation.map { shape[$0] }
        let strideOfOutputAxis = permutation.map { inputStrides[$0] * elementSize }
        var index = [Int](repeating: 0, count: outerAxes)
        var sourceOffset = 0
        let rows = movementProduct(outputShape[0..<outerAxes])
        for row in 0..<rows {
            memcpy(destination + row * rowBytes, source + sourceOffset, rowBytes)
            // Odometer increment over the outer output axes.
            var axis = outerAxes - 1
            while axis >= 0 {
                index[axis] += 1
                sourceOffset += strideOfOutputAxis[axis]
                if index[axis] < outputShape[axis] { break }
                sourceOffset -= strideOfOutputAxis[axis] * outputShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// `batch` independent row-major `rows x columns` -> `columns x rows` transposes, in square
/// tiles so both the reads and the strided writes of a tile stay in L1.
private struct BlockedTranspose: MovementWordKernel {
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let batch: Int
    let rows: Int
    let columns: Int

    func run<Word: FixedWidthInteger & UnsignedInteger>(_ word: Word.Type) {
        let input = source.assumingMemoryBound(to: Word.self)
        let output = destination.assumingMemoryBound(to: Word.self)
        // 32 x 32 words is 4 KiB for float32: a tile of input plus one of output fits L1 easily.
        let tile = 32
        let matrix = rows * columns
        for item in 0..<batch {
            let from = input + item * matrix
            let to = output + item * matrix
            var rowStart = 0
            while rowStart < rows {
                let rowEnd = Swift.min(rowStart + tile, rows)
                var columnStart = 0
                while columnStart < columns {
                    let columnEnd = Swift.min(columnStart + tile, columns)
                    for row in rowStart..<rowEnd {
                        let inputRow = from + row * columns
                        for column in columnStart..<columnEnd {
                            to[column * rows + row] = inputRow[column]
                        }
                    }
                    columnStart = columnEnd
                }
                rowStart = rowEnd
            }
        }
    }
}

/// General permutation: walks the output in order, reading the innermost output axis with its input stride.
private struct StridedTranspose: MovementWordKernel {
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let shape: [Int]
    let permutation: [Int]

    func run<Word: FixedWidthInteger & UnsignedInteger>(_ word: Word.Type) {
        let input = source.assumingMemoryBound(to: Word.self)
        let output = destination.assumingMemoryBound(to: Word.self)
        let rank = shape.count
        let inputStrides = Shape.strides(shape)
        let outputShape = permutation.map { shape[$0] }
        let strideOfOutputAxis = permutation.map { inputStrides[$0] }
        let inner = outputShape[rank - 1]
        let innerStride = strideOfOutputAxis[rank - 1]
        let outerAxes = rank - 1
        var index = [Int](repeating: 0, count: outerAxes)
        var sourceOffset = 0
        var outputOffset = 0
        let rows = movementProduct(outputShape[0..<outerAxes])
        for _ in 0..<rows {
            let from = input + sourceOffset
            for element in 0..<inner {
                output[outputOffset + element] = from[element * innerStride]
            }
            outputOffset += inner
            var axis = outerAxes - 1
            while axis >= 0 {
                index[axis] += 1
                sourceOffset += strideOfOutputAxis[axis]
                if index[axis] < outputShape[axis] { break }
                sourceOffset -= strideOfOutputAxis[axis] * outputShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
