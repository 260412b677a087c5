#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Skinny-M matrix products for linear layers with few rows (the fusion transformer's 8 tokens):
// C[m, n] += A[m, k] * W[k, n] with W row-major and read in place (no packing, any alignment).
// See SkinnyGEMM.c for the design and Sources/Tensor/Kernels/SkinnyGEMM.swift for the threading.

/// 1 when this CPU supports AVX2 and FMA (and the build targets x86-64), else 0. Cached after the first call.
int ck_cpu_has_avx2_fma(void);

/// Floats in one partial-product buffer for m rows and n columns: ceil(m / 8) * n * 8.
ptrdiff_t ck_skinny_partial_floats(ptrdiff_t m, ptrdiff_t n);

/// AVX2+FMA. Overwrites `partial` (ck_skinny_partial_floats(m, n) floats, any alignment) with
/// A[m, k] * W[k, n] in panel form: partial[(g * n + j) * 8 + r] = sum_p A[8g + r, p] * W[p, j],
/// zero for rows past m. A has row stride lda, W row stride ldw (>= n). m, n >= 1, k >= 0.
/// Only call it when ck_cpu_has_avx2_fma() returns 1 (it would raise SIGILL otherwise).
void ck_skinny_partial_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                            ptrdiff_t n, float *partial);

/// C[r, j] += sum over t < count of partials[t * stride + panel entry (r, j)], for r < m and
/// columns j in [j0, j1): adds `count` partial products (e.g. one per thread's range of k) into C.
void ck_skinny_reduce(ptrdiff_t m, ptrdiff_t n, const float *partials, ptrdiff_t count, ptrdiff_t stride,
                      float *c, ptrdiff_t ldc, ptrdiff_t j0, ptrdiff_t j1);

/// Rows of W per slice of k that ck_skinny_gemm_avx2 hands its `parts` threads: about 2 slices per
/// thread, each a multiple of the 16-row block and at least 4 blocks (the last slice takes the rest).
ptrdiff_t ck_skinny_slice_rows(ptrdiff_t k, int parts);

/// Floats of the `partials` workspace ck_skinny_gemm_avx2 needs for `parts` threads: one partial
/// buffer per slice of k, at most 2 slices per thread.
ptrdiff_t ck_skinny_workspace_floats(ptrdiff_t m, ptrdiff_t n, int parts);

/// AVX2+FMA, threaded: C[m, n] += A[m, k] * W[k, n] with k split into slices that the `parts`
/// threads of the worker pool (WorkerPool.c; the caller is one of them) take as they come, each
/// slice into its own partial buffer, then summed into C on the calling thread in slice order, so
/// the result does not depend on the threads' timing. `partials` holds
/// ck_skinny_workspace_floats(m, n, parts) floats. Only when ck_cpu_has_avx2_fma() returns 1.
void ck_skinny_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                         ptrdiff_t n, float *c, ptrdiff_t ldc, int parts, float *partials);

/// Plain C, any CPU: C[i, j] += sum_p A[i, p] * W[p, j] for i < m and columns j in [n0, n1) only
/// (threads can take disjoint column ranges). C has row stride ldc.
void ck_skinny_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                             float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1);

/// AVX2+FMA: output[i] = input[i] * sigmoid(1.702 * input[i]) (CLIP's QuickGELU) for i < count;
/// input and output may be the same buffer. Only when ck_cpu_has_avx2_fma() returns 1.
void ck_quick_gelu_avx2(const float *input, float *output, ptrdiff_t count);

/// AVX2+FMA: output = softmax(input) over `count` floats (max subtracted first); input and output
/// may be the same buffer. Only when ck_cpu_has_avx2_fma() returns 1.
void ck_softmax_row_avx2(const float *input, float *output, ptrdiff_t count);

// Attention heads of short sequences (AttentionHead.c; used by Sources/Tensor/Kernels/FusedAttention.swift).
// Row i of Q is q + i * q_stride, likewise K, V and the weights; strides in floats.

/// AVX2+FMA: scores[i * scores_stride + j] = scale * (Q[i] . K[j]) for i < rows, j < keys.
/// Only call it when ck_cpu_has_avx2_fma() returns 1.
void ck_attention_scores_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *q, ptrdiff_t q_stride,
                              const float *k, ptrdiff_t k_stride, float scale, float *scores, ptrdiff_t scores_stride);

/// AVX2+FMA: out[i * out_stride + c] = sum over j < keys of weights[i * weights_stride + j] * V[j][c].
/// Only call it when ck_cpu_has_avx2_fma() returns 1.
void ck_attention_context_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *weights,
                               ptrdiff_t weights_stride, const float *v, ptrdiff_t v_stride, float *out, ptrdiff_t out_stride);

/// Plain C versions of the two above, any CPU.
void ck_attention_scores_portable(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *q, ptrdiff_t q_stride,
                                  const float *k, ptrdiff_t k_stride, float scale, float *scores, ptrdiff_t scores_stride);
void ck_attention_context_portable(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *weights,
                                   ptrdiff_t weights_stride, const float *v, ptrdiff_t v_stride, float *out, ptrdiff_t out_stride);

