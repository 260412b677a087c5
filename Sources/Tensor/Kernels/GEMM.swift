import CBLAS

/// Thin wrappers over OpenBLAS.
public enum BLAS {
    /// Products below this many multiply-adds run on one thread: splitting costs a thread wake-up
    /// (tens of µs) and the halves pack their shared operand twice.
    public static let splitThreshold = 1 << 21

    /// Column blocks are multiples of 16 (OpenBLAS's AVX2 kernels work on 16-column panels).
    static let columnUnit = 16

    /// How `sgemm` cuts C's `columns` for `threads` threads: first one large block per thread,
    /// together about 80 % of the columns, then `2 * threads` small blocks, which the threads take
    /// as they finish (`parallelFor` hands blocks out in order, one at a time).
    ///
    /// Why not equal halves: on the 2-vCPU Zen 3 VM the two threads rarely run at the same speed
    /// (the vCPUs' hosts are shared), and with one block each the faster thread waited for the other:
    /// `perf` of the image graph put 7.3 % of all samples in the caller's wait in the pool (14 % of
    /// its time), and 2.3 % with the small blocks. Why not only small blocks: each block packs its
    /// rows of A again (OpenBLAS packs per call), which is what made 3 equal blocks per thread
    /// slower. Image graph, 2 threads, 22 alternated pairs of 5-run medians: faster in 16, the means
    /// 2-8 % lower by round. Products narrower than 16 blocks of 16 columns per thread keep one block each.
    static func columnBlocks(columns: Int, threads: Int) -> [Range<Int>] {
        let unit = columnUnit
        let units = (columns + unit - 1) / unit
        guard threads > 1 else { return columns > 0 ? [0..<columns] : [] }
        var bounds: [Int]
        if units >= 16 * threads {
            let large = units * 8 / 10 / threads, small = 2 * threads
            bounds = (0...threads).map { $0 * large }
            let rest = units - threads * large
            bounds += (1...small).map { threads * large + rest * $0 / small }
        } else {
            bounds = (0...threads).map { units * $0 / threads }
        }
        return zip(bounds, bounds.dropFirst()).compactMap { start, end in
            let lower = min(columns, start * unit), upper = min(columns, end * unit)
            return lower < upper ? lower..<upper : nil
        }
    }

    /// Row-major single-precision GEMM: `C = alpha * op(A) * op(B) + beta * C`, with op(A) [m, k],
    /// op(B) [k, n] and C [m, n]. `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored
    /// (A is stored [k, m] when `transposeA`). With k = 0 the product is zero and C becomes beta*C.
    /// Throws when a dimension does not fit the 32-bit BLAS interface.
    ///
    /// Threads (see Threading.swift): OpenBLAS always runs single-threaded; a large product is cut
    /// into blocks of columns (`columnBlocks`; or `Threading.threadCount` blocks of rows when it is
    /// narrow), each one single-threaded sgemm on one of our threads.
    /// `threads` (default: `Threading.threadCount`) sets the blocks, and so the rounding.
    public static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int = Threading.threadCount) throws(KernelError) {
        let limit = Int(Int32.max)
        guard m <= limit, n <= limit, k <= limit, lda <= limit, ldb <= limit, ldc <= limit else {
            throw KernelError("GEMM dimensions m=\(m) n=\(n) k=\(k) exceed the 32-bit BLAS interface")
        }
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // BLAS leaves this case to the caller's beta handling; do it explicitly so beta = 0
            // clears uninitialised memory.
            for row in 0..<m {
                let line = c + row * ldc
                for column in 0..<n { line[column] = beta == 0 ? 0 : beta * line[column] }
            }
            return
        }
        Threading.useSingleThreadedBLAS()
        func block(rows: Range<Int>, columns: Range<Int>) {
            let aBlock = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            let bBlock = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(rows.count), Int32(columns.count), Int32(k), alpha, aBlock, Int32(max(lda, 1)),
                        bBlock, Int32(max(ldb, 1)), beta, c + rows.lowerBound * ldc + columns.lowerBound, Int32(max(ldc, 1)))
        }
        let parts = max(1, threads)
        let unit = columnUnit
        if parts > 1, m * n * k >= splitThreshold, n >= 2 * unit * parts {
            let blocks = columnBlocks(columns: n, threads: parts)
            Threading.parallelFor(0..<blocks.count, minimumChunk: 1,
                                  chunksPerThread: (blocks.count + parts - 1) / parts) { range in
                for index in range { block(rows: 0..<m, columns: blocks[index]) }
            }
        } else if parts > 1, m * n * k >= splitThreshold, m >= 2 * unit {
            Threading.parallelFor(0..<m, minimumChunk: unit, chunksPerThread: 1) { rows in block(rows: rows, columns: 0..<n) }
        } else {
            block(rows: 0..<m, columns: 0..<n)
        }
    }
}

