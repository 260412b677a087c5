import CBLAS
import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Threads (see Threading.swift): the two projections are `linear`, whose sgemm is split across
// our threads. The per-(batch, head) part is many small products (50x64x50 for ViT-B/32, about
// 8x64x8 for true-length text), run under `Threading.parallelFor` over batch x heads, each group
// on one thread, by `AttentionHeads` (a direct kernel for short sequences, else sgemm).

/// The per-head part of attention: softmax(scale * Q K^T + mask) V for one (batch entry, head).
///
/// Two implementations: single-threaded sgemm calls, or the direct kernel of
/// `Sources/CKernels/AttentionHead.c` (AVX2+FMA after a run-time check, else plain C), which has
/// no per-call packing or argument checks. `ACTION_CLIP_ATTENTION_HEADS` selects, read once per
/// process: unset or `auto`: direct up to `directMaximumLength` positions, sgemm above; `sgemm`
/// or `direct`: always that one (for A/B measurements).
public enum AttentionHeads {
    public enum Path: String, Sendable, CaseIterable {
        /// AttentionHead.c's AVX2+FMA functions (only after `ck_cpu_has_avx2_fma()`).
        case avx2
        /// AttentionHead.c's plain C functions.
        case portable
        /// Two single-threaded `cblas_sgemm` calls.
        case sgemm
    }

    /// Longest sequence the direct kernel takes by default. `action-clip bench --kernels` (1280
    /// text groups or ViT's 96, 2 threads, Zen 3), direct kernel's speed over sgemm's, two runs:
    /// 8 positions 1.40 and 1.41, 16: 1.09 and 1.11, 32: 0.80 and 0.90, 50: 1.01 and 0.88,
    /// 77: 0.85 and 0.86.
    public static let directMaximumLength = 16

    /// From this many keys on, the direct kernel copies the keys and values next to each other
    /// first (below it the copy costs more than it saves: at 8 positions the kernel was 1.9x
    /// sgemm's speed without the copy and 1.3x with it; at 50, 0.66x without and 0.96x with).
    static let copyMinimumKeys = 16

    /// The direct path for this CPU (`ACTION_CLIP_AVX2=0` forces the portable one, see `CPUFeatures`).
    public static var directPath: Path { CPUFeatures.avx2 ? .avx2 : .portable }

    /// `ACTION_CLIP_ATTENTION_HEADS`, read once.
    static let forced: Path? = {
        switch getenv("ACTION_CLIP_ATTENTION_HEADS").map({ String(cString: $0).lowercased() }) ?? "" {
        case "sgemm", "blas": return .sgemm
        case "direct": return directPath
        default: return nil
        }
    }()

    /// The path `selfAttention` takes for sequences of `length` positions.
    public static func path(length: Int) -> Path {
        if let forced { return forced }
        return length <= directMaximumLength ? directPath : .sgemm
    }

    /// Floats of scratch `group` needs: the scores and, for the direct kernel, contiguous copies
    /// of the keys and values.
    public static func scratchCount(rows: Int, keys: Int, headSize: Int) -> Int {
        rows * keys + 2 * keys * headSize
    }

    /// One group: `output[i] = softmax_j(scale * q_i . k_j + mask[i, j]) v_j` for `rows` queries
    /// over `keys` keys. Row i of q is `query + i * queryStride` (likewise key, value, output);
    /// `mask` is nil or `rows` x `keys` row-major; `scratch` holds `scratchCount(...)` floats.
    /// `.avx2` on a CPU without it runs `.portable`.
    public static func group(path: Path, rows: Int, keys: Int, headSize: Int,
                             query: UnsafePointer<Float>, queryStride: Int,
                             key: UnsafePointer<Float>, value: UnsafePointer<Float>, keyStride: Int,
                             scale: Float, mask: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
                             output: UnsafeMutablePointer<Float>, outputStride: Int) {
        let effective: Path = path == .avx2 && ck_cpu_has_avx2_fma() == 0 ? .portable : path
        let scores = scratch
        // The direct kernel reads every key and value row once per query row. In the packed
        // projection those rows are 3E*N floats apart (a page or more), so they are first copied
        // next to each other, as sgemm packs its operands: fewer TLB entries, whole cache lines.
        var keyRows = key, valueRows = value, rowStride = keyStride
        if effective != .sgemm, rows > 1, keys >= copyMinimumKeys {
            let keyCopy = scratch + rows * keys, valueCopy = keyCopy + keys * headSize
            for index in 0..<keys {
                (keyCopy + index * headSize).update(from: key + index * keyStride, count: headSize)
                (valueCopy + index * headSize).update(from: value + index * keyStride, count: headSize)
            }
            (keyRows, valueRows, rowStride) = (UnsafePointer(keyCopy), UnsafePointer(valueCopy), headSize)
        }
        switch effective {
        case .avx2:
            ck_attention_scores_avx2(rows, keys, headSize, query, queryStride, keyRows, rowStride, scale, scores, keys)
        case .portable:
            ck_attention_scores_portable(rows, keys, headSize, query, queryStride, keyRows, rowStride, scale, scores, keys)
        case .sgemm:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(headSize),
                        scale, query, Int32(queryStride), key, Int32(keyStride), 0, scores, Int32(keys))
        }
        if let mask {
            for row in 0..<rows { FusedVector.accumulate(mask + row * keys, into: scores + row * keys, count: keys) }
        }
        for row in 0..<rows { VectorMath.softmaxRow(scores + row * keys, scores + row * keys, count: keys) }
        switch effective {
        case .avx2:
            ck_attention_context_avx2(rows, keys, headSize, scores, keys, valueRows, rowStride, output, outputStride)
        case .portable:
            ck_attention_context_portable(rows, keys, headSize, scores, keys, valueRows, rowStride, output, outputStride)
        case .sgemm:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(headSize), Int32(keys),
                        1, scores, Int32(keys), value, Int32(keyStride), 0, output, Int32(outputStride))
        }
    }
}

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
/// graph's Reshape to [L, N*heads, hd], so Q, K and V are read in place with a row stride of 3E*N
/// and the context is written straight into [L, N, E] (row stride E*N): no transposes.
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
    let groups = batch * heads
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
    AttentionHeads.run(path: AttentionHeads.path(length: length), qkv: qkv, length: length, batch: batch, embed: embed,
                       heads: heads, scale: scale, mask: mask?.floats.baseAddress, maskStride: maskStride, context: contextBase)
    return try linear(context, weight: outWeight, bias: outBias, residual: residual)
}