// GEMM on weights packed at load into strips of 32 columns (PackedGEMM.c; used by
// Sources/Tensor/Kernels/PackedGEMM.swift). Strip s of a packed W [k, n] (n a multiple of 32) is
// W[0..k, 32s..32s+32] row after row: packed[(s * k + p) * 32 + j] = W[p, 32s + j].
#define CK_PACKED_STRIP_COLUMNS 32
/// 1 when this CPU supports AVX-512F (and the build targets x86-64), else 0. Cached after the first call.
int ck_cpu_has_avx512f(void);
/// Packs row-major float32 W [k, n] (row stride ldw >= n floats, n a multiple of 32, any alignment)
/// into `packed` (k * n floats).
void ck_pack_strips(ptrdiff_t k, ptrdiff_t n, const void *w, ptrdiff_t ldw, float *packed);
/// The inverse: contiguous row-major W [k, n] from its packed strips.
void ck_unpack_strips(ptrdiff_t k, ptrdiff_t n, const float *packed, float *w);
/// 1 when the packed strips at `packed` hold exactly the bytes of row-major [k, n] `row_major`.
int ck_packed_equal(ptrdiff_t k, ptrdiff_t n, const void *row_major, const void *packed);
/// Packs W = w^T [k, n] into strips, from its transpose: `w` is row-major float32 [n, k] (n a
/// multiple of 32), at any alignment.
void ck_pack_strips_transposed(ptrdiff_t k, ptrdiff_t n, const void *w, float *packed);
/// The inverse: row-major [n, k] `w` from the strips of its transpose.
void ck_unpack_strips_transposed(ptrdiff_t k, ptrdiff_t n, const float *packed, float *w);
/// 1 when the strips at `packed` hold exactly the transpose of row-major [n, k] `row_major` (any alignment), bit for bit.
int ck_packed_equal_transposed(ptrdiff_t k, ptrdiff_t n, const void *row_major, const void *packed);
/// AVX-512F: for the strips s in [strip0, strip1), C[i, 32(s - strip0) + j] = (that element if accumulate)
/// + sum over p < k of A[i, p] * W[p, 32s + j], for i < m and j < 32: C points at the output column
/// of strip0's first column. A row stride lda, C row stride ldc.
/// Each element is summed over p in order by fused multiply-adds. Only when ck_cpu_has_avx512f() returns 1.
void ck_packed_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                           float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate);
/// AVX2+FMA: the same product and the same order of operations (6 x 16 tiles; k in blocks, the
/// running sums in a buffer it allocates). Only when ck_cpu_has_avx2_fma() returns 1.
void ck_packed_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate);
/// Plain C version of the above, any CPU (a multiply and an add per step instead of an FMA).
void ck_packed_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *packed,
                             float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate);
// The opt-in bfloat16 GEMM (PackedGEMMBF16.c; used by Sources/Tensor/Kernels/PackedGEMM.swift when
// the precision is bfloat16). Weights in "bfloat16 strips": 32 columns per strip, rows of k in
// pairs, interleaved: packed[((s * kp + q) * 32 + j) * 2 + t] = bf16(W[2q + t, 32s + j]),
// kp = ceil(k / 2), zero past row k. A as bfloat16 rows of 2 * kp values (zero past column k).
/// 1 when this CPU supports AVX-512F, AVX-512BW and AVX512-BF16 (and the build targets x86-64), else 0. Cached.
int ck_cpu_has_avx512_bf16(void);
/// float32 to bfloat16, round to nearest even, denormal inputs as zero (as VCVTNEPS2BF16).
uint16_t ck_bf16_from_float(float value);
/// bfloat16 to float32 (exact).
float ck_float_from_bf16(uint16_t value);
/// Values in the bfloat16 strips of a [k, n] weight: ceil(k / 2) * 2 * n.
ptrdiff_t ck_bf16_strips_count(ptrdiff_t k, ptrdiff_t n);
/// Rounds strips [strip0, strip1) of float32 packed strips (ck_pack_strips' layout) of W [k, n]
/// into the same strips of `packed`, bfloat16 strips of ck_bf16_strips_count(k, n) values.
void ck_bf16_pack_strips_portable(ptrdiff_t k, const float *strips, uint16_t *packed, ptrdiff_t strip0, ptrdiff_t strip1);
/// The same, bit for bit, with AVX512-BF16. Only when ck_cpu_has_avx512_bf16() returns 1.
void ck_bf16_pack_strips_avx512(ptrdiff_t k, const float *strips, uint16_t *packed, ptrdiff_t strip0, ptrdiff_t strip1);
/// A [m, k] (row stride lda floats) to bfloat16 rows of ldo >= 2 * ceil(k / 2) values, zero at column k when k is odd.
void ck_bf16_convert_rows_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, uint16_t *out, ptrdiff_t ldo);
/// The same, bit for bit, with VCVTNEPS2BF16. Only when ck_cpu_has_avx512_bf16() returns 1.
void ck_bf16_convert_rows_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, uint16_t *out, ptrdiff_t ldo);
/// As ck_packed_gemm_avx512 on bfloat16 A (row stride lda values) and bfloat16 strips, sums in
/// float32 with VDPBF16PS. Only when ck_cpu_has_avx512_bf16() returns 1.
void ck_bf16_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate);
/// Plain C reference of the above (the odd then the even product of each pair added in float32).
void ck_bf16_gemm_portable(ptrdiff_t m, ptrdiff_t k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                           float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate);
#ifdef __cplusplus
}
#endif

#endif
