// Skinny-M GEMM: C[m, n0:n1] += A[m, k] * W[k, n0:n1] for m of at most a few dozen rows.
//
// Why not sgemm: with m = 8, OpenBLAS packs the whole weight matrix into its panel format on every
// call, so each weight byte crosses the memory bus several times. The fusion transformer's weights
// (75 MB) do not fit the L3 cache, so that graph is memory-bound and the packing dominates.
// Here every weight element is loaded from memory exactly once and used for all (up to 8) rows
// while it sits in a register.
//
// Loop order (AVX2 version), chosen by measurement on a Zen 3 (see the commit message / report):
//  * k is split into blocks of KBLOCK rows of W. Within a block the columns are walked in strips
//    of 8 floats; for each strip an 8-row x 8-column tile of C lives in 8 ymm registers across
//    the block's KBLOCK rows (1 W load + 8 broadcasts + 8 FMAs per row of W).
//  * Walking a strip down *all* of k instead (no blocking) touches a new 4 KB page on every W row
//    and defeats the hardware prefetchers: measured 2-3x slower. Blocking keeps KBLOCK sequential
//    streams, and a software prefetch PREFETCH floats ahead on each of them (wrapping into the next
//    block) hides the DRAM latency.
//  * C tiles are reloaded once per block, an overhead of 1/KBLOCK; C (8 x n floats) stays in L1/L2.
//  * More than 8 rows: groups of 8 rows per block; only the first group misses in cache on W.

#include "ckernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_X86 1
#endif

enum { KBLOCK = 32, PREFETCH = 64, ROWS = 8 };

// MARK: - Portable

void ck_skinny_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                             float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1) {
    if (m <= 0 || k <= 0 || n1 <= n0) return;
    // Same blocking as the AVX2 version (W block stays in cache while every row uses it); the
    // innermost loop is a contiguous axpy the compiler can vectorise with the baseline ISA.
    for (ptrdiff_t p0 = 0; p0 < k; p0 += KBLOCK) {
        ptrdiff_t pend = p0 + KBLOCK < k ? p0 + KBLOCK : k;
        for (ptrdiff_t i = 0; i < m; i++) {
            float *restrict row = c + i * ldc;
            const float *arow = a + i * lda;
            for (ptrdiff_t p = p0; p < pend; p++) {
                const float scale = arow[p];
                const float *restrict wrow = w + p * ldw;
                for (ptrdiff_t j = n0; j < n1; j++) row[j] += scale * wrow[j];
            }
        }
    }
}

#ifdef CK_X86

// MARK: - AVX2 + FMA

#define CK_AVX2 __attribute__((target("avx2,fma")))
#define CK_INLINE static inline __attribute__((always_inline))

// Mask with the first `count` (0...8) lanes set, for the last partial strip of columns.
CK_AVX2 CK_INLINE __m256i ck_lane_mask(ptrdiff_t count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), lanes);
}

// One ROWS x 8 tile over `kb` rows of W: c[r, 0:8] += sum_p a[r, p] * w[p, 0:8] for r < rows.
// `rows` is a compile-time constant at every call site (the switch below), so the accumulators
// stay in registers and the row loops unroll.
#define CK_TILE_BODY(LOAD_W, LOAD_C, STORE_C)                                                      \
    __m256 acc[ROWS];                                                                            \
    for (int r = 0; r < rows; r++) acc[r] = LOAD_C(c + r * ldc);                                 \
    for (ptrdiff_t p = 0; p < kb; p++, w += ldw) {                                               \
        const __m256 x = LOAD_W(w);                                                              \
        for (int r = 0; r < rows; r++)                                                           \
            acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * lda + p), x, acc[r]);           \
    }                                                                                            \
    for (int r = 0; r < rows; r++) STORE_C(c + r * ldc, acc[r]);

CK_AVX2 CK_INLINE void ck_tile(const int rows, ptrdiff_t kb, const float *a, ptrdiff_t lda, const float *w,
                               ptrdiff_t ldw, float *c, ptrdiff_t ldc) {
#define CK_LOAD(pointer) _mm256_loadu_ps(pointer)
#define CK_STORE(pointer, value) _mm256_storeu_ps(pointer, value)
    CK_TILE_BODY(CK_LOAD, CK_LOAD, CK_STORE)
#undef CK_LOAD
#undef CK_STORE
}

