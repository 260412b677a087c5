import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// C[m, n] (+)= A[m, k] * W for a weight W stored as `PackedStrips` (Sources/CKernels/PackedGEMM.c
/// has the layout and the kernel's design).
///
/// Threads (see Threading.swift): the strips are shared out among the engine's threads, a few
/// chunks per thread claimed as they come. Every output element is computed by one thread in one
/// pass over k, so the result is the same bit for bit for any thread count or timing.
public enum PackedGEMM {
    public enum Path: String, Sendable, CaseIterable {
        /// PackedGEMM.c's AVX-512F kernel (only after `ck_cpu_has_avx512f()`).
        case avx512
        /// PackedGEMM.c's AVX2+FMA kernel (only after `ck_cpu_has_avx2_fma()`): CPUs without
        /// AVX-512 where packing was asked for (`ACTION_CLIP_PACK_WEIGHTS=1`).
        case avx2
        /// PackedGEMM.c's plain C kernel.
        case portable
        /// PackedGEMMBF16.c's AVX512-BF16 kernel (only after `ck_cpu_has_avx512_bf16()`): A and W
        /// rounded to bfloat16, sums in float32 (`GEMMPrecision.bfloat16`).
        case bfloat16AVX512 = "bf16-avx512"
        /// PackedGEMMBF16.c's plain C version of the bfloat16 product: its reference, and what the
        /// bfloat16 precision runs on elsewhere (correct, but far too slow to be useful).
        case bfloat16Portable = "bf16-portable"

        /// Whether this path rounds its operands to bfloat16.
        public var isBFloat16: Bool {
            switch self {
            case .avx512, .avx2, .portable: return false
            case .bfloat16AVX512, .bfloat16Portable: return true
            }
        }
    }

    /// The kernel for this CPU and `precision`. Packed weights exist only where the loader chose
    /// them, which it does by default only on CPUs with AVX-512F (`WeightPacking`);
    /// `ACTION_CLIP_PACK_WEIGHTS=1` packs them on an AVX2 machine too, and the portable kernel
    /// keeps them usable anywhere.
    public static var path: Path {
        switch precision {
        case .float32: return CPUFeatures.avx512 ? .avx512 : (CPUFeatures.avx2 ? .avx2 : .portable)
        case .bfloat16: return CPUFeatures.avx512BFloat16 ? .bfloat16AVX512 : .bfloat16Portable
        }
    }

    /// The precision of products with packed weights, for the whole process (`--precision`).
    /// Set it before the first product: a run that changed it midway would mix the two.
    public static var precision: GEMMPrecision {
        get { precisionStore.value }
        set { precisionStore.value = newValue }
    }

    /// Multiply-adds per chunk below which a chunk is not split further across threads: a
    /// thread wake-up costs tens of µs, a strip of an 8-row product about 2 µs.
    static let minimumChunkWork = 1 << 18

    /// C = A * W, or C += A * W when `accumulate`; A is [rows, weights.rows] with row stride `lda`,
    /// C [rows, weights.columns] with row stride `ldc`.
    public static func multiply(rows: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedStrips,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, path: Path = path) {
        multiply(rows: rows, a: a, lda: lda, weights: weights, strips: 0..<weights.strips, c: c, ldc: ldc,
                 accumulate: accumulate, path: path)
    }

    /// As above for the columns of `strips` only: C's column 0 is the first column of `strips`.
    public static func multiply(rows: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedStrips, strips: Range<Int>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, path: Path = path) {
        guard rows > 0, !strips.isEmpty else { return }
        let k = weights.rows
        if path.isBFloat16 {
            multiplyBFloat16(rows: rows, a: a, lda: lda, weights: weights, strips: strips, c: c, ldc: ldc,
                             accumulate: accumulate, path: path)
            return
        }
        if path == .avx2, rows >= 6, k >= 1024, lda % 1024 == 0 {
            // A's rows a multiple of 4 KB apart (the image MLP's 3072-float rows, the text MLP's
            // 2048): the six rows an AVX2 tile reads fall in one set of the 8-way L1 cache, and the
            // 400 x 3072 x 768 product ran at 0.69x sgemm's speed (`bench --kernels`, Zen 3).
            multiplyCopyingRows(rows: rows, a: a, lda: lda, weights: weights, strips: strips, c: c, ldc: ldc,
                                accumulate: accumulate, path: path, blockBytes: 8 << 20)
            return
        }
        multiplyStrips(rows: rows, a: a, lda: lda, weights: weights, strips: strips, c: c, ldc: ldc,
                       accumulate: accumulate, path: path)
    }

