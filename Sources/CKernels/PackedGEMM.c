// GEMM on weights packed once, at load, into strips of 32 columns: C[m, n] (+)= A[m, k] * W[k, n].
//
// Layout ("packed strips"): W [k, n] row-major, n a multiple of 32, is stored as n / 32 strips;
// strip s is the k x 32 block W[0..k, 32s..32s+32], row after row, k * 32 floats back to back.
// So a strip is one sequential stream, which is what both uses of these weights want:
//  * Few rows (the fusion transformer's 8 tokens): the product is bound by reading the weights
//    from memory. Row-major W read 16 rows x 48 bytes at a time (SkinnyGEMM.c) reached 12 GB/s on
//    one Zen 4 core; the same kernel below on a strip reached 19 GB/s from DRAM and 29 GB/s from
//    L3 (C harness, the fusion graph's 24 weights, 2026-12-06), the hardware prefetcher following
//    one stream per strip.
//  * Many rows (the image and text transformers, 400 to 12320 rows): each strip (k x 32 floats,
//    96 KB for k = 768, 384 KB for k = 3072) stays in L2 while every 8-row tile of A passes over
//    it, so nothing is packed per call. OpenBLAS repacks its B operand on every call and reached
//    96-103 GFLOP/s per core on the image graph's shapes; this kernel 110-115 of the core's
//    117 GFLOP/s FMA peak (same harness, one thread).
//
// The tile: 8 rows x 32 columns, 16 zmm accumulators. Per row p of the strip: two 16-float loads
// of W and, for each of the 8 rows, one broadcast of A[r, p] (read where A is, no packing of A:
// 8 sequential streams) and two FMAs. 16 independent FMA chains cover the FMA latency.
// Each C element is summed over p in order 0..k-1 by one tile, whatever the thread split (threads
// take whole strips), so results do not depend on the thread count or timing.

#include "ckernels.h"
#include "PackedTile.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_X86_64 1
#endif

enum { STRIP = CK_PACKED_STRIP_COLUMNS, TILE = 8 };

// Packing and the cache comparison walk the strips in order, so the row-major side is read 128
// bytes per row at a stride of a whole row. That costs load time: a C harness compared 377 MB in
// 60-65 ms this way against 27 ms for a contiguous compare; walking blocks of 4 to 64 rows (each
// source row read in order across the strips, one vectorised difference per block) took 62-75 ms,
// so the plain loops stayed.
// `w` may be the model file's raw_data at any alignment: it is addressed in bytes and only read by memcpy.
void ck_pack_strips(ptrdiff_t k, ptrdiff_t n, const void *w, ptrdiff_t ldw, float *packed) {
    const char *bytes = (const char *)w;
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (ptrdiff_t p = 0; p < k; p++)
            memcpy(packed + (s * k + p) * STRIP, bytes + (p * ldw + s * STRIP) * (ptrdiff_t)sizeof(float),
                   STRIP * sizeof(float));
}

void ck_unpack_strips(ptrdiff_t k, ptrdiff_t n, const float *packed, float *w) {
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (ptrdiff_t p = 0; p < k; p++)
            memcpy(w + p * n + s * STRIP, packed + (s * k + p) * STRIP, STRIP * sizeof(float));
}

int ck_packed_equal(ptrdiff_t k, ptrdiff_t n, const void *row_major, const void *packed) {
    const char *rows = (const char *)row_major, *strips = (const char *)packed;
    const ptrdiff_t chunk = STRIP * (ptrdiff_t)sizeof(float);
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (ptrdiff_t p = 0; p < k; p++)
            if (memcmp(strips + (s * k + p) * chunk, rows + (p * n + s * STRIP) * (ptrdiff_t)sizeof(float), chunk) != 0)
                return 0;
    return 1;
}