extension AttentionHeads {
    /// Every (batch entry, head) group of a packed projection `qkv` [L, N, 3E] (columns q | k | v,
    /// head h at columns [h*hd, (h+1)*hd) of each) into `context` [L, N, E], on the engine's
    /// threads. `mask` is nil or [L, L] per group, `maskStride` floats apart (0: shared).
    public static func run(path: Path, qkv: UnsafePointer<Float>, length: Int, batch: Int, embed: Int, heads: Int,
                           scale: Float, mask maskBase: UnsafePointer<Float>?, maskStride: Int,
                           context contextBase: UnsafeMutablePointer<Float>) {
        let headSize = embed / max(heads, 1), groups = batch * heads
        let rowStride = 3 * embed * batch, contextStride = embed * batch
        guard length > 0, groups > 0 else { return }
        Threading.useSingleThreadedBLAS()
        // Each group is 2 * L * L * hd multiply-adds. Tiny groups (the fusion graph: L = 8, 8 heads,
        // ~16K FLOP each) finish in less time than handing work to another thread takes (waking a
        // Dispatch worker measured ~30 us on the 2-vCPU build host), so a thread gets at least ~64K
        // multiply-adds' worth of groups.
        let groupWork = max(1, length * length * headSize)
        Threading.parallelFor(0..<groups, minimumChunk: max(1, (1 << 16) / groupWork)) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(
                capacity: AttentionHeads.scratchCount(rows: length, keys: length, headSize: headSize))
            defer { scratch.deallocate() }
            for group in range {
                let entry = group / heads, head = group % heads
                let query = qkv + entry * 3 * embed + head * headSize
                AttentionHeads.group(path: path, rows: length, keys: length, headSize: headSize,
                                     query: query, queryStride: rowStride, key: query + embed, value: query + 2 * embed,
                                     keyStride: rowStride, scale: scale, mask: maskBase.map { $0 + group * maskStride },
                                     scratch: scratch, output: contextBase + entry * embed + head * headSize,
                                     outputStride: contextStride)
            }
        }
    }
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
    // k and v for every position: columns [E, 3E) of the in-projection weight, read in place at
    // its row pitch (3E, or more for `PaddedRows`), or as strips of `PackedStrips`.
    let keysValues = try kernelOutput(.float32, [length * batch, 2 * embed])
    let context = try kernelOutput(.float32, [batch, embed])
    guard let xBase = x.floats.baseAddress,
          let biasBase = inBias.floats.baseAddress, let kv = keysValues.mutableFloats.baseAddress,
          let q = query.floats.baseAddress, let contextBase = context.mutableFloats.baseAddress else {
        return try linear(context, weight: outWeight, bias: outBias, residual: residual)
    }
    for row in 0..<(length * batch) {
        (kv + row * 2 * embed).update(from: biasBase + embed, count: 2 * embed)
    }
    let stripColumns = PackedStrips.stripColumns
    if let packed = inWeight.floatPackedStrips(), embed % stripColumns == 0 {
        // Packed weight (`PackedStrips`): columns [E, 3E) are whole strips.
        PackedGEMM.multiply(rows: length * batch, a: xBase, lda: embed, weights: packed,
                            strips: (embed / stripColumns)..<(3 * embed / stripColumns), c: kv, ldc: 2 * embed, accumulate: true)
    } else if let weightRows = inWeight.floatMatrixRows() {
        try BLAS.sgemm(transposeA: false, transposeB: false, m: length * batch, n: 2 * embed, k: embed, alpha: 1,
                       a: xBase, lda: embed, b: weightRows.base + embed, ldb: weightRows.rowPitch, beta: 1, c: kv, ldc: 2 * embed)
    }
    let maskBase = mask?.floats.baseAddress
    // One query row per group: nothing for sgemm to reuse, so the direct kernel at any length
    // (unless ACTION_CLIP_ATTENTION_HEADS forces a path).
    let path = AttentionHeads.forced ?? AttentionHeads.directPath
    var scores = [Float](repeating: 0, count: AttentionHeads.scratchCount(rows: 1, keys: length, headSize: headSize))
    scores.withUnsafeMutableBufferPointer { buffer in
        guard let scoreBase = buffer.baseAddress else { return }
        for entry in 0..<batch {
            for head in 0..<heads {
                // One query row against every key: keys and values of this entry are batch rows apart.
                let keyRow = kv + entry * 2 * embed + head * headSize
                AttentionHeads.group(path: path, rows: 1, keys: length, headSize: headSize,
                                     query: q + entry * 3 * embed + head * headSize, queryStride: 3 * embed,
                                     key: keyRow, value: keyRow + embed, keyStride: batch * 2 * embed, scale: scale,
                                     mask: maskBase.map { $0 + (entry * heads + head) * maskStride + position * length },
                                     scratch: scoreBase, output: contextBase + entry * embed + head * headSize,
                                     outputStride: embed)
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
