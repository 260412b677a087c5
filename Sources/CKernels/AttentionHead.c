// The two products of one attention head for short sequences: scores = scale * Q K^T and
// context = P V, read in place from the packed QKV projection, without BLAS.
//
// Why not sgemm: CLIP's text rows run at their true length (4 to 11 tokens for the default
// prompts), so one (row, head) group is two products of about 8 x 64 x 8, some 8K multiply-adds.
// An sgemm call costs more than that before it starts (argument checks, packing the operands
// into panels), and the 160 default prompts make 15360 groups per text encoding, two calls each.
// For ViT's 50 tokens a group is 160K multiply-adds, where the fixed cost matters less; the
// crossover is measured in `action-clip bench --kernels` (FusedAttention.swift picks the path).
//
// Layout: row i of Q is q + i * q_stride (likewise K and V), so the heads of the packed
// [L, N, 3E] projection are used where they are. The scores are written row-major with
// `scores_stride`; the context rows go to out + i * out_stride.

#include "ckernels.h"

// MARK: - Portable

void ck_attention_scores_portable(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *q, ptrdiff_t q_stride,
                                  const float *k, ptrdiff_t k_stride, float scale, float *scores, ptrdiff_t scores_stride) {
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *query = q + i * q_stride;
        for (ptrdiff_t j = 0; j < keys; j++) {
            const float *key = k + j * k_stride;
            float sum = 0;
            for (ptrdiff_t c = 0; c < head_size; c++) sum += query[c] * key[c];
            scores[i * scores_stride + j] = scale * sum;
        }
    }
}

void ck_attention_context_portable(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *weights,
                                   ptrdiff_t weights_stride, const float *v, ptrdiff_t v_stride, float *out, ptrdiff_t out_stride) {
    for (ptrdiff_t i = 0; i < rows; i++) {
        float *line = out + i * out_stride;
        for (ptrdiff_t c = 0; c < head_size; c++) line[c] = 0;
        for (ptrdiff_t j = 0; j < keys; j++) {
            const float weight = weights[i * weights_stride + j];
            const float *value = v + j * v_stride;
            for (ptrdiff_t c = 0; c < head_size; c++) line[c] += weight * value[c];
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "VectorAVX2.h"

#define CK_AVX2 __attribute__((target("avx2,fma")))

// Four keys at a time: each chunk of the query is loaded once for four dot products, and the
// four FMA chains hide each other's latency.
CK_AVX2 void ck_attention_scores_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *q, ptrdiff_t q_stride,
                                      const float *k, ptrdiff_t k_stride, float scale, float *scores, ptrdiff_t scores_stride) {
    const ptrdiff_t vector_end = head_size / 8 * 8;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *query = q + i * q_stride;
        float *line = scores + i * scores_stride;
        ptrdiff_t j = 0;
        for (; j + 4 <= keys; j += 4) {
            const float *k0 = k + j * k_stride, *k1 = k0 + k_stride, *k2 = k1 + k_stride, *k3 = k2 + k_stride;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (ptrdiff_t c = 0; c < vector_end; c += 8) {
                const __m256 x = _mm256_loadu_ps(query + c);
                a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k0 + c), a0);
                a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k1 + c), a1);
                a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k2 + c), a2);
                a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k3 + c), a3);
            }
            float s0 = ck_sum8(a0), s1 = ck_sum8(a1), s2 = ck_sum8(a2), s3 = ck_sum8(a3);
            for (ptrdiff_t c = vector_end; c < head_size; c++) {
                s0 += query[c] * k0[c]; s1 += query[c] * k1[c]; s2 += query[c] * k2[c]; s3 += query[c] * k3[c];
            }
            line[j] = scale * s0; line[j + 1] = scale * s1; line[j + 2] = scale * s2; line[j + 3] = scale * s3;
        }
        for (; j < keys; j++) {
            const float *key = k + j * k_stride;
            __m256 a = _mm256_setzero_ps();
            for (ptrdiff_t c = 0; c < vector_end; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(query + c), _mm256_loadu_ps(key + c), a);
            float s = ck_sum8(a);
            for (ptrdiff_t c = vector_end; c < head_size; c++) s += query[c] * key[c];
            line[j] = scale * s;
        }
    }
}

// The context row is built 64 columns at a time in eight registers (eight FMA chains, enough
// to cover the FMA latency on two pipes); ViT-B/32 and CLIP's text heads are 64 wide.
CK_AVX2 void ck_attention_context_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *weights,
                                       ptrdiff_t weights_stride, const float *v, ptrdiff_t v_stride, float *out, ptrdiff_t out_stride) {
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *p = weights + i * weights_stride;
        float *line = out + i * out_stride;
        ptrdiff_t c = 0;
        for (; c + 64 <= head_size; c += 64) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (ptrdiff_t j = 0; j < keys; j++) {
                const __m256 w = _mm256_broadcast_ss(p + j);
                const float *value = v + j * v_stride + c;
                a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value), a0);
                a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 8), a1);
                a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 16), a2);
                a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 24), a3);
                a4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 32), a4);
                a5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 40), a5);
                a6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 48), a6);
                a7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + 56), a7);
            }
            _mm256_storeu_ps(line + c, a0); _mm256_storeu_ps(line + c + 8, a1);
            _mm256_storeu_ps(line + c + 16, a2); _mm256_storeu_ps(line + c + 24, a3);
            _mm256_storeu_ps(line + c + 32, a4); _mm256_storeu_ps(line + c + 40, a5);
            _mm256_storeu_ps(line + c + 48, a6); _mm256_storeu_ps(line + c + 56, a7);
        }
        for (; c + 8 <= head_size; c += 8) {
            __m256 a = _mm256_setzero_ps();
            for (ptrdiff_t j = 0; j < keys; j++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(v + j * v_stride + c), a);
            _mm256_storeu_ps(line + c, a);
        }
        for (; c < head_size; c++) {
            float sum = 0;
            for (ptrdiff_t j = 0; j < keys; j++) sum += p[j] * v[j * v_stride + c];
            line[c] = sum;
        }
    }
}

#else

// Not an x86 build: callers check ck_cpu_has_avx2_fma() first and never get here; the portable
// versions give the same results.
void ck_attention_scores_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *q, ptrdiff_t q_stride,
                              const float *k, ptrdiff_t k_stride, float scale, float *scores, ptrdiff_t scores_stride) {
    ck_attention_scores_portable(rows, keys, head_size, q, q_stride, k, k_stride, scale, scores, scores_stride);
}

void ck_attention_context_avx2(ptrdiff_t rows, ptrdiff_t keys, ptrdiff_t head_size, const float *weights,
                               ptrdiff_t weights_stride, const float *v, ptrdiff_t v_stride, float *out, ptrdiff_t out_stride) {
    ck_attention_context_portable(rows, keys, head_size, weights, weights_stride, v, v_stride, out, out_stride);
}

#endif
