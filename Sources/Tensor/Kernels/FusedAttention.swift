import CBLAS

// Threads (see Threading.swift): the two projections are `linear`, whose sgemm is split across
// our threads. The per-(batch, head) part is many small products (50x64x50 for ViT-B/32), run
// under `Threading.parallelFor` over batch x heads, each a single-threaded sgemm call.

/// Multi-head self-attention as exported by torch 1.8.1's `F.multi_head_attention_forward`,
/// sequence-first: x [L, N, E] gives out_proj(softmax(scale * Q K^T + mask) V) (+ residual),
/// [L, N, E].
///
/// - `inWeight` [E, 3E], `inBias` [3E]: the packed q/k/v projection (columns q | k | v).
/// - `outWeight` [E, E], `outBias` [E]: the output projection.
/// - `mask`: nil, or an additive mask of [L, L], [1, L, L] or [N*heads, L, L] (may hold -inf).
/// - `residual`: nil or a tensor added to the result (see `linear`).
/// - `scale`: the factor the graph multiplies q by (head_dim^-0.5 in CLIP). It is applied as the
///   sgemm alpha of Q K^T, which equals scaling q first up to rounding (exactly for 0.125).
///
/// Head h of batch entry n is the slice of columns [h*hd, (h+1)*hd) of row (l, n), matching the
/// graph's Reshape to [L, N*heads, hd], so Q, K and V are read in place through the sgemm leading
/// dimension (3E*N) and the context is written straight into [L, N, E] (ldc = E*N): no transposes.
///
/// With `queryPosition` p the result is only sequence position p of that output, [N, E] (what a
/// Gather of index p on axis 0 would take from it; the `select-rows` rewrite asks for this when
/// nothing else of the block's output is read). Keys and values are still projected for every
/// position, but the query, the attention rows and the output projection only for p: for ViT's
/// last block, 1/50 of that work.
public func selfAttention(_ x: Tensor, inWeight: Tensor, inBias: Tensor, outWeight: Tensor, outBias: Tensor,
                          mask: Tensor?, residual: Tensor?, heads: Int, scale: Float,
                          queryPosition: Int? = nil) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.float32], "attention input")
    guard x.rank == 3 else { throw KernelError("attention input must be [L, N, E], got \(x.shape)") }
    let length = x.shape[0], batch = x.shape[1], embed = x.shape[2]
    guard heads > 0, embed % heads == 0 else {
        throw KernelError("attention embedding \(embed) is not divisible by \(heads) heads")
    }
    guard inWeight.shape == [embed, 3 * embed], outWeight.shape == [embed, embed] else {
        throw KernelError("attention weights \(inWeight.shape) and \(outWeight.shape) do not match embedding \(embed)")
    }
    let headSize = embed / heads, groups = batch * heads
    var maskStride = 0
    if let mask {
        try kernelRequire(mask, [.float32], "attention mask")
        let trailing = Array(mask.shape.suffix(2))
        guard mask.rank >= 2, mask.rank <= 3, trailing == [length, length],
              mask.count == length * length || (mask.rank == 3 && mask.shape[0] == groups) else {
            throw KernelError("attention mask \(mask.shape) does not broadcast to [\(groups), \(length), \(length)]")
        }
        maskStride = mask.count == length * length ? 0 : length * length
    }
    let limit = Int(Int32.max)
    guard 3 * embed * batch <= limit, length * length <= limit else {
        throw KernelError("attention sizes L=\(length) N=\(batch) E=\(embed) exceed the 32-bit BLAS interface")
    }

    if let queryPosition {
        return try singleQueryAttention(x, position: queryPosition, inWeight: inWeight, inBias: inBias, outWeight: outWeight,
                                        outBias: outBias, mask: mask, maskStride: maskStride, residual: residual,
                                        heads: heads, scale: scale)
    }
    let packed = try linear(x, weight: inWeight, bias: inBias)           // [L, N, 3E]
    let context = try kernelOutput(.float32, [length, batch, embed])
    guard length > 0, groups > 0, let qkv = packed.floats.baseAddress,
          let contextBase = context.mutableFloats.baseAddress else {
        return try linear(context, weight: outWeight, bias: outBias, residual: residual)
    }
    let maskBase = mask?.floats.baseAddress
    let rowStride = 3 * embed * batch, contextStride = embed * batch

    Threading.useSingleThreadedBLAS()
    // Each group is 2 * L * L * hd multiply-adds. Tiny groups (the fusion graph: L = 8, 8 heads,
    // ~16K FLOP each) finish in less time than handing work to another thread takes (waking a
    // Dispatch worker measured ~30 us on the 2-vCPU build host), so a thread gets at least ~64K
    // multiply-adds' worth of groups.
    let groupWork = max(1, length * length * headSize)
    Threading.parallelFor(0..<groups, minimumChunk: max(1, (1 << 16) / groupWork)) { range in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: length * length)
        defer { scores.deallocate() }
        for group in range {
            let entry = group / heads, head = group % heads
            let query = qkv + entry * 3 * embed + head * headSize
            let key = query + embed, value = query + 2 * embed
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(length), Int32(length), Int32(headSize),
                        scale, query, Int32(rowStride), key, Int32(rowStride), 0, scores, Int32(length))
            if let maskBase {
                let maskRows = maskBase + group * maskStride
                for row in 0..<length {
                    FusedVector.accumulate(maskRows + row * length, into: scores + row * length, count: length)
                }
            }
            for row in 0..<length {
                VectorMath.softmaxRow(scores + row * length, scores + row * length, count: length)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(length), Int32(headSize), Int32(length),
                        1, scores, Int32(length), value, Int32(rowStride), 0,
                        contextBase + entry * embed + head * headSize, Int32(contextStride))
        }
    }

    return try linear(context, weight: outWeight, bias: outBias, residual: residual)
}

