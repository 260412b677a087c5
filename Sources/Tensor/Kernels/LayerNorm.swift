/// Layer normalisation over the last axis: for each row of x [..., C],
/// y = (x - mean) / sqrt(var + epsilon) * gamma + beta with gamma, beta [C].
///
/// The variance is the biased one (divide by C) computed in a second pass over (x - mean)^2,
/// which is what both CLIP's LayerNorm and the fusion model's TF-style LayerNorm compute and
/// avoids the cancellation of E[x^2] - E[x]^2. Rows run in parallel when large.
public func layerNorm(_ x: Tensor, gamma: Tensor, beta: Tensor, epsilon: Float) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "LayerNorm input")
    try kernelRequire(gamma, [.float32], "LayerNorm gamma")
    try kernelRequire(beta, [.float32], "LayerNorm beta")
    guard x.rank >= 1 else { throw KernelError("LayerNorm input must have rank >= 1, got a scalar") }
    let columns = x.shape[x.rank - 1]
    guard gamma.count == columns, beta.count == columns, gamma.rank <= 1, beta.rank <= 1 else {
        throw KernelError("LayerNorm gamma \(gamma.shape) and beta \(beta.shape) must both be [\(columns)] for input \(x.shape)")
    }
    let output = try kernelOutput(.float32, x.shape)
    guard output.count > 0, let input = x.floats.baseAddress, let result = output.mutableFloats.baseAddress,
          let scale = gamma.floats.baseAddress, let shift = beta.floats.baseAddress else { return output }
    let rows = x.count / columns
    Threading.parallelFor(0..<rows, minimumChunk: max(1, Threading.elementwiseChunk / columns)) { range in
        for row in range {
            let source = input + row * columns, destination = result + row * columns
            let mean = VectorMath.sum(source, count: columns) / Float(columns)
            let variance = VectorMath.sumOfSquaredDeviations(source, count: columns, center: mean) / Float(columns)
            let inverse = 1 / (variance + epsilon).squareRoot()
            for column in 0..<columns {
                destination[column] = (source[column] - mean) * inverse * scale[column] + shift[column]
            }
        }
    }
    return output
}

extension ReferenceKernels {
    /// Layer normalisation of [rows, columns] values in Double.
    public static func layerNorm(_ values: [Float], rows: Int, columns: Int, gamma: [Float], beta: [Float], epsilon: Float) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        for row in 0..<rows {
            let slice = values[(row * columns)..<((row + 1) * columns)].map(Double.init)
            let mean = slice.reduce(0, +) / Double(columns)
            let variance = slice.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(columns)
            let inverse = 1 / (variance + Double(epsilon)).squareRoot()
            for column in 0..<columns {
                result[row * columns + column] = Float((slice[column] - mean) * inverse * Double(gamma[column]) + Double(beta[column]))
            }
        }
        return result
    }
}