// The transposed case: a Conv weight [M, C, kH, kW] is read by the patch embedding as W^T, the
// [C·kH·kW, M] matrix, so the loader stores W^T in strips (`WeightPacking`). Here `w` is the
// row-major [n, k] weight itself (W^T is k x n); strip s row p is w[32s..32s+32, p]. `w` is often
// the model file's raw_data at an offset that is not a multiple of 4 (the reason the weight cache
// exists), so its values are read with memcpy, as unaligned loads.
void ck_pack_strips_transposed(ptrdiff_t k, ptrdiff_t n, const void *w, float *packed) {
    const char *bytes = (const char *)w;
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (int j = 0; j < STRIP; j++) {
            const char *row = bytes + (s * STRIP + j) * k * (ptrdiff_t)sizeof(float);
            for (ptrdiff_t p = 0; p < k; p++)
                memcpy(packed + (s * k + p) * STRIP + j, row + p * (ptrdiff_t)sizeof(float), sizeof(float));
        }
}

void ck_unpack_strips_transposed(ptrdiff_t k, ptrdiff_t n, const float *packed, float *w) {
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (int j = 0; j < STRIP; j++) {
            float *row = w + (s * STRIP + j) * k;
            for (ptrdiff_t p = 0; p < k; p++) row[p] = packed[(s * k + p) * STRIP + j];
        }
}

int ck_packed_equal_transposed(ptrdiff_t k, ptrdiff_t n, const void *row_major, const void *packed) {
    // Bits, not values: a cached -0.0 for 0.0, or another NaN payload, is a different weight file.
    // The row-major side may be unaligned (see above); the strips are the cache's, 64-byte aligned.
    const char *rows = (const char *)row_major;
    const uint32_t *strips = (const uint32_t *)packed;
    for (ptrdiff_t s = 0; s < n / STRIP; s++)
        for (int j = 0; j < STRIP; j++) {
            const char *row = rows + (s * STRIP + j) * k * (ptrdiff_t)sizeof(uint32_t);
            for (ptrdiff_t p = 0; p < k; p++) {
                uint32_t value;
                memcpy(&value, row + p * (ptrdiff_t)sizeof(uint32_t), sizeof value);
                if (strips[(s * k + p) * STRIP + j] != value) return 0;
            }
        }
    return 1;
}

// MARK: - Portable (reference, and the path on CPUs without AVX2)

void ck_packed_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                             float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    for (ptrdiff_t s = strip0; s < strip1; s++) {
        const float *strip = packed + s * k * STRIP;
        for (ptrdiff_t i = 0; i < m; i++) {
            // Same order of operations as the vector kernel: one running sum per element, p ascending.
            float sum[STRIP];
            float *out = c + i * ldc + (s - strip0) * STRIP;
            for (int j = 0; j < STRIP; j++) sum[j] = 0.0f;
            for (ptrdiff_t p = 0; p < k; p++) {
                const float x = a[i * lda + p];
                for (int j = 0; j < STRIP; j++) sum[j] += x * strip[p * STRIP + j];
            }
            for (int j = 0; j < STRIP; j++) out[j] = accumulate ? out[j] + sum[j] : sum[j];
        }
    }
}

#ifdef CK_X86_64

#define CK_AVX512 __attribute__((target("avx512f")))

// One tile of `rows` (1...8, a constant after inlining) rows by one strip.
CK_AVX512 static inline __attribute__((always_inline)) void
ck_packed_tile(const int rows, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c, ptrdiff_t ldc,
               int accumulate) {
    __m512 low[TILE], high[TILE];
    for (int r = 0; r < TILE; r++) low[r] = high[r] = _mm512_setzero_ps();
    const float *row = strip;
    for (ptrdiff_t p = 0; p < k; p++, row += STRIP) {
        const __m512 w0 = _mm512_loadu_ps(row), w1 = _mm512_loadu_ps(row + 16);
        for (int r = 0; r < TILE; r++) {
            if (r >= rows) break;
            const __m512 x = _mm512_set1_ps(a[r * lda + p]);
            low[r] = _mm512_fmadd_ps(x, w0, low[r]);
            high[r] = _mm512_fmadd_ps(x, w1, high[r]);
        }
    }
    ck_store_tile(rows, low, high, c, ldc, accumulate);
}

