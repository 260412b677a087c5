import CBLAS

/// Activation applied in the epilogue of a fused linear layer.
public enum LinearActivation: String, Sendable {
    case none
    /// x * sigmoid(1.702 x), CLIP's QuickGELU.
    case quickGELU = "quickgelu"
}

/// A linear layer in one call: `activation(x @ weight + bias) + residual`.
///
/// `x` is [..., K], `weight` [K, N] (the exporter's pre-transposed layout), `bias` [N] or nil,
/// `residual` any shape that broadcasts with [..., N] (or nil). The result is [..., N], or the
/// broadcast shape when the residual is larger.
///
/// Why this is faster than MatMul then Add then Add: without an activation the output buffer is
/// initialised with the bias (plus the residual when it has the output's shape) and sgemm
/// accumulates into it (beta = 1); with the activation, sgemm writes the product and one pass adds
/// the bias and applies the activation row by row while each row is in L1. Either way the
/// [rows, N] result is swept once or twice instead of three or four times. The sum is taken in a
/// different order (residual + bias + product instead of (product + bias) + residual), which
/// changes float32 results by a few ulps.
/// With a row count in `SkinnyGEMM.rowRange` the product goes to the skinny-M kernel instead of
/// sgemm, which accumulates into the initialised output.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor? = nil,
                   activation: LinearActivation = .none) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "linear input")
    try kernelRequire(weight, [.float32], "linear weight")
    guard x.rank >= 1, weight.rank == 2 else {
        throw KernelError("linear needs an input of rank >= 1 and a 2-D weight, got \(x.shape) and \(weight.shape)")
    }
    let k = weight.shape[0], n = weight.shape[1]
    guard x.shape[x.rank - 1] == k else {
        throw KernelError("linear input \(x.shape) does not match weight \(weight.shape): \(x.shape[x.rank - 1]) vs \(k) columns")
    }
    if let bias {
        try kernelRequire(bias, [.float32], "linear bias")
        guard bias.count == n, bias.rank <= 1 || bias.shape.dropLast().allSatisfy({ $0 == 1 }) else {
            throw KernelError("linear bias \(bias.shape) must have \(n) elements for weight \(weight.shape)")
        }
    }
    var outputShape = x.shape
    outputShape[outputShape.count - 1] = n
    let rows = x.count / max(k, 1)
    let output = try kernelOutput(.float32, outputShape)
    guard output.count > 0, let destination = output.mutableFloats.baseAddress else { return output }
    // The residual can go into the initial buffer only when it is exactly the output's shape and
    // no activation sits between the product and the residual add.
    let residualInPlace: Tensor? = {
        guard let residual, residual.dataType == .float32, residual.shape == outputShape, activation == .none else { return nil }
        return residual
    }()
    let biasBase = bias?.floats.baseAddress
    let residualBase = residualInPlace?.floats.baseAddress
    // A weight the loader packed (`PackedStrips`) goes to the packed GEMM at any row count: its
    // few-row case streams the strips as the skinny kernel streams rows, only faster.
    let packedWeights = weight.floatPackedStrips()
    let skinnyPath = packedWeights == nil ? SkinnyGEMM.path(rows: rows, k: k, n: n) : nil
    // Without an activation (or with the skinny kernel, which only accumulates) C starts as
    // residual + bias, or the bias, and sgemm adds the product (beta = 1): with beta = 0 OpenBLAS
    // would clear C in a pass of its own (`sgemm_beta`, 1.7 % of an image run in `perf`) and the
    // bias would need another pass after it. With an activation the product is written first
    // (beta = 0) and the bias and activation follow in one pass, row by row while the row is in
    // L1, since the activation needs a pass after the GEMM anyway.
    let initialiseFirst = residualBase != nil || skinnyPath != nil || activation == .none
    if initialiseFirst {
        Threading.parallelFor(0..<rows, minimumChunk: max(1, Threading.elementwiseChunk / max(n, 1))) { range in
            for row in range {
                let line = destination + row * n
                switch (residualBase, biasBase) {
                case let (residualRow?, biasRow?): FusedVector.add(residualRow + row * n, biasRow, line, count: n)
                case let (residualRow?, nil): line.update(from: residualRow + row * n, count: n)
                case let (nil, biasRow?): line.update(from: biasRow, count: n)
                case (nil, nil): line.update(repeating: 0, count: n)
                }
            }
        }
    }
    // The weight may be stored with padded rows (`PaddedRows`); both kernels take its pitch.
    if let source = x.floats.baseAddress, let packedWeights {
        PackedGEMM.multiply(rows: rows, a: source, lda: k, weights: packedWeights, c: destination, ldc: n,
                            accumulate: initialiseFirst)
    } else if let source = x.floats.baseAddress, let weights = weight.floatMatrixRows() {
        if let skinnyPath {
            // Few rows: stream the weight once instead of letting sgemm pack it (SkinnyGEMM.swift).
            SkinnyGEMM.accumulate(rows: rows, k: k, n: n, a: source, w: weights.base, wRowPitch: weights.rowPitch,
                                  c: destination, path: skinnyPath)
        } else {
            try BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: n, k: k, alpha: 1, a: source, lda: k,
                           b: weights.base, ldb: weights.rowPitch, beta: initialiseFirst ? 1 : 0, c: destination, ldc: n)
        }
    } else if !initialiseFirst {
        destination.update(repeating: 0, count: rows * n)  // k = 0: the product is zero
    }
    let addBias = !initialiseFirst ? biasBase : nil
    if addBias != nil || activation == .quickGELU {
        Threading.parallelFor(0..<rows, minimumChunk: max(1, Threading.elementwiseChunk / max(n, 1))) { range in
            for row in range {
                let line = destination + row * n
                if let addBias { FusedVector.accumulate(addBias, into: line, count: n) }
                if activation == .quickGELU { VectorMath.quickGELU(line, line, count: n) }
            }
        }
    }
    if let residual, residualInPlace == nil {
        return try binary(.add, residual, output)
    }
    return output
}

/// Row-level SIMD helpers of the fused kernels.
enum FusedVector {
    /// output[i] = a[i] + b[i].
    @inline(__always)
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        var index = 0
        while index + VectorMath.width <= count {
            let sum = UnsafeRawPointer(a + index).loadUnaligned(as: FloatVector.self)
                + UnsafeRawPointer(b + index).loadUnaligned(as: FloatVector.self)
            UnsafeMutableRawPointer(output + index).storeBytes(of: sum, as: FloatVector.self)
            index += VectorMath.width
        }
        while index < count {
            output[index] = a[index] + b[index]
            index += 1
        }
    }

    /// output[i] += a[i].
    @inline(__always)
    static func accumulate(_ a: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, count: Int) {
        add(a, output, output, count: count)
    }
}

extension ReferenceKernels {
    /// `activation(x @ weight + bias) + residual` in Double, rows of x [rows, k], weight [k, n],
    /// residual [rows, n] or nil.
    public static func linear(_ x: [Float], rows: Int, k: Int, weight: [Float], n: Int, bias: [Float]?,
                              residual: [Float]?, quickGELU: Bool) -> [Float] {
        var result = [Float](repeating: 0, count: rows * n)
        for row in 0..<rows {
            for column in 0..<n {
                var total = Double(bias?[column] ?? 0)
                for inner in 0..<k { total += Double(x[row * k + inner]) * Double(weight[inner * n + column]) }
                if quickGELU { total = total / (1 + LibM.exp(-1.702 * total)) }
                if let residual { total += Double(residual[row * n + column]) }
                result[row * n + column] = Float(total)
            }
        }
        return result
    }
}