/// `selfAttention` for one query position: the [N, E] output at sequence position `position`.
private func singleQueryAttention(_ x: Tensor, position: Int, inWeight: Tensor, inBias: Tensor, outWeight: Tensor,
                                  outBias: Tensor, mask: Tensor?, maskStride: Int, residual: Tensor?,
                                  heads: Int, scale: Float) throws(KernelError) -> Tensor {
    let length = x.shape[0], batch = x.shape[1], embed = x.shape[2]
    guard position >= 0, position < length else {
        throw KernelError("attention query position \(position) is outside the sequence of \(length)")
    }
    let headSize = embed / heads
    // q (with k and v, which are not used, for these N rows only) for the selected position.
    let rows = try kernelOutput(.float32, [batch, embed])
    if let source = x.floats.baseAddress, let destination = rows.mutableFloats.baseAddress {
        destination.update(from: source + position * batch * embed, count: batch * embed)
    }
    let query = try linear(rows, weight: inWeight, bias: inBias)         // [N, 3E]
    // k and v for every position: columns [E, 3E) of the packed weight, read in place (ldb 3E).
    let keysValues = try kernelOutput(.float32, [length * batch, 2 * embed])
    let context = try kernelOutput(.float32, [batch, embed])
    guard let xBase = x.floats.baseAddress, let weightBase = inWeight.floats.baseAddress,
          let biasBase = inBias.floats.baseAddress, let kv = keysValues.mutableFloats.baseAddress,
          let q = query.floats.baseAddress, let contextBase = context.mutableFloats.baseAddress else {
        return try linear(context, weight: outWeight, bias: outBias, residual: residual)
    }
    for row in 0..<(length * batch) {
        (kv + row * 2 * embed).update(from: biasBase + embed, count: 2 * embed)
    }
    try BLAS.sgemm(transposeA: false, transposeB: false, m: length * batch, n: 2 * embed, k: embed, alpha: 1,
                   a: xBase, lda: embed, b: weightBase + embed, ldb: 3 * embed, beta: 1, c: kv, ldc: 2 * embed)
    let maskBase = mask?.floats.baseAddress
    var scores = [Float](repeating: 0, count: length)
    scores.withUnsafeMutableBufferPointer { buffer in
        guard let scoreBase = buffer.baseAddress else { return }
        for entry in 0..<batch {
            for head in 0..<heads {
                let queryRow = q + entry * 3 * embed + head * headSize
                for key in 0..<length {
                    let keyRow = kv + (key * batch + entry) * 2 * embed + head * headSize
                    var total: Float = 0
                    for index in 0..<headSize { total += queryRow[index] * keyRow[index] }
                    // Same order as the full path: scale * (q . k), then the mask.
                    scoreBase[key] = scale * total
                }
                if let maskBase {
                    FusedVector.accumulate(maskBase + (entry * heads + head) * maskStride + position * length,
                                           into: scoreBase, count: length)
                }
                VectorMath.softmaxRow(scoreBase, scoreBase, count: length)
                let out = contextBase + entry * embed + head * headSize
                for index in 0..<headSize { out[index] = 0 }
                for key in 0..<length {
                    let weight = scoreBase[key]
                    let valueRow = kv + (key * batch + entry) * 2 * embed + embed + head * headSize
                    for index in 0..<headSize { out[index] += weight * valueRow[index] }
                }
            }
        }
    }
    return try linear(context, weight: outWeight, bias: outBias, residual: residual)
}

extension ReferenceKernels {
    /// Self-attention in Double, following the graph step by step: x [L, N, E] as a flat array,
    /// weights as `selfAttention`, mask [L, L] (shared by every head) or nil. Returns [L, N, E].
    public static func selfAttention(_ x: [Float], length: Int, batch: Int, embed: Int,
                                     inWeight: [Float], inBias: [Float], outWeight: [Float], outBias: [Float],
                                     mask: [Float]?, heads: Int, scale: Float) -> [Float] {
        let rows = length * batch, headSize = embed / heads
        let packed = linear(x, rows: rows, k: embed, weight: inWeight, n: 3 * embed, bias: inBias, residual: nil, quickGELU: false)
        var context = [Float](repeating: 0, count: rows * embed)
        for entry in 0..<batch {
            for head in 0..<heads {
                func at(_ position: Int, _ part: Int, _ index: Int) -> Double {
                    Double(packed[(position * batch + entry) * 3 * embed + part * embed + head * headSize + index])
                }
                for row in 0..<length {
                    var scores = [Double](repeating: 0, count: length)
                    for column in 0..<length {
                        var total = 0.0
                        for index in 0..<headSize { total += at(row, 0, index) * Double(scale) * at(column, 1, index) }
                        scores[column] = total + Double(mask?[row * length + column] ?? 0)
                    }
                    let maximum = scores.max() ?? 0
                    let exps = scores.map { LibM.exp($0 - maximum) }
                    let sum = exps.reduce(0, +)
                    for index in 0..<headSize {
                        var total = 0.0
                        for column in 0..<length { total += exps[column] / sum * at(column, 2, index) }
                        context[(row * batch + entry) * embed + head * headSize + index] = Float(total)
                    }
                }
            }
        }
        return linear(context, rows: rows, k: embed, weight: outWeight, n: embed, bias: outBias, residual: nil, quickGELU: false)
    }
}