CK_AVX512 static void ck_packed_tile8(ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c, ptrdiff_t ldc, int accumulate) {
    ck_packed_tile(8, k, a, lda, strip, c, ldc, accumulate);
}
CK_AVX512 static void ck_packed_tile4(ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c, ptrdiff_t ldc, int accumulate) {
    ck_packed_tile(4, k, a, lda, strip, c, ldc, accumulate);
}
CK_AVX512 static void ck_packed_tile2(ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c, ptrdiff_t ldc, int accumulate) {
    ck_packed_tile(2, k, a, lda, strip, c, ldc, accumulate);
}
CK_AVX512 static void ck_packed_tile1(ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c, ptrdiff_t ldc, int accumulate) {
    ck_packed_tile(1, k, a, lda, strip, c, ldc, accumulate);
}

// Rows of A per pass over the strips when A is larger than this many bytes. Every strip reads all
// of A's rows once; with 12320 rows (the text graph at 77 tokens, 25 MB of A) that streamed A
// from memory once per strip and ran at 0.8-0.9x sgemm's speed. In blocks of about
// A_BLOCK_BYTES the block stays in the L3 cache while the thread's strips pass over it. Smaller
// A (the image graph's 1.2 to 4.9 MB) is not blocked: there each strip stays in L2 for all rows.
#define A_LARGE_BYTES (8 << 20)
#define A_BLOCK_BYTES (2 << 20)

CK_AVX512 static void ck_packed_rows(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c,
                                     ptrdiff_t ldc, int accumulate) {
    ptrdiff_t i = 0;
    for (; i + 8 <= m; i += 8) ck_packed_tile8(k, a + i * lda, lda, strip, c + i * ldc, ldc, accumulate);
    // The last m % 8 rows as 4 + 2 + 1: fewer FMA chains, but at most 7 rows per strip.
    if (i + 4 <= m) { ck_packed_tile4(k, a + i * lda, lda, strip, c + i * ldc, ldc, accumulate); i += 4; }
    if (i + 2 <= m) { ck_packed_tile2(k, a + i * lda, lda, strip, c + i * ldc, ldc, accumulate); i += 2; }
    if (i < m) ck_packed_tile1(k, a + i * lda, lda, strip, c + i * ldc, ldc, accumulate);
}

// One kernel's rows-by-one-strip function, for the row-block walk both kernels share. `scratch`
// (rows x 32 floats, or NULL) is for kernels that keep running sums between blocks of k.
typedef void (*ck_packed_rows_fn)(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c,
                                  ptrdiff_t ldc, int accumulate, float *scratch);

static ptrdiff_t ck_packed_row_block(ptrdiff_t m, ptrdiff_t k) {
    if ((double)m * (double)k * sizeof(float) <= A_LARGE_BYTES) return m;
    const ptrdiff_t block = A_BLOCK_BYTES / ((ptrdiff_t)sizeof(float) * (k > 0 ? k : 1)) / 8 * 8;
    return block < 64 ? 64 : block;
}

static void ck_packed_walk(ck_packed_rows_fn rows_of_strip, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda,
                           const float *packed, float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1,
                           int accumulate, float *scratch) {
    const ptrdiff_t block = ck_packed_row_block(m, k);
    for (ptrdiff_t i0 = 0; i0 < m; i0 += block) {
        const ptrdiff_t rows = m - i0 < block ? m - i0 : block;
        for (ptrdiff_t s = strip0; s < strip1; s++)
            rows_of_strip(rows, k, a + i0 * lda, lda, packed + s * k * STRIP, c + i0 * ldc + (s - strip0) * STRIP, ldc,
                          accumulate, scratch);
    }
}

static void ck_packed_rows_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip, float *c,
                                  ptrdiff_t ldc, int accumulate, float *scratch) {
    (void)scratch;
    ck_packed_rows(m, k, a, lda, strip, c, ldc, accumulate);
}

