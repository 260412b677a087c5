// QuickGELU, y = x * sigmoid(1.702 x), in AVX2+FMA for the MLP epilogue of CLIP's transformers.
//
// Why in C: the default build targets baseline x86-64, so the Swift SIMD version compiles to SSE2
// (4 lanes, no FMA). QuickGELU runs over every MLP hidden state ([400, 3072] per block of the image
// network), and `perf` put it at 3.8 % of an image run, the largest non-GEMM kernel. Here the same
// algorithm (VectorMath.exp's Cephes polynomial, sigmoid from e^-|t| so neither side overflows) runs
// 8 lanes wide with FMA, behind the same run-time check as the skinny GEMM.

#include "ckernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "VectorAVX2.h"

__attribute__((target("avx2,fma")))
static inline __m256 ck_quick_gelu_vector(__m256 x) {
    const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.702f));
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 e = ck_exp_avx2(_mm256_or_ps(t, sign));           // e^-|t|
    const __m256 denominator = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
    const __m256 negative = _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 numerator = _mm256_blendv_ps(_mm256_set1_ps(1.0f), e, negative);  // t < 0: e / (1 + e)
    return _mm256_mul_ps(x, _mm256_div_ps(numerator, denominator));
}

__attribute__((target("avx2,fma")))
void ck_quick_gelu_avx2(const float *input, float *output, ptrdiff_t count) {
    ptrdiff_t index = 0;
    for (; index + 8 <= count; index += 8) {
        _mm256_storeu_ps(output + index, ck_quick_gelu_vector(_mm256_loadu_ps(input + index)));
    }
    if (index < count) {
        // The tail through a zero-padded vector, so every element takes the same arithmetic.
        float tail[8] = {0};
        for (ptrdiff_t lane = 0; index + lane < count; lane++) tail[lane] = input[index + lane];
        float result[8];
        _mm256_storeu_ps(result, ck_quick_gelu_vector(_mm256_loadu_ps(tail)));
        for (ptrdiff_t lane = 0; index + lane < count; lane++) output[index + lane] = result[lane];
    }
}

#else

void ck_quick_gelu_avx2(const float *input, float *output, ptrdiff_t count) {
    // Not an x86 build: callers check ck_cpu_has_avx2_fma() first and never get here.
    (void)input; (void)output; (void)count;
}

#endif
