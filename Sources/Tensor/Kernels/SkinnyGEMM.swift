import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Matrix products with few rows (M in `rowRange`) against a weight used in place, in place of
/// sgemm: `C[rows, n] += A[rows, k] * W[k, n]`.
///
/// Why: with M = 8 (the fusion transformer runs its 8 frame tokens through 6 layers of width 512)
/// OpenBLAS packs the whole weight into its panel format on every call, so each weight byte
/// crosses the memory bus about three times, and the graph's 75 MB of weights do not fit the L3
/// cache. The C kernel (Sources/CKernels/SkinnyGEMM.c) reads each weight element from memory once.
///
/// Threading: the work is split over `Threading.threadCount` threads, by rows of W on the
/// CKernels worker pool for the AVX2 path, by columns with `Threading.parallelFor` for the
/// portable one. This call replaces the sgemm, so OpenBLAS is idle while it runs and the policy
/// of Threading.swift (never two thread teams at once) holds.
///
/// `ACTION_CLIP_SKINNY_GEMM` selects the implementation, read once per process:
/// unset or `1`/`auto`: AVX2+FMA when the CPU has it, else portable C; `portable`: the plain C
/// version; `0`/`off`: never, every product goes to OpenBLAS (for A/B measurements).
public enum SkinnyGEMM {
    /// One implementation of the kernel.
    public enum Path: String, Sendable, CaseIterable {
        /// `__attribute__((target("avx2,fma")))` intrinsics, used only after a run-time CPU check.
        case avx2
        /// Plain C, any CPU.
        case portable
    }

    /// Row counts routed to the skinny kernel; others go to sgemm. Measured against OpenBLAS
    /// 0.3.21 (Haswell kernels, 2 threads, Zen 3 VM; weights out of cache; 512x2048, 2048x512 and
    /// 512x1536, two rounds on a busy host, sgemm time / skinny time):
    ///  * M = 1: 0.5-0.9 (sgemm does a matrix-vector product without packing, and the kernel's
    ///    8-row panels waste 7 of 8 lanes), so sgemm keeps it;
    ///  * M = 4, 8, 12: 1.0-4.9, mostly 1.3-1.9: the kernel wins;
    ///  * M = 16: 0.5-1.5, mostly below 1 (OpenBLAS's sweet spot; the kernel's cost is two panels,
    ///    the same as for 12 rows);
    ///  * M >= 20: mixed, and below 1 from 32 on. The graphs have M = 8 (fusion) or M >= 400.
    public static let rowRange = 2...12

    /// Largest row count routed to the skinny kernel (the upper end of `rowRange`).
    public static var maximumRows: Int { rowRange.upperBound }

    /// Whether this CPU can run `Path.avx2`.
    public static var cpuHasAVX2FMA: Bool { ck_cpu_has_avx2_fma() != 0 }

    /// The implementation `linear` and `matmul` use for small M, or nil when the kernel is off
    /// (see `ACTION_CLIP_SKINNY_GEMM` above).
    public static let selectedPath: Path? = {
        let value = getenv("ACTION_CLIP_SKINNY_GEMM").map { String(cString: $0).lowercased() } ?? ""
        switch value {
        case "0", "off", "false", "no": return nil
        case "portable": return .portable
        default: return ck_cpu_has_avx2_fma() != 0 ? .avx2 : .portable
        }
    }()

    /// The path to use for a product of `rows` rows, or nil for sgemm.
    @inline(__always)
    static func path(rows: Int, k: Int, n: Int) -> Path? {
        guard rowRange.contains(rows), k >= 1, n >= 1 else { return nil }
        return selectedPath
    }

    /// `c[i, j] += sum_p a[i, p] * w[p, j]` for a [rows, k] (row stride k), w [k, n] with rows
    /// `wRowPitch` floats apart (n when contiguous; more for `PaddedRows`) and c [rows, n]
    /// contiguous, on the engine's threads. `path` nil means `selectedPath` (or `.portable` if the
    /// kernel is switched off). Asking for `.avx2` on a CPU without it falls back to `.portable`
    /// rather than crashing.
    public static func accumulate(rows: Int, k: Int, n: Int, a: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                  wRowPitch: Int? = nil, c: UnsafeMutablePointer<Float>, path: Path? = nil) {
        guard rows > 0, k > 0, n > 0 else { return }
        let pitch = max(wRowPitch ?? n, n)
        let chosen = path ?? selectedPath ?? .portable
        if chosen == .avx2, ck_cpu_has_avx2_fma() != 0 {
            accumulateAVX2(rows: rows, k: k, n: n, a: a, w: w, wRowPitch: pitch, c: c)
        } else {
            accumulatePortable(rows: rows, k: k, n: n, a: a, w: w, wRowPitch: pitch, c: c)
        }
    }

    /// A thread is worth waking only for about 32K weights (~0.1 MB) or more.
    static let weightsPerThread = 1 << 15

    /// AVX2: the threads split k, so each streams contiguous slices of W, each slice into its own
    /// partial product, and the partials are then summed into c in slice order (the same rounding
    /// on every run, whichever thread took which slice). Splitting n instead gives each thread
    /// strided row segments of W and measured ~10% slower on the fusion graph. The threads are the
    /// C worker pool's, not Dispatch's (see WorkerPool.c: waking a Dispatch worker per product
    /// cost ~2 ms over the fusion graph's 24 products).
    static func accumulateAVX2(rows: Int, k: Int, n: Int, a: UnsafePointer<Float>, w: UnsafePointer<Float>,
                               wRowPitch: Int, c: UnsafeMutablePointer<Float>) {
        // Slices are at least one 16-row block of the kernel.
        let threads = max(1, min(Threading.threadCount, k * n / weightsPerThread, k / 16))
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: ck_skinny_workspace_floats(rows, n, Int32(threads)))
        defer { partials.deallocate() }
        ck_skinny_gemm_avx2(rows, k, a, k, w, wRowPitch, n, c, n, Int32(threads), partials)
    }

    /// Portable C: the threads take contiguous column ranges in strips of 16 (one 64-byte line),
    /// so no two share a line of W or of C, and accumulate straight into c.
    static func accumulatePortable(rows: Int, k: Int, n: Int, a: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                   wRowPitch: Int, c: UnsafeMutablePointer<Float>) {
        let strip = 16
        let strips = (n + strip - 1) / strip
        let minimumStrips = max(1, weightsPerThread / (strip * k))
        Threading.parallelFor(0..<strips, minimumChunk: minimumStrips) { range in
            ck_skinny_gemm_portable(rows, k, a, k, w, wRowPitch, c, n, range.lowerBound * strip, min(n, range.upperBound * strip))
        }
    }
}
