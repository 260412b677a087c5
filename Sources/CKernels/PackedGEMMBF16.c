// The opt-in bfloat16 GEMM (`--precision bf16`): C[m, n] (+)= A[m, k] * W[k, n] with A and W
// rounded to bfloat16 and the products summed in float32, on CPUs with AVX512-BF16 (Zen 4 and
// later, Intel Cooper Lake and Sapphire Rapids).
//
// Why: VDPBF16PS multiplies 32 pairs of bfloat16 and adds each pair's two products into one of 16
// float32 lanes, so one instruction does twice the multiply-adds of a float32 FMA on the same
// 512-bit register; and bfloat16 weights are half the bytes to stream. The price is precision:
// bfloat16 keeps 8 significant bits (float32 keeps 24), so every weight and activation entering a
// product is off by up to 2^-8 relative. docs/PERFORMANCE.md measures what that does to the
// features and scores. Only the weight products (`linear`, the attention's projections) take this
// path; attention scores, softmax, LayerNorm and the rest stay float32.
//
// Layout ("bfloat16 strips"): like PackedGEMM.c's float32 strips, 32 columns per strip, but rows
// of k are taken in pairs and the pair is interleaved, the operand order VDPBF16PS wants: for
// pair q of strip s, packed[((s * kp + q) * 32 + j) * 2 + t] = bf16(W[2q + t, 32s + j]) with
// kp = ceil(k / 2) and a zero row after an odd k. One pair row is 64 values, 128 bytes, two zmm.
// A is converted once per product into rows of 2 * kp bfloat16 (`ck_bf16_convert_rows`), so the
// pair A[i, 2q], A[i, 2q + 1] is one 32-bit value a tile broadcasts.
//
// The tile: 8 rows x 32 columns, 16 zmm accumulators, as in the float32 kernel; per pair: two
// loads of W, eight broadcasts of A, sixteen VDPBF16PS. Each output element is summed over q in
// order by one tile, whatever the thread split, so results do not depend on the thread count.
//
// Rounding: float32 to bfloat16 rounds to nearest, ties to even, as VCVTNEPS2BF16 does; the
// portable conversion below is the same function bit for bit (tests check it on every CPU that has
// the instruction). The portable product is the reference the vector kernel is tested against;
// the two can differ in the last bit of a sum, since the hardware may add a pair's two products
// to the accumulator in one rounding or two.

#include "ckernels.h"
#include "PackedTile.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_X86_64 1
#endif

enum { STRIP = CK_PACKED_STRIP_COLUMNS, TILE = 8 };

uint16_t ck_bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
    if ((bits & 0x7f800000u) == 0) bits &= 0x80000000u;  // the instruction treats denormal inputs as zero
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

float ck_float_from_bf16(uint16_t value) {
    const uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

static inline ptrdiff_t pairs_of(ptrdiff_t k) { return (k + 1) / 2; }

ptrdiff_t ck_bf16_strips_count(ptrdiff_t k, ptrdiff_t n) { return pairs_of(k) * 2 * n; }

void ck_bf16_pack_strips_portable(ptrdiff_t k, const float *strips, uint16_t *packed, ptrdiff_t strip0,
                                  ptrdiff_t strip1) {
    const ptrdiff_t kp = pairs_of(k);
    for (ptrdiff_t s = strip0; s < strip1; s++) {
        const float *strip = strips + s * k * STRIP;
        uint16_t *out = packed + s * kp * STRIP * 2;
        for (ptrdiff_t q = 0; q < kp; q++)
            for (int j = 0; j < STRIP; j++)
                for (int t = 0; t < 2; t++) {
                    const ptrdiff_t p = 2 * q + t;
                    out[(q * STRIP + j) * 2 + t] = p < k ? ck_bf16_from_float(strip[p * STRIP + j]) : 0;
                }
    }
}

void ck_bf16_convert_rows_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, uint16_t *out,
                                   ptrdiff_t ldo) {
    for (ptrdiff_t i = 0; i < m; i++) {
        for (ptrdiff_t p = 0; p < k; p++) out[i * ldo + p] = ck_bf16_from_float(a[i * lda + p]);
        if (k % 2) out[i * ldo + k] = 0;
    }
}

