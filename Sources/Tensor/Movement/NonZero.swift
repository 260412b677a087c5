extension Movement {
    /// ONNX NonZero: the indices of the non-zero elements as an int64 tensor `[rank, nnz]`,
    /// column `j` holding the multi-index of the `j`-th non-zero element in row-major order.
    ///
    /// A 0-d input is treated as a one-element vector (output `[1, nnz]`), as ONNX Runtime does.
    /// "Non-zero" is judged on the bits: floats ignore the sign bit (so -0.0 is zero and NaN is
    /// non-zero), integers and bool compare with 0. This needs no Float16 arithmetic.
    public static func nonZero(_ tensor: Tensor) throws(MovementError) -> Tensor {
        let flags = nonZeroFlags(tensor)
        let shape = tensor.rank == 0 ? [1] : tensor.shape
        let rank = shape.count
        let nonZeroCount = flags.reduce(0) { $0 + ($1 ? 1 : 0) }
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(.int64, shape: [rank, nonZeroCount]) }
        guard nonZeroCount > 0 else { return output }
        let values = output.mutableInt64s
        var index = [Int](repeating: 0, count: rank)
        var column = 0
        for flag in flags {
            if flag {
                for axis in 0..<rank { values[axis * nonZeroCount + column] = Int64(index[axis]) }
                column += 1
            }
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return output
    }

    private static func nonZeroFlags(_ tensor: Tensor) -> [Bool] {
        let raw = UnsafeRawPointer(tensor.storage.pointer)
        let count = tensor.count
        switch tensor.dataType {
        case .float32:
            let bits = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt32.self), count: count)
            return bits.map { $0 & 0x7FFF_FFFF != 0 }
        case .float64:
            let bits = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt64.self), count: count)
            return bits.map { $0 & 0x7FFF_FFFF_FFFF_FFFF != 0 }
        case .float16:
            let bits = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt16.self), count: count)
            return bits.map { $0 & 0x7FFF != 0 }
        case .int64:
            return UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt64.self), count: count).map { $0 != 0 }
        case .int32:
            return UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt32.self), count: count).map { $0 != 0 }
        case .int8, .uint8, .bool:
            return UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: count).map { $0 != 0 }
        }
    }
}
