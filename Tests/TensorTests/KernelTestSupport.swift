import Tensor


/// A float tensor of the given shape filled from `generator`.
func randomTensor(_ shape: [Int], _ generator: inout SplitMix64, _ low: Float = -1, _ high: Float = 1) throws -> Tensor {
    let count = shape.reduce(1, *)
    return try Tensor(generator.floats(count, low, high), shape: shape)
}

/// Largest |a - b| / max(1, |b|) over two arrays (mixed absolute/relative error); NaN positions must match.
func maxMixedError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    var worst: Float = 0
    for index in a.indices {
        if a[index].isNaN || b[index].isNaN {
            if a[index].isNaN != b[index].isNaN { return .infinity }
            continue
        }
        if a[index] == b[index] { continue }
        worst = max(worst, abs(a[index] - b[index]) / max(1, abs(b[index])))
    }
    return worst
}

/// `kernel(input, output, count)` run on the first `count` values (all by default): the array form
/// of the pointer kernels (AVX2 C functions and their portable Swift twins) the tests compare.
func applyKernel(_ values: [Float], count: Int? = nil,
                 _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
    let length = min(count ?? values.count, values.count)
    var output = [Float](repeating: 0, count: length)
    values.withUnsafeBufferPointer { input in
        output.withUnsafeMutableBufferPointer { result in
            if let source = input.baseAddress, let destination = result.baseAddress { kernel(source, destination, length) }
        }
    }
    return output
}