/// numpy / ONNX MatMul of float32 tensors.
///
/// A 1-D `a` [K] is treated as [1, K] and a 1-D `b` [K] as [K, 1], and the added dim is removed
/// from the result. Otherwise `a` [..., M, K] times `b` [..., K, N] gives [batch..., M, N] with the
/// leading (batch) dims broadcast. When `b` has no real batch dims (its batch dims multiply to 1 and
/// `a` fills the whole output batch), `a`'s batch dims are folded into M and one sgemm does all the
/// work (the Linear-layer case [L, N, E] x [E, F]); otherwise one sgemm per batch entry.
public func matmul(_ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(a, [.float32], "MatMul input A")
    try kernelRequire(b, [.float32], "MatMul input B")
    guard a.rank >= 1, b.rank >= 1 else {
        throw KernelError("MatMul inputs must have rank >= 1, got shapes \(a.shape) and \(b.shape)")
    }
    let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
    let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let bRows = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == bRows else {
        throw KernelError("MatMul shapes \(a.shape) and \(b.shape) do not match: A has \(k) columns, B has \(bRows) rows")
    }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    let batch: [Int]
    do { batch = try broadcastShapes(aBatch, bBatch) } catch {
        throw KernelError("MatMul batch dims of \(a.shape) and \(b.shape) cannot be broadcast together")
    }
    var resultShape = batch
    if a.rank > 1 { resultShape.append(m) }
    if b.rank > 1 { resultShape.append(n) }
    let output = try kernelOutput(.float32, resultShape)
    guard output.count > 0, let aBase = a.floats.baseAddress, let cBase = output.mutableFloats.baseAddress else { return output }
    let batchCount = kernelProduct(batch[...])
    // One B for every batch: a weight matrix, possibly stored with padded rows (`PaddedRows`),
    // whose pitch both kernels take, so it is never copied to contiguous rows.
    // A 1-D B is a [K, 1] column: its rows are one element apart.
    if kernelProduct(bBatch[...]) == 1, kernelProduct(aBatch[...]) == batchCount, let packed = b.floatPackedStrips() {
        // A weight the loader packed (`PackedStrips`): the packed GEMM at any row count.
        PackedGEMM.multiply(rows: batchCount * m, a: aBase, lda: k, weights: packed, c: cBase, ldc: n, accumulate: false)
        return output
    }
    if kernelProduct(bBatch[...]) == 1, kernelProduct(aBatch[...]) == batchCount,
       let weights = b.rank > 1 ? b.floatMatrixRows() : b.floats.baseAddress.map({ (base: $0, rowPitch: 1) }) {
        if let path = SkinnyGEMM.path(rows: batchCount * m, k: k, n: n) {
            // Few rows against a weight matrix: the skinny kernel accumulates, so start from zero.
            cBase.update(repeating: 0, count: output.count)
            SkinnyGEMM.accumulate(rows: batchCount * m, k: k, n: n, a: aBase, w: weights.base, wRowPitch: weights.rowPitch,
                                  c: cBase, path: path)
            return output
        }
        try BLAS.sgemm(transposeA: false, transposeB: false, m: batchCount * m, n: n, k: k, alpha: 1,
                       a: aBase, lda: k, b: weights.base, ldb: weights.rowPitch, beta: 0, c: cBase, ldc: n)
        return output
    }
    guard let bBase = b.floats.baseAddress else { return output }
    for index in 0..<batchCount {
        let aOffset = aBatch == batch ? index : broadcastOffset(index, output: batch, operand: aBatch)
        let bOffset = bBatch == batch ? index : broadcastOffset(index, output: batch, operand: bBatch)
        try BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1,
                       a: aBase + aOffset * m * k, lda: k, b: bBase + bOffset * k * n, ldb: n,
                       beta: 0, c: cBase + index * m * n, ldc: n)
    }
    return output
}