void ck_bf16_gemm_portable(ptrdiff_t m, ptrdiff_t k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                           float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    const ptrdiff_t kp = pairs_of(k);
    for (ptrdiff_t s = strip0; s < strip1; s++) {
        const uint16_t *strip = packed + s * kp * STRIP * 2;
        for (ptrdiff_t i = 0; i < m; i++) {
            float *out = c + i * ldc + (s - strip0) * STRIP;
            for (int j = 0; j < STRIP; j++) {
                float sum = 0.0f;
                for (ptrdiff_t q = 0; q < kp; q++) {
                    // Products of two bfloat16 values are exact in float32 (8 x 8 significant bits).
                    const float odd = ck_float_from_bf16(a[i * lda + 2 * q + 1]) * ck_float_from_bf16(strip[(q * STRIP + j) * 2 + 1]);
                    const float even = ck_float_from_bf16(a[i * lda + 2 * q]) * ck_float_from_bf16(strip[(q * STRIP + j) * 2]);
                    sum = sum + odd + even;
                }
                out[j] = accumulate ? out[j] + sum : sum;
            }
        }
    }
}

#ifdef CK_X86_64

#define CK_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl")))

int ck_cpu_has_avx512_bf16(void) {
    // 0 = not yet checked, 1 = no, 2 = yes. A benign race: every thread computes the same value.
    static volatile int cached = 0;
    if (cached == 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512bf16") ? 2 : 1;
    }
    return cached == 2;
}

// Rounding every weight happens once per process, on first use (350 MB of float32 for the image
// model): the plain loop took about 0.1 s of a whole job's 0.35 s. Here one VCVTNE2PS2BF16 rounds
// 16 columns of two rows and one VPERMW interleaves them into the pair order.
CK_AVX512_BF16 void ck_bf16_pack_strips_avx512(ptrdiff_t k, const float *strips, uint16_t *packed, ptrdiff_t strip0,
                                               ptrdiff_t strip1) {
    const ptrdiff_t kp = pairs_of(k);
    // Lane 2j takes the first row's column j (lane j of the converted pair), lane 2j + 1 the second's (lane 16 + j).
    short order[32];
    for (int j = 0; j < 16; j++) { order[2 * j] = (short)j; order[2 * j + 1] = (short)(16 + j); }
    const __m512i interleave = _mm512_loadu_si512(order);
    for (ptrdiff_t s = strip0; s < strip1; s++) {
        const float *strip = strips + s * k * STRIP;
        uint16_t *out = packed + s * kp * STRIP * 2;
        for (ptrdiff_t q = 0; q < kp; q++) {
            const float *first = strip + 2 * q * STRIP;
            const int second_exists = 2 * q + 1 < k;
            for (int half = 0; half < 2; half++) {
                const __m512 row0 = _mm512_loadu_ps(first + 16 * half);
                const __m512 row1 = second_exists ? _mm512_loadu_ps(first + STRIP + 16 * half) : _mm512_setzero_ps();
                const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(row1, row0);
                _mm512_storeu_si512(out + (q * STRIP + 16 * half) * 2, _mm512_permutexvar_epi16(interleave, both));
            }
        }
    }
}

CK_AVX512_BF16 void ck_bf16_convert_rows_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, uint16_t *out,
                                                ptrdiff_t ldo) {
    for (ptrdiff_t i = 0; i < m; i++) {
        const float *row = a + i * lda;
        uint16_t *converted = out + i * ldo;
        ptrdiff_t p = 0;
        for (; p + 16 <= k; p += 16)
            _mm256_storeu_si256((__m256i *)(converted + p), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(row + p)));
        for (; p < k; p++) converted[p] = ck_bf16_from_float(row[p]);
        if (k % 2) converted[k] = 0;
    }
}