CK_AVX2 CK_INLINE void ck_tile_masked(const int rows, ptrdiff_t kb, const float *a, ptrdiff_t lda, const float *w,
                                      ptrdiff_t ldw, float *c, ptrdiff_t ldc, __m256i mask) {
#define CK_LOAD(pointer) _mm256_maskload_ps(pointer, mask)
#define CK_STORE(pointer, value) _mm256_maskstore_ps(pointer, mask, value)
    CK_TILE_BODY(CK_LOAD, CK_LOAD, CK_STORE)
#undef CK_LOAD
#undef CK_STORE
}

// All full strips, then the partial one, of one block of `kb` W rows for `rows` rows of A.
// Prefetches the W lines PREFETCH floats ahead on each of the block's rows when `prefetch`.
CK_AVX2 CK_INLINE void ck_block(const int rows, ptrdiff_t kb, ptrdiff_t k0, ptrdiff_t k, const float *a,
                                ptrdiff_t lda, const float *w, ptrdiff_t ldw, float *c, ptrdiff_t ldc,
                                ptrdiff_t n0, ptrdiff_t n1, int prefetch) {
    const float *block = w + k0 * ldw;
    ptrdiff_t j = n0;
    for (; j + 8 <= n1; j += 8) {
        // One prefetch per row of the block per 16 columns (a 64-byte line). Past the end of the
        // range it moves to the start of the next block's rows, which come next.
        if (prefetch && ((j - n0) & 15) == 0) {
            ptrdiff_t column = j + PREFETCH;
            const float *target = block;
            ptrdiff_t count = kb;
            if (column >= n1) {
                column = n0 + (column - n1);
                target = block + kb * ldw;
                count = k - (k0 + kb) < KBLOCK ? k - (k0 + kb) : KBLOCK;
            }
            if (column < n1)
                for (ptrdiff_t p = 0; p < count; p++) _mm_prefetch((const char *)(target + p * ldw + column), _MM_HINT_T0);
        }
        ck_tile(rows, kb, a + k0, lda, block + j, ldw, c + j, ldc);
    }
    if (j < n1) ck_tile_masked(rows, kb, a + k0, lda, block + j, ldw, c + j, ldc, ck_lane_mask(n1 - j));
}

CK_AVX2 void ck_skinny_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                                 float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1) {
    if (m <= 0 || k <= 0 || n1 <= n0) return;
    for (ptrdiff_t k0 = 0; k0 < k; k0 += KBLOCK) {
        const ptrdiff_t kb = k - k0 < KBLOCK ? k - k0 : KBLOCK;
        for (ptrdiff_t i = 0; i < m; i += ROWS) {
            const float *arow = a + i * lda;
            float *crow = c + i * ldc;
            const int prefetch = i == 0;   // later row groups find the block in L1/L2
            // Constant row counts so each case compiles to its own register-resident tile.
            switch (m - i < ROWS ? m - i : ROWS) {
            case 1: ck_block(1, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 2: ck_block(2, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 3: ck_block(3, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 4: ck_block(4, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 5: ck_block(5, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 6: ck_block(6, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            case 7: ck_block(7, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            default: ck_block(8, kb, k0, k, arow, lda, w, ldw, crow, ldc, n0, n1, prefetch); break;
            }
        }
    }
}

int ck_cpu_has_avx2_fma(void) {
    // 0 = not yet checked, 1 = no, 2 = yes. A benign race: every thread computes the same value.
    static volatile int cached = 0;
    if (cached == 0) {
        __builtin_cpu_init();
        cached = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 2 : 1;
    }
    return cached == 2;
}

#else

void ck_skinny_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                         float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1) {
    // Not an x86 build: there is no AVX2 version; callers check ck_cpu_has_avx2_fma() first.
    ck_skinny_gemm_portable(m, k, a, lda, w, ldw, c, ldc, n0, n1);
}

int ck_cpu_has_avx2_fma(void) { return 0; }

#endif

void ck_skinny_gemm(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                    float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1) {
    if (ck_cpu_has_avx2_fma()) ck_skinny_gemm_avx2(m, k, a, lda, w, ldw, c, ldc, n0, n1);
    else ck_skinny_gemm_portable(m, k, a, lda, w, ldw, c, ldc, n0, n1);
}