/// ONNX Gemm: `alpha * op(a) * op(b) + beta * c` with a, b 2-D float32 (op = transpose when the
/// flag is set), giving [M, N]. `c` is optional and unidirectionally broadcast to [M, N]
/// (shapes [], [1], [N], [1, N], [M, 1] or [M, N]).
public func gemm(_ a: Tensor, _ b: Tensor, _ c: Tensor?, alpha: Float = 1, beta: Float = 1,
                 transposeA: Bool = false, transposeB: Bool = false) throws(KernelError) -> Tensor {
    try kernelRequire(a, [.float32], "Gemm input A")
    try kernelRequire(b, [.float32], "Gemm input B")
    guard a.rank == 2, b.rank == 2 else {
        throw KernelError("Gemm inputs A and B must be 2-D, got shapes \(a.shape) and \(b.shape)")
    }
    let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
    let bRows = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
    guard k == bRows else {
        throw KernelError("Gemm shapes \(a.shape) (transA=\(transposeA)) and \(b.shape) (transB=\(transposeB)) do not match: \(k) vs \(bRows)")
    }
    let output = try kernelOutput(.float32, [m, n])
    guard output.count > 0, let cBase = output.mutableFloats.baseAddress else { return output }
    var effectiveBeta: Float = 0
    if let c {
        try kernelRequire(c, [.float32], "Gemm input C")
        guard c.rank <= 2, (try? broadcastShapes(c.shape, [m, n])) == [m, n] else {
            throw KernelError("Gemm input C of shape \(c.shape) cannot be broadcast to [\(m), \(n)]")
        }
        let padded = [Int](repeating: 1, count: 2 - c.rank) + c.shape
        let source = c.floats
        for row in 0..<m {
            for column in 0..<n {
                cBase[row * n + column] = source[(padded[0] == 1 ? 0 : row) * padded[1] + (padded[1] == 1 ? 0 : column)]
            }
        }
        effectiveBeta = beta
    }
    guard let aBase = a.floats.baseAddress, let bBase = b.floats.baseAddress else { return output }
    try BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                   a: aBase, lda: a.shape[1], b: bBase, ldb: b.shape[1], beta: effectiveBeta, c: cBase, ldc: n)
    return output
}

extension ReferenceKernels {
    /// Triple-loop MatMul in Double with the same numpy semantics as `matmul`.
    public static func matmul(_ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
        let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1], n = bShape[bShape.count - 1]
        guard bShape[bShape.count - 2] == k else { throw KernelError("reference MatMul: inner dims differ") }
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let batch = try broadcastShapes(aBatch, bBatch)
        var resultShape = batch
        if a.rank > 1 { resultShape.append(m) }
        if b.rank > 1 { resultShape.append(n) }
        let x = a.floats, y = b.floats
        var values: [Float] = []
        for index in 0..<kernelProduct(batch[...]) {
            let aOffset = broadcastOffset(index, output: batch, operand: aBatch) * m * k
            let bOffset = broadcastOffset(index, output: batch, operand: bBatch) * k * n
            for row in 0..<m {
                for column in 0..<n {
                    var total = 0.0
                    for inner in 0..<k { total += Double(x[aOffset + row * k + inner]) * Double(y[bOffset + inner * n + column]) }
                    values.append(Float(total))
                }
            }
        }
        do { return try Tensor(values, shape: resultShape) } catch { throw KernelError(error.description) }
    }
}
