/// Sum of float32 `x` over `axes` (negative allowed, no duplicates). `keepDims` keeps each reduced
/// axis as size 1. An empty `axes` list reduces nothing (callers map ONNX "axes absent" to all axes).
public func reduceSum(_ x: Tensor, axes: [Int], keepDims: Bool) throws(KernelError) -> Tensor {
    try reduce(x, axes: axes, keepDims: keepDims, mean: false, role: "ReduceSum")
}

/// Mean of float32 `x` over `axes`; see `reduceSum`. Reducing an empty axis gives NaN (0/0), as numpy.
public func reduceMean(_ x: Tensor, axes: [Int], keepDims: Bool) throws(KernelError) -> Tensor {
    try reduce(x, axes: axes, keepDims: keepDims, mean: true, role: "ReduceMean")
}

/// Output shape and the resolved, sorted axes of a reduction.
private func reductionShape(_ shape: [Int], axes: [Int], keepDims: Bool, role: String) throws(KernelError) -> (kept: [Int], output: [Int]) {
    var reduced = [Bool](repeating: false, count: shape.count)
    for axis in axes {
        let resolved = try kernelAxis(axis, rank: shape.count, "\(role) axis")
        guard !reduced[resolved] else { throw KernelError("\(role) axis \(axis) is listed twice in \(axes)") }
        reduced[resolved] = true
    }
    // `kept` is the input shape with reduced axes set to 1: it is the output seen as an operand
    // broadcast over the input, which is how the general path walks it.
    let kept = shape.indices.map { reduced[$0] ? 1 : shape[$0] }
    let output = keepDims ? kept : shape.indices.filter { !reduced[$0] }.map { shape[$0] }
    return (kept, output)
}

private func reduce(_ x: Tensor, axes: [Int], keepDims: Bool, mean: Bool, role: String) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "\(role) input")
    let (kept, outputShape) = try reductionShape(x.shape, axes: axes, keepDims: keepDims, role: role)
    let output = try kernelOutput(.float32, outputShape)
    guard let result = output.mutableFloats.baseAddress else { return output }
    let outputCount = output.count
    guard outputCount > 0 else { return output }
    let reducedCount = outputCount == 0 ? 0 : x.count / outputCount
    guard x.count > 0, let input = x.floats.baseAddress else {
        result.update(repeating: mean ? .nan : 0, count: outputCount)
        return output
    }
    let scale: Float = mean ? 1 / Float(reducedCount) : 1
    // Reduced axes are all trailing (ignoring size-1 dims): each output element is one contiguous row.
    let plan = BroadcastPlan(output: x.shape, operands: [x.shape, kept])
    if plan.innerSteps.last == 0 && plan.outerStrides[1].allSatisfy({ $0 != 0 }) || outputCount == 1 {
        let rowLength = reducedCount
        Threading.parallelFor(0..<outputCount, minimumChunk: max(1, Threading.elementwiseChunk / max(rowLength, 1))) { rows in
            for row in rows { result[row] = VectorMath.sum(input + row * rowLength, count: rowLength) * scale }
        }
        return output
    }
    // General path: walk the input in order; the output is an operand with stride 0 along reduced
    // axes. Inner loop either sums a row into one output (inner axis reduced) or adds a row into a
    // row of outputs (inner axis kept, vectorises like axpy).
    result.update(repeating: 0, count: outputCount)
    let inner = plan.innerCount
    let outputStep = plan.innerSteps[1]
    plan.forEachOuter(0..<plan.outerCount) { outerIndex, offsets in
        let source = input + outerIndex * inner
        let destination = result + offsets[1]
        if outputStep == 0 {
            destination[0] += VectorMath.sum(source, count: inner)
        } else {
            for index in 0..<inner { destination[index] += source[index] }
        }
    }
    if mean {
        for index in 0..<outputCount { result[index] *= scale }
    }
    return output
}

/// Index of the largest element along `axis` (float32 or int64 input) as int64. Ties give the
/// first index, or the last with `selectLastIndex` (ONNX opset 12+). NaN counts as larger than
/// every number (numpy's argmax behaviour): the first NaN wins. `keepDims` keeps the axis as size 1.
public func argMax(_ x: Tensor, axis: Int, keepDims: Bool, selectLastIndex: Bool = false) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32, .int64], "ArgMax input")
    let resolved = try kernelAxis(axis, rank: x.rank, "ArgMax axis")
    let length = x.shape[resolved]
    var shape = x.shape
    if keepDims { shape[resolved] = 1 } else { shape.remove(at: resolved) }
    let output = try kernelOutput(.int64, shape)
    guard output.count > 0 else { return output }
    guard length > 0 else { throw KernelError("ArgMax over axis \(axis) of size 0 in shape \(x.shape)") }
    let outer = kernelProduct(x.shape[..<resolved]), inner = kernelProduct(x.shape[(resolved + 1)...])
    let result = output.mutableInt64s
    if x.dataType == .float32 {
        let values = x.floats
        for block in 0..<outer {
            for column in 0..<inner {
                let base = block * length * inner + column
                var best = values[base], bestIndex = 0
                for position in 1..<length {
                    let value = values[base + position * inner]
                    let greater = (value.isNaN && !best.isNaN) || value > best
                    let equal = value == best || (value.isNaN && best.isNaN)
                    if greater || (selectLastIndex && equal) { best = value; bestIndex = position }
                }
                result[block * inner + column] = Int64(bestIndex)
            }
        }
    } else {
        let values = x.int64s
        for block in 0..<outer {
            for column in 0..<inner {
                let base = block * length * inner + column
                var best = values[base], bestIndex = 0
                for position in 1..<length {
                    let value = values[base + position * inner]
                    if value > best || (selectLastIndex && value == best) { best = value; bestIndex = position }
                }
                result[block * inner + column] = Int64(bestIndex)
            }
        }
    }
    return output
}

extension ReferenceKernels {
    /// Reduction by visiting every input element and adding it (in Double) to its output slot.
    public static func reduce(_ x: Tensor, axes: [Int], keepDims: Bool, mean: Bool) throws(KernelError) -> Tensor {
        let (kept, outputShape) = try reductionShape(x.shape, axes: axes, keepDims: keepDims, role: "reference reduce")
        let outputCount = kernelProduct(kept[...])
        var totals = [Double](repeating: 0, count: outputCount)
        let values = x.floats
        for index in 0..<x.count {
            totals[broadcastOffset(index, output: x.shape, operand: kept)] += Double(values[index])
        }
        let reducedCount = outputCount == 0 ? 0 : x.count / outputCount
        let result = totals.map { Float(mean ? $0 / Double(reducedCount) : $0) }
        do { return try Tensor(result, shape: outputShape) } catch { throw KernelError(error.description) }
    }
}