void ck_packed_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                           float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    ck_packed_walk(ck_packed_rows_avx512, m, k, a, lda, packed, c, ldc, strip0, strip1, accumulate, NULL);
}

// MARK: - AVX2 + FMA (CPUs without AVX-512; packing on them is opt-in, see WeightPacking.swift)
//
// Sixteen ymm registers do not hold an 8 x 32 tile, so the tile is 6 rows x 16 columns, half a
// strip: 12 accumulators, two registers of W, one broadcast of A (the 6 x 16 shape of BLIS's
// Haswell kernel). Per row p: two loads of W, six broadcasts, twelve FMAs.
// k is walked in blocks of AVX2_KBLOCK rows, both halves and every row tile of a block before the
// next, with the running sums in a scratch buffer between blocks (a store and a load are exact,
// so each element is the same chain of FMAs as in one pass, summed from zero; C is added at the
// end when accumulating, as in the AVX-512 kernel; starting the chains from C, the bias and
// residual, cost accuracy: image features 6.0e-6 from ONNX Runtime instead of 1.7e-6 relative).
// Measured on a 2-core Zen 3 VM (2026-12-07; its FMA peak 88 GFLOP/s per core, OpenBLAS sgemm
// 80-82): one thread, 400 x 3072 x 768 (the image MLP's projection) at 1.17-1.30x sgemm's time
// unblocked or blocked, 1.06-1.13x with A's rows padded (they are 12 KB apart, so a tile's six
// rows share one L1 set; PackedGEMM.swift copies such an A), the k = 768 products at 1.03-1.13x.
// With A also packed in 6-row panels (a harness, not built here) 0.99-1.03x. Two threads taking
// strips as they come, `bench --kernels`: x0.94-1.15 against sgemm by run. So on that machine it
// is not faster than OpenBLAS, unlike the AVX-512 kernel on Zen 4.

#define CK_AVX2_FMA __attribute__((target("avx2,fma")))
enum { AVX2_TILE = 6, HALF = 16, AVX2_KBLOCK = 768 };

// One tile of `rows` (1...6, a constant after inlining) rows by half a strip, over kb rows of k:
// out = (start, or zero when NULL) + A * W (+ addend when not NULL). Strides in floats.
CK_AVX2_FMA static inline __attribute__((always_inline)) void
ck_packed_half_tile(const int rows, ptrdiff_t kb, const float *a, ptrdiff_t lda, const float *half,
                    const float *start, ptrdiff_t ld_start, const float *addend, ptrdiff_t ld_addend,
                    float *out, ptrdiff_t ld_out) {
    __m256 low[AVX2_TILE], high[AVX2_TILE];
    for (int r = 0; r < AVX2_TILE; r++) {
        if (r >= rows) break;
        low[r] = start ? _mm256_loadu_ps(start + r * ld_start) : _mm256_setzero_ps();
        high[r] = start ? _mm256_loadu_ps(start + r * ld_start + 8) : _mm256_setzero_ps();
    }
    const float *row = half;
    for (ptrdiff_t p = 0; p < kb; p++, row += STRIP) {
        const __m256 w0 = _mm256_loadu_ps(row), w1 = _mm256_loadu_ps(row + 8);
        for (int r = 0; r < AVX2_TILE; r++) {
            if (r >= rows) break;
            const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
            low[r] = _mm256_fmadd_ps(x, w0, low[r]);
            high[r] = _mm256_fmadd_ps(x, w1, high[r]);
        }
    }
    for (int r = 0; r < AVX2_TILE; r++) {
        if (r >= rows) break;
        if (addend) {
            low[r] = _mm256_add_ps(low[r], _mm256_loadu_ps(addend + r * ld_addend));
            high[r] = _mm256_add_ps(high[r], _mm256_loadu_ps(addend + r * ld_addend + 8));
        }
        _mm256_storeu_ps(out + r * ld_out, low[r]);
        _mm256_storeu_ps(out + r * ld_out + 8, high[r]);
    }
}

