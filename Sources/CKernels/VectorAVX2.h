// AVX2+FMA vector helpers shared by the C kernels (AttentionHead.c, QuickGELU.c, Softmax.c):
// e^x for x <= 0 (VectorMath.exp's Cephes polynomial, Sources/Tensor/Kernels/VectorMath.swift)
// and the sum of 8 lanes. Include after <immintrin.h>, in x86 builds only.

#ifndef CKERNELS_VECTOR_AVX2_H
#define CKERNELS_VECTOR_AVX2_H

// Lanes summed as (low half + high half), then pairs, then the last two.
__attribute__((target("avx2,fma")))
static inline float ck_sum8(__m256 x) {
    const __m128 half = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)));
}

__attribute__((target("avx2,fma")))
static inline __m256 ck_exp_avx2(__m256 input) {
    // Callers pass x <= 0 (QuickGELU's e^-|t|, softmax's x - max). As VectorMath.exp: below -86.5
    // the result is 0 (so in QuickGELU x = -inf gives x * 0 = NaN exactly as the graph's
    // Mul(x, Sigmoid) does); the clamp keeps 2^n normal. NaN comes out as e^-86.5: callers that
    // must propagate NaN blend it back in.
    const __m256 underflow = _mm256_cmp_ps(input, _mm256_set1_ps(-86.5f), _CMP_LT_OQ);
    __m256 x = _mm256_max_ps(input, _mm256_set1_ps(-86.5f));
    const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: rounds to an integer in the low bits
    const __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.4426950408889634f), magic);
    const __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.1219444005469058e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n from the integer held in the low mantissa bits of `shifted`.
    const __m256i integer = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(integer, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, scale));
}

#endif
