#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Skinny-M matrix product for linear layers with few rows (the fusion transformer's 8 tokens):
///
///     C[i, j] += sum_p A[i, p] * W[p, j]   for i in [0, m), j in [n0, n1), p in [0, k)
///
/// A is [m, k] with row stride lda, W is [k, ldw] row-major and read in place (no packing, any
/// alignment), C is [m, ldc]. Only columns [n0, n1) of C are touched, so threads can take disjoint
/// column ranges of the same product. C must already hold the addend (bias, residual or zeros).
/// Requires 0 <= n0 <= n1 <= ldw and n1 <= ldc; m, k >= 0.
///
/// `ck_skinny_gemm` picks the AVX2+FMA version when the CPU has both (checked once) and the
/// portable one otherwise; the two named versions exist so tests and benchmarks can call each.
void ck_skinny_gemm(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                    float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1);

/// Plain C version (any CPU).
void ck_skinny_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                             float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1);

/// AVX2+FMA version. Only call it when `ck_cpu_has_avx2_fma()` returns 1 (it would raise SIGILL otherwise).
void ck_skinny_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                         float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1);

/// 1 when this CPU supports AVX2 and FMA (and the build targets x86-64), else 0. Cached after the first call.
int ck_cpu_has_avx2_fma(void);

#ifdef __cplusplus
}
#endif

#endif
