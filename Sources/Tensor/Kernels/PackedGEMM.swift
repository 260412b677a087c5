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
        /// PackedGEMM.c's plain C kernel.
        case portable
    }

    /// The kernel for this CPU. Packed weights exist only where the loader chose them, which it
    /// does by default only on CPUs with AVX-512F (`WeightPacking`); the portable kernel keeps
    /// them usable anywhere (e.g. `ACTION_CLIP_PACK_WEIGHTS=1` on an AVX2 machine, or tests).
    public static var path: Path { CPUFeatures.avx512 ? .avx512 : .portable }

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
        let stripWork = rows * k * PackedStrips.stripColumns
        let minimumChunk = max(1, minimumChunkWork / max(stripWork, 1))
        Threading.parallelFor(strips, minimumChunk: minimumChunk, chunksPerThread: 4) { chunk in
            let output = c + (chunk.lowerBound - strips.lowerBound) * PackedStrips.stripColumns
            switch path {
            case .avx512:
                ck_packed_gemm_avx512(rows, k, a, lda, weights.base, output, ldc, chunk.lowerBound, chunk.upperBound,
                                      accumulate ? 1 : 0)
            case .portable:
                ck_packed_gemm_portable(rows, k, a, lda, weights.base, output, ldc, chunk.lowerBound, chunk.upperBound,
                                        accumulate ? 1 : 0)
            }
        }
    }
}