#define CK_HALF_TILE(n)                                                                                           \
    CK_AVX2_FMA static void ck_packed_half_tile##n(ptrdiff_t kb, const float *a, ptrdiff_t lda, const float *half, \
                                                   const float *start, ptrdiff_t ld_start, const float *addend,   \
                                                   ptrdiff_t ld_addend, float *out, ptrdiff_t ld_out) {           \
        ck_packed_half_tile(n, kb, a, lda, half, start, ld_start, addend, ld_addend, out, ld_out);                \
    }
CK_HALF_TILE(6)
CK_HALF_TILE(4)
CK_HALF_TILE(2)
CK_HALF_TILE(1)

// Rows 0..m of one strip. Without scratch (k within one block, or no buffer could be had) each
// tile runs over all of k in one pass.
CK_AVX2_FMA static void ck_packed_rows_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *strip,
                                            float *c, ptrdiff_t ldc, int accumulate, float *scratch) {
    const ptrdiff_t kblock = scratch && k > AVX2_KBLOCK ? AVX2_KBLOCK : (k > 0 ? k : 1);
    for (ptrdiff_t k0 = 0; k0 == 0 || k0 < k; k0 += kblock) {  // k = 0 still writes C
        const ptrdiff_t kb = k - k0 < kblock ? k - k0 : kblock;
        const int first = k0 == 0, last = k0 + kb >= k;
        for (int h = 0; h < 2; h++) {
            const ptrdiff_t column = h * HALF;
            const float *half = strip + k0 * STRIP + column;
            const float *x = a + k0;
            for (ptrdiff_t i = 0; i < m;) {
                const float *start = first ? NULL : scratch + i * STRIP + column;
                const float *addend = last && accumulate ? c + i * ldc + column : NULL;
                float *out = last ? c + i * ldc + column : scratch + i * STRIP + column;
                const ptrdiff_t ld_out = last ? ldc : STRIP;
                const float *rows = x + i * lda;
                // The last m % 6 rows as 4 + 2 + 1, as in the AVX-512 kernel.
                if (i + 6 <= m) { ck_packed_half_tile6(kb, rows, lda, half, start, STRIP, addend, ldc, out, ld_out); i += 6; }
                else if (i + 4 <= m) { ck_packed_half_tile4(kb, rows, lda, half, start, STRIP, addend, ldc, out, ld_out); i += 4; }
                else if (i + 2 <= m) { ck_packed_half_tile2(kb, rows, lda, half, start, STRIP, addend, ldc, out, ld_out); i += 2; }
                else { ck_packed_half_tile1(kb, rows, lda, half, start, STRIP, addend, ldc, out, ld_out); i += 1; }
            }
        }
    }
}

void ck_packed_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    // Running sums of one row block by one strip; a failed allocation only means one pass per tile.
    float *scratch = k > AVX2_KBLOCK ? malloc((size_t)ck_packed_row_block(m, k) * STRIP * sizeof(float)) : NULL;
    ck_packed_walk(ck_packed_rows_avx2, m, k, a, lda, packed, c, ldc, strip0, strip1, accumulate, scratch);
    free(scratch);
}

int ck_cpu_has_avx512f(void) {
    // 0 = not yet checked, 1 = no, 2 = yes. A benign race: every thread computes the same value.
    static volatile int cached = 0;
    if (cached == 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 2 : 1;
    }
    return cached == 2;
}

#else

void ck_packed_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                           float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    // Not an x86-64 build: callers check ck_cpu_has_avx512f() first; same result with plain loops.
    ck_packed_gemm_portable(m, k, a, lda, packed, c, ldc, strip0, strip1, accumulate);
}

void ck_packed_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    ck_packed_gemm_portable(m, k, a, lda, packed, c, ldc, strip0, strip1, accumulate);
}

int ck_cpu_has_avx512f(void) { return 0; }

#endif
