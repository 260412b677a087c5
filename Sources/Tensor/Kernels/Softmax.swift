/// Softmax of each row of a row-major [rows, columns] buffer: exp(x - max) / sum.
///
/// Subtracting the row maximum keeps exp from overflowing. Entries of -inf (masked attention
/// scores) give exp(-inf) = 0 and simply drop out. A row that is entirely -inf has max -inf and
/// -inf - (-inf) = NaN, so the whole row becomes NaN, the same as numpy and torch.
/// Rows run in parallel when the buffer is large.
public func softmaxRows(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
    guard rows > 0, columns > 0 else { return }
    Threading.parallelFor(0..<rows, minimumChunk: max(1, Threading.elementwiseChunk / columns)) { range in
        for row in range {
            VectorMath.softmaxRow(input + row * columns, output + row * columns, count: columns)
        }
    }
}

/// ONNX Softmax from opset 13: normalises along the single axis `axis` (negative allowed).
/// The last axis goes through `softmaxRows`; an inner axis is handled with the other trailing
/// dims as contiguous vectors (max, exp and sum run across them).
public func softmax(_ x: Tensor, axis: Int) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "Softmax input")
    if x.rank == 0 { return try softmaxCoerced(x, axis: 0) }
    let resolved = try kernelAxis(axis, rank: x.rank, "Softmax axis")
    let output = try kernelOutput(.float32, x.shape)
    guard output.count > 0, let input = x.floats.baseAddress, let result = output.mutableFloats.baseAddress else { return output }
    let length = x.shape[resolved]
    let inner = kernelProduct(x.shape[(resolved + 1)...])
    let outer = kernelProduct(x.shape[..<resolved])
    if inner == 1 {
        softmaxRows(input, result, rows: outer, columns: length)
        return output
    }
    Threading.parallelFor(0..<outer, minimumChunk: max(1, Threading.elementwiseChunk / (length * inner))) { blocks in
        let maxima = UnsafeMutablePointer<Float>.allocate(capacity: inner)
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: inner)
        defer { maxima.deallocate(); sums.deallocate() }
        for block in blocks {
            let source = input + block * length * inner, destination = result + block * length * inner
            maxima.update(repeating: -.infinity, count: inner)
            for position in 0..<length {
                let line = source + position * inner
                for column in 0..<inner where line[column] > maxima[column] || line[column].isNaN { maxima[column] = line[column] }
            }
            sums.update(repeating: 0, count: inner)
            for position in 0..<length {
                let line = source + position * inner, target = destination + position * inner
                for column in 0..<inner { target[column] = line[column] - maxima[column] }
                VectorMath.exp(target, target, count: inner)
                for column in 0..<inner { sums[column] += target[column] }
            }
            for column in 0..<inner { sums[column] = 1 / sums[column] }
            for position in 0..<length {
                let target = destination + position * inner
                for column in 0..<inner { target[column] *= sums[column] }
            }
        }
    }
    return output
}

/// ONNX Softmax before opset 13: the input is coerced to 2-D [prod(dims[..<axis]), prod(dims[axis...])]
/// and each row is normalised. For axis = rank - 1 this equals the per-axis softmax; for smaller
/// axes it normalises over several trailing dims at once.
public func softmaxCoerced(_ x: Tensor, axis: Int) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "Softmax input")
    // Opsets 1-12 allow axis in [-r, r]; axis = r gives rows of one element.
    let resolved = axis < 0 ? axis + x.rank : axis
    guard resolved >= 0, resolved <= x.rank else {
        throw KernelError("Softmax axis \(axis) is out of range for rank \(x.rank)")
    }
    let output = try kernelOutput(.float32, x.shape)
    guard output.count > 0, let input = x.floats.baseAddress, let result = output.mutableFloats.baseAddress else { return output }
    let columns = kernelProduct(x.shape[resolved...])
    softmaxRows(input, result, rows: x.count / columns, columns: columns)
    return output
}

extension ReferenceKernels {
    /// Row softmax in Double with libm exp.
    public static func softmaxRows(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        for row in 0..<rows {
            let slice = values[(row * columns)..<((row + 1) * columns)].map(Double.init)
            let maximum = slice.max() ?? 0
            let exps = slice.map { LibM.exp($0 - maximum) }
            let total = exps.reduce(0, +)
            for column in 0..<columns { result[row * columns + column] = Float(exps[column] / total) }
        }
        return result
    }
}