// One tile of `rows` (1...8, a constant after inlining) rows by one strip, over kp pairs.
CK_AVX512_BF16 static inline __attribute__((always_inline)) void
ck_bf16_tile(const int rows, ptrdiff_t kp, const uint16_t *a, ptrdiff_t lda, const uint16_t *strip, float *c,
             ptrdiff_t ldc, int accumulate) {
    __m512 low[TILE], high[TILE];
    for (int r = 0; r < TILE; r++) low[r] = high[r] = _mm512_setzero_ps();
    const uint16_t *pair = strip;
    for (ptrdiff_t q = 0; q < kp; q++, pair += 2 * STRIP) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(pair), w1 = (__m512bh)_mm512_loadu_si512(pair + STRIP);
        for (int r = 0; r < TILE; r++) {
            if (r >= rows) break;
            uint32_t both;
            memcpy(&both, a + r * lda + 2 * q, sizeof both);
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)both);
            low[r] = _mm512_dpbf16_ps(low[r], x, w0);
            high[r] = _mm512_dpbf16_ps(high[r], x, w1);
        }
    }
    ck_store_tile(rows, low, high, c, ldc, accumulate);
}

#define CK_BF16_TILE(n)                                                                                          \
    CK_AVX512_BF16 static void ck_bf16_tile##n(ptrdiff_t kp, const uint16_t *a, ptrdiff_t lda,                   \
                                               const uint16_t *strip, float *c, ptrdiff_t ldc, int accumulate) { \
        ck_bf16_tile(n, kp, a, lda, strip, c, ldc, accumulate);                                                  \
    }
CK_BF16_TILE(8)
CK_BF16_TILE(4)
CK_BF16_TILE(2)
CK_BF16_TILE(1)

// Rows of A per pass over the strips when A is large (the text graph at 77 tokens): as in
// PackedGEMM.c, a block of about 1 MB of bfloat16 A stays in L3 while the thread's strips pass
// over it; smaller A is walked whole for each strip, which stays in L2.
#define A_LARGE_BYTES (4 << 20)
#define A_BLOCK_BYTES (1 << 20)

void ck_bf16_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    const ptrdiff_t kp = pairs_of(k);
    ptrdiff_t block = m;
    if ((double)m * (double)kp * 4 > A_LARGE_BYTES) {
        block = A_BLOCK_BYTES / (4 * (kp > 0 ? kp : 1)) / 8 * 8;
        if (block < 64) block = 64;
    }
    for (ptrdiff_t i0 = 0; i0 < m; i0 += block) {
        const ptrdiff_t rows = m - i0 < block ? m - i0 : block;
        for (ptrdiff_t s = strip0; s < strip1; s++) {
            const uint16_t *strip = packed + s * kp * STRIP * 2;
            const uint16_t *x = a + i0 * lda;
            float *out = c + i0 * ldc + (s - strip0) * STRIP;
            ptrdiff_t i = 0;
            for (; i + 8 <= rows; i += 8) ck_bf16_tile8(kp, x + i * lda, lda, strip, out + i * ldc, ldc, accumulate);
            if (i + 4 <= rows) { ck_bf16_tile4(kp, x + i * lda, lda, strip, out + i * ldc, ldc, accumulate); i += 4; }
            if (i + 2 <= rows) { ck_bf16_tile2(kp, x + i * lda, lda, strip, out + i * ldc, ldc, accumulate); i += 2; }
            if (i < rows) ck_bf16_tile1(kp, x + i * lda, lda, strip, out + i * ldc, ldc, accumulate);
        }
    }
}

#else

int ck_cpu_has_avx512_bf16(void) { return 0; }

void ck_bf16_pack_strips_avx512(ptrdiff_t k, const float *strips, uint16_t *packed, ptrdiff_t strip0, ptrdiff_t strip1) {
    ck_bf16_pack_strips_portable(k, strips, packed, strip0, strip1);
}

// Not an x86-64 build: callers check ck_cpu_has_avx512_bf16() first; same results with plain loops.
void ck_bf16_convert_rows_avx512(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, uint16_t *out, ptrdiff_t ldo) {
    ck_bf16_convert_rows_portable(m, k, a, lda, out, ldo);
}

void ck_bf16_gemm_avx512(ptrdiff_t m, ptrdiff_t k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                         float *c, ptrdiff_t ldc, ptrdiff_t strip0, ptrdiff_t strip1, int accumulate) {
    ck_bf16_gemm_portable(m, k, a, lda, packed, c, ldc, strip0, strip1, accumulate);
}

#endif
