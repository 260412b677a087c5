// Softmax of one row, y = e^(x - max) / sum, in AVX2+FMA for the attention heads.
//
// Why in C: as QuickGELU.c, the Swift SIMD version (VectorMath.softmaxRow) compiles to SSE2 in the
// default build. The text network's prompt tree runs its attention over rows of 482 keys (22
// million exponentials per encoding of the default prompts) and the image network's heads over
// 50, so the row softmax is the largest non-GEMM kernel left on both. Same algorithm and the same
// NaN and infinity behaviour as the Swift version: the maximum ignores NaN, e^(NaN) is NaN (so a
// row holding NaN, or only -inf, becomes NaN, as in ONNX Runtime), masked -inf entries give 0.
// Lanes are summed in another order than the 16-lane Swift loop, so the last bit can differ.

#include "ckernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "VectorAVX2.h"

// e^(x - shift), NaN kept.
__attribute__((target("avx2,fma")))
static inline __m256 ck_shifted_exp(__m256 x, __m256 shift) {
    const __m256 difference = _mm256_sub_ps(x, shift);
    const __m256 value = ck_exp_avx2(difference);
    return _mm256_blendv_ps(value, difference, _mm256_cmp_ps(difference, difference, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma")))
void ck_softmax_row_avx2(const float *input, float *output, ptrdiff_t count) {
    if (count <= 0) return;
    // Maximum by "greater than" selects, which never pick NaN (as the Swift version).
    __m256 maxima = _mm256_set1_ps(-INFINITY);
    ptrdiff_t index = 0;
    for (; index + 8 <= count; index += 8) {
        const __m256 value = _mm256_loadu_ps(input + index);
        maxima = _mm256_blendv_ps(maxima, value, _mm256_cmp_ps(value, maxima, _CMP_GT_OQ));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, maxima);
    float shift = -INFINITY;
    for (int lane = 0; lane < 8; lane++) if (lanes[lane] > shift) shift = lanes[lane];
    for (ptrdiff_t tail = index; tail < count; tail++) if (input[tail] > shift) shift = input[tail];

    const __m256 shiftVector = _mm256_set1_ps(shift);
    __m256 total = _mm256_setzero_ps();
    for (index = 0; index + 8 <= count; index += 8) {
        const __m256 value = ck_shifted_exp(_mm256_loadu_ps(input + index), shiftVector);
        _mm256_storeu_ps(output + index, value);
        total = _mm256_add_ps(total, value);
    }
    float sum = ck_sum8(total);
    if (index < count) {
        // The tail through a padded vector, so every element takes the same arithmetic; only the
        // real lanes are stored and summed.
        float tail[8] = {0};
        for (ptrdiff_t lane = 0; index + lane < count; lane++) tail[lane] = input[index + lane];
        float result[8];
        _mm256_storeu_ps(result, ck_shifted_exp(_mm256_loadu_ps(tail), shiftVector));
        for (ptrdiff_t lane = 0; index + lane < count; lane++) {
            output[index + lane] = result[lane];
            sum += result[lane];
        }
    }
    const __m256 scale = _mm256_set1_ps(1.0f / sum);
    for (index = 0; index + 8 <= count; index += 8) {
        _mm256_storeu_ps(output + index, _mm256_mul_ps(_mm256_loadu_ps(output + index), scale));
    }
    const float scalar = 1.0f / sum;
    for (; index < count; index++) output[index] *= scalar;
}

#else

void ck_softmax_row_avx2(const float *input, float *output, ptrdiff_t count) {
    // Not an x86 build: callers check ck_cpu_has_avx2_fma() first and never get here.
    (void)input; (void)output; (void)count;
}

#endif