    /// The product on a copy of A with 16 floats more per row, which costs a few percent of it.
    /// The copy holds about `blockBytes` of A at a time (the text graph at 77 tokens has 100 MB);
    /// that changes nothing in the results, since every row is computed on its own.
    static func multiplyCopyingRows(rows: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedStrips,
                                    strips: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                    path: Path, blockBytes: Int) {
        let k = weights.rows
        let pitch = k + 16
        let blockRows = min(rows, max(6, blockBytes / (pitch * MemoryLayout<Float>.stride)))
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * pitch)
        defer { copy.deallocate() }
        for first in stride(from: 0, to: rows, by: blockRows) {
            let count = min(blockRows, rows - first)
            Threading.parallelFor(0..<count, minimumChunk: max(1, (1 << 16) / max(k, 1))) { block in
                for row in block { (copy + row * pitch).update(from: a + (first + row) * lda, count: k) }
            }
            multiplyStrips(rows: count, a: UnsafePointer(copy), lda: pitch, weights: weights, strips: strips,
                           c: c + first * ldc, ldc: ldc, accumulate: accumulate, path: path)
        }
    }

    private static func multiplyStrips(rows: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedStrips,
                                       strips: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                       path: Path) {
        let k = weights.rows
        let stripWork = rows * k * PackedStrips.stripColumns
        let minimumChunk = max(1, minimumChunkWork / max(stripWork, 1))
        Threading.parallelFor(strips, minimumChunk: minimumChunk, chunksPerThread: 4) { chunk in
            let output = c + (chunk.lowerBound - strips.lowerBound) * PackedStrips.stripColumns
            switch path {
            case .avx512:
                ck_packed_gemm_avx512(rows, k, a, lda, weights.base, output, ldc, chunk.lowerBound, chunk.upperBound,
                                      accumulate ? 1 : 0)
            case .avx2:
                ck_packed_gemm_avx2(rows, k, a, lda, weights.base, output, ldc, chunk.lowerBound, chunk.upperBound,
                                    accumulate ? 1 : 0)
            case .portable:
                ck_packed_gemm_portable(rows, k, a, lda, weights.base, output, ldc, chunk.lowerBound, chunk.upperBound,
                                        accumulate ? 1 : 0)
            case .bfloat16AVX512, .bfloat16Portable:
                preconditionFailure("bfloat16 products go through multiplyBFloat16")
            }
        }
    }

    /// Bytes of bfloat16 A converted at a time: all of the image graph's A (at most 2.4 MB), the
    /// text graph's 77-token rows (up to 75 MB) in blocks, each block's strips then in parallel.
    static let bfloat16BlockBytes = 4 << 20

    /// The bfloat16 product (PackedGEMMBF16.c): A rounded to bfloat16 a block of rows at a time,
    /// then the strips shared out as in the float32 product, on the weights' bfloat16 strips
    /// (`PackedStrips.bfloat16Strips`, rounded on first use).
    static func multiplyBFloat16(rows: Int, a: UnsafePointer<Float>, lda: Int, weights: PackedStrips, strips: Range<Int>,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, path: Path) {
        let k = weights.rows
        let pitch = (k + 1) / 2 * 2
        let packed = weights.bfloat16Strips()
        let blockRows = min(rows, max(8, bfloat16BlockBytes / (pitch * MemoryLayout<UInt16>.stride)))
        let converted = UnsafeMutablePointer<UInt16>.allocate(capacity: blockRows * pitch)
        defer { converted.deallocate() }
        let vector = path == .bfloat16AVX512
        for first in stride(from: 0, to: rows, by: blockRows) {
            let count = min(blockRows, rows - first)
            Threading.parallelFor(0..<count, minimumChunk: max(1, (1 << 16) / max(k, 1))) { block in
                let source = a + (first + block.lowerBound) * lda
                let destination = converted + block.lowerBound * pitch
                if vector {
                    ck_bf16_convert_rows_avx512(block.count, k, source, lda, destination, pitch)
                } else {
                    ck_bf16_convert_rows_portable(block.count, k, source, lda, destination, pitch)
                }
            }
            let stripWork = count * k * PackedStrips.stripColumns
            let minimumChunk = max(1, minimumChunkWork / max(stripWork, 1))
            let output = c + first * ldc
            Threading.parallelFor(strips, minimumChunk: minimumChunk, chunksPerThread: 4) { chunk in
                let chunkOutput = output + (chunk.lowerBound - strips.lowerBound) * PackedStrips.stripColumns
                if vector {
                    ck_bf16_gemm_avx512(count, k, converted, pitch, packed, chunkOutput, ldc, chunk.lowerBound,
                                        chunk.upperBound, accumulate ? 1 : 0)
                } else {
                    ck_bf16_gemm_portable(count, k, converted, pitch, packed, chunkOutput, ldc, chunk.lowerBound,
                                          chunk.upperBound, accumulate ? 1 : 0)
                }
            }
        }
    }
}

/// The arithmetic of products with packed weights (`PackedGEMM.precision`).
public enum GEMMPrecision: String, Sendable, CaseIterable {
    /// float32 throughout: the default, and what the models were exported in.
    case float32
    /// Weights and activations rounded to bfloat16 (8 significant bits) entering the product,
    /// sums in float32 (PackedGEMMBF16.c). Opt-in: about twice the multiply-adds per instruction
    /// on CPUs with AVX512-BF16, at a measured cost in accuracy (docs/PERFORMANCE.md).
    case bfloat16 = "bf16"
}

/// `PackedGEMM.precision`'s storage.
private let precisionStore = LockedValue(GEMMPrecision.float32)
