// What the float32 and the bfloat16 packed kernels share (PackedGEMM.c, PackedGEMMBF16.c): both keep
// an 8-row by 32-column tile as two zmm accumulators per row and write it out the same way.
#ifndef CK_PACKED_TILE_H
#define CK_PACKED_TILE_H

#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>

// Rows 0..rows of a tile into C (row stride ldc), added to C's values when accumulating. The sums
// are added to C at the end rather than started from it: each element is then the same chain of
// operations from zero whatever C held (the bias, the residual), as the portable kernels compute it.
__attribute__((target("avx512f"), always_inline)) static inline void
ck_store_tile(const int rows, const __m512 *low, const __m512 *high, float *c, ptrdiff_t ldc, int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *out = c + r * ldc;
        __m512 first = low[r], second = high[r];
        if (accumulate) {
            first = _mm512_add_ps(first, _mm512_loadu_ps(out));
            second = _mm512_add_ps(second, _mm512_loadu_ps(out + 16));
        }
        _mm512_storeu_ps(out, first);
        _mm512_storeu_ps(out + 16, second);
    }
}
#endif

#endif
