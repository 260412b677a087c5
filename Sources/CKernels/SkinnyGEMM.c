// Skinny-M GEMM: C[m, n] += A[m, k] * W[k, n] for m of at most a few dozen rows, W used in place.
//
// Why not sgemm: with m = 8, OpenBLAS packs the whole weight matrix into its panel format on every
// call, so each weight byte crosses the memory bus several times. The fusion transformer's weights
// (75 MB) do not fit the L3 cache, so that graph is memory-bound and the packing dominates. Here
// every weight element is loaded from memory once and used for 8 rows while it is in a register.
//
// Design of the AVX2 version, each point measured on the 2-core Zen 3 build host (fusion-graph
// weights, 2 threads; the figures are the kernel alone over the 24 products of the graph):
//  * Transposed register tile. The output is built as panels of 8 rows: one ymm register holds
//    C[0..8, j] for one column j. Per row p of W: one vector of A[0..8, p] (A packed p-major per
//    block) and, for 12 columns, 12 broadcasts of W[p, j] and 12 FMAs into 12 accumulators. 12
//    independent FMA chains cover the FMA latency (4 cycles x 2 pipes) with slack; the first
//    version (8 rows x 8 columns, 8 accumulators, A broadcast from its rows) reached ~50% of FMA
//    peak in L2 and ~6 ms, this one ~60% and 3.7 ms.
//  * k is walked in blocks of KBLOCK rows of W, and within a block the columns in strips of 12.
//    Walking a strip down *all* of k instead touches a new 4 KB page on every W row and defeats
//    the hardware prefetchers (2-3x slower). A block keeps KBLOCK sequential streams, and a
//    software prefetch PREFETCH floats ahead on each (wrapping into the next block) hides DRAM
//    latency. KBLOCK 16 beat 8, 24, 32 and 64.
//  * The panels live in a caller-provided buffer, full width (all n columns): chunks of 512 or 1024
//    columns were 5-15% slower (shorter sequential runs per W row).
//  * Threads split k, not n: each thread streams contiguous slices of W (2 per thread, taken
//    dynamically so a late-starting worker does not stall the caller). 3.7 ms vs 4.1 ms split by n.
//    Each slice has its own partial panels, written (not accumulated) by its first block, and
//    ck_skinny_reduce sums them into C in slice order, so the rounding does not depend on which
//    thread took which slice: the result is the same bit for bit on every run. (Until session 6 each
//    thread summed its slices into one partial per thread, and outputs moved by ~1e-7 relative from
//    run to run.) The threads come from WorkerPool.c (spinning workers), not Dispatch.
//  * More than 8 rows: one panel after the other per block; the second finds the W block in L1.

#include "ckernels.h"
#include "ckernels_pool.h"

#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_X86 1
#endif

// Overridable only for tuning experiments.
#ifndef CK_KBLOCK
#define CK_KBLOCK 16
#endif
#ifndef CK_PREFETCH
#define CK_PREFETCH 64
#endif
#ifndef CK_PREFETCH_HINT
#define CK_PREFETCH_HINT _MM_HINT_T0
#endif
#ifndef CK_SLICES
#define CK_SLICES 2
#endif
// Rows of W per block, floats of prefetch distance, rows per panel, columns per register tile.
enum { KBLOCK = CK_KBLOCK, PREFETCH = CK_PREFETCH, PANEL = 8, STRIP = 12 };

ptrdiff_t ck_skinny_partial_floats(ptrdiff_t m, ptrdiff_t n) {
    return (m + PANEL - 1) / PANEL * n * PANEL;
}

// MARK: - Portable

void ck_skinny_gemm_portable(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                             float *c, ptrdiff_t ldc, ptrdiff_t n0, ptrdiff_t n1) {
    if (m <= 0 || k <= 0 || n1 <= n0) return;
    // Blocked over k so the W block stays in cache while every row uses it; the innermost loop is
    // a contiguous axpy the compiler can vectorise with the baseline ISA.
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

void ck_skinny_reduce(ptrdiff_t m, ptrdiff_t n, const float *partials, ptrdiff_t count, ptrdiff_t stride,
                      float *c, ptrdiff_t ldc, ptrdiff_t j0, ptrdiff_t j1) {
    for (ptrdiff_t g = 0; g * PANEL < m; g++) {
        const ptrdiff_t rows = m - g * PANEL < PANEL ? m - g * PANEL : PANEL;
        for (ptrdiff_t j = j0; j < j1; j++) {
            float sum[PANEL];
            const float *panel = partials + (g * n + j) * PANEL;
            for (int r = 0; r < PANEL; r++) sum[r] = panel[r];
            for (ptrdiff_t t = 1; t < count; t++)
                for (int r = 0; r < PANEL; r++) sum[r] += panel[t * stride + r];
            for (ptrdiff_t r = 0; r < rows; r++) c[(g * PANEL + r) * ldc + j] += sum[r];
        }
    }
}

#ifdef CK_X86

// MARK: - AVX2 + FMA

#define CK_AVX2 __attribute__((target("avx2,fma")))

// One panel (8 rows) over one block of kb rows of W, all n columns. `packed` holds the block of
// A p-major: packed[p * 8 + r]. `block` points at W[k0, 0]; `next` at the next block (for the
// prefetch), with `nextRows` rows (0 when this is the last block). `overwrite` starts from zero
// instead of the panel's contents (the first block of a slice), which saves clearing the panel.
CK_AVX2 static void ck_panel_block(ptrdiff_t kb, const float *packed, const float *block, const float *next,
                                   ptrdiff_t nextRows, ptrdiff_t ldw, ptrdiff_t n, float *panel, int prefetch,
                                   int overwrite) {
    ptrdiff_t j = 0;
    for (; j + STRIP <= n; j += STRIP) {
        // About one prefetch per block row per 64-byte line (12 floats is 48 bytes; the mask test
        // fires on 3 of every 4 strips). Past the end of the row it moves to the next block.
        if (prefetch && (j & 15) < STRIP) {
            ptrdiff_t column = j + PREFETCH;
            const float *target = block;
            ptrdiff_t count = kb;
            if (column >= n) {
                column -= n;
                target = next;
                count = nextRows;
            }
            if (column < n)
                for (ptrdiff_t p = 0; p < count; p++) _mm_prefetch((const char *)(target + p * ldw + column), CK_PREFETCH_HINT);
        }
        float *out = panel + j * PANEL;
        __m256 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
        if (overwrite) {
            c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = c10 = c11 = _mm256_setzero_ps();
        } else {
            c0 = _mm256_loadu_ps(out); c1 = _mm256_loadu_ps(out + 8); c2 = _mm256_loadu_ps(out + 16);
            c3 = _mm256_loadu_ps(out + 24); c4 = _mm256_loadu_ps(out + 32); c5 = _mm256_loadu_ps(out + 40);
            c6 = _mm256_loadu_ps(out + 48); c7 = _mm256_loadu_ps(out + 56); c8 = _mm256_loadu_ps(out + 64);
            c9 = _mm256_loadu_ps(out + 72); c10 = _mm256_loadu_ps(out + 80); c11 = _mm256_loadu_ps(out + 88);
        }
        const float *row = block + j;
        for (ptrdiff_t p = 0; p < kb; p++, row += ldw) {
            const __m256 x = _mm256_loadu_ps(packed + p * PANEL);
            c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 0), x, c0);
            c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 1), x, c1);
            c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 2), x, c2);
            c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 3), x, c3);
            c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 4), x, c4);
            c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 5), x, c5);
            c6 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 6), x, c6);
            c7 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 7), x, c7);
            c8 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 8), x, c8);
            c9 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 9), x, c9);
            c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 10), x, c10);
            c11 = _mm256_fmadd_ps(_mm256_broadcast_ss(row + 11), x, c11);
        }
        _mm256_storeu_ps(out, c0); _mm256_storeu_ps(out + 8, c1); _mm256_storeu_ps(out + 16, c2);
        _mm256_storeu_ps(out + 24, c3); _mm256_storeu_ps(out + 32, c4); _mm256_storeu_ps(out + 40, c5);
        _mm256_storeu_ps(out + 48, c6); _mm256_storeu_ps(out + 56, c7); _mm256_storeu_ps(out + 64, c8);
        _mm256_storeu_ps(out + 72, c9); _mm256_storeu_ps(out + 80, c10); _mm256_storeu_ps(out + 88, c11);
    }
    // Last < 12 columns one at a time (a single FMA chain, but at most 11 columns per block).
    for (; j < n; j++) {
        float *out = panel + j * PANEL;
        __m256 sum = overwrite ? _mm256_setzero_ps() : _mm256_loadu_ps(out);
        for (ptrdiff_t p = 0; p < kb; p++)
            sum = _mm256_fmadd_ps(_mm256_broadcast_ss(block + p * ldw + j), _mm256_loadu_ps(packed + p * PANEL), sum);
        _mm256_storeu_ps(out, sum);
    }
}

CK_AVX2 static void ck_skinny_write_partial(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w,
                                            ptrdiff_t ldw, ptrdiff_t n, float *partial);

// ck_skinny_reduce with the same sums in the same order, for the full 8-row panels 8 columns at a
// time: the 8 columns' sums (lanes = rows) are transposed in registers so that each row of C is
// updated with one vector instead of 8 scalar read-modify-writes 4*ldc bytes apart. Bit for bit
// equal to the scalar version (tested through threadedKernelIsDeterministic); partial panels and
// the last < 8 columns go to it.
CK_AVX2 static void ck_skinny_reduce_avx2(ptrdiff_t m, ptrdiff_t n, const float *partials, ptrdiff_t count,
                                          ptrdiff_t stride, float *c, ptrdiff_t ldc) {
    const ptrdiff_t full = m / PANEL;
    const ptrdiff_t wide = n / 8 * 8;
    for (ptrdiff_t g = 0; g < full; g++) {
        for (ptrdiff_t j = 0; j < wide; j += 8) {
            const float *panel = partials + (g * n + j) * PANEL;
            __m256 s0 = _mm256_loadu_ps(panel), s1 = _mm256_loadu_ps(panel + 8), s2 = _mm256_loadu_ps(panel + 16);
            __m256 s3 = _mm256_loadu_ps(panel + 24), s4 = _mm256_loadu_ps(panel + 32), s5 = _mm256_loadu_ps(panel + 40);
            __m256 s6 = _mm256_loadu_ps(panel + 48), s7 = _mm256_loadu_ps(panel + 56);
            for (ptrdiff_t t = 1; t < count; t++) {
                const float *next = panel + t * stride;
                s0 = _mm256_add_ps(s0, _mm256_loadu_ps(next)); s1 = _mm256_add_ps(s1, _mm256_loadu_ps(next + 8));
                s2 = _mm256_add_ps(s2, _mm256_loadu_ps(next + 16)); s3 = _mm256_add_ps(s3, _mm256_loadu_ps(next + 24));
                s4 = _mm256_add_ps(s4, _mm256_loadu_ps(next + 32)); s5 = _mm256_add_ps(s5, _mm256_loadu_ps(next + 40));
                s6 = _mm256_add_ps(s6, _mm256_loadu_ps(next + 48)); s7 = _mm256_add_ps(s7, _mm256_loadu_ps(next + 56));
            }
            // 8x8 transpose: s_q (column j + q, lanes = rows) -> r_i (row i, lanes = columns).
            const __m256 t0 = _mm256_unpacklo_ps(s0, s1), t1 = _mm256_unpackhi_ps(s0, s1);
            const __m256 t2 = _mm256_unpacklo_ps(s2, s3), t3 = _mm256_unpackhi_ps(s2, s3);
            const __m256 t4 = _mm256_unpacklo_ps(s4, s5), t5 = _mm256_unpackhi_ps(s4, s5);
            const __m256 t6 = _mm256_unpacklo_ps(s6, s7), t7 = _mm256_unpackhi_ps(s6, s7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            const __m256 rows[PANEL] = {
                _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
            };
            for (int r = 0; r < PANEL; r++) {
                float *line = c + (g * PANEL + r) * ldc + j;
                _mm256_storeu_ps(line, _mm256_add_ps(_mm256_loadu_ps(line), rows[r]));
            }
        }
        if (wide < n) ck_skinny_reduce(PANEL, n, partials + g * n * PANEL, count, stride, c + g * PANEL * ldc, ldc, wide, n);
    }
    // A last panel of fewer than 8 rows: the scalar version writes only the rows that exist.
    if (full * PANEL < m)
        ck_skinny_reduce(m - full * PANEL, n, partials + full * n * PANEL, count, stride, c + full * PANEL * ldc, ldc, 0, n);
}

CK_AVX2 void ck_skinny_partial_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w,
                                    ptrdiff_t ldw, ptrdiff_t n, float *partial) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        const ptrdiff_t total = ck_skinny_partial_floats(m, n);
        for (ptrdiff_t index = 0; index < total; index++) partial[index] = 0;
        return;
    }
    ck_skinny_write_partial(m, k, a, lda, w, ldw, n, partial);
}

// partial = A[m, k] * W[k, n] in panel form (k >= 1: the first block overwrites the panels).
CK_AVX2 static void ck_skinny_write_partial(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w,
                                            ptrdiff_t ldw, ptrdiff_t n, float *partial) {
    // The current block of A for one panel, p-major, rows past m zero.
    float packed[KBLOCK * PANEL];
    for (ptrdiff_t k0 = 0; k0 < k; k0 += KBLOCK) {
        const ptrdiff_t kb = k - k0 < KBLOCK ? k - k0 : KBLOCK;
        const ptrdiff_t rest = k - k0 - kb;
        const float *block = w + k0 * ldw;
        for (ptrdiff_t g = 0; g * PANEL < m; g++) {
            const ptrdiff_t rows = m - g * PANEL < PANEL ? m - g * PANEL : PANEL;
            for (ptrdiff_t p = 0; p < kb; p++)
                for (ptrdiff_t r = 0; r < PANEL; r++)
                    packed[p * PANEL + r] = r < rows ? a[(g * PANEL + r) * lda + k0 + p] : 0.0f;
            // Later panels find the block in L1/L2: only the first one prefetches.
            ck_panel_block(kb, packed, block, block + kb * ldw, rest < KBLOCK ? rest : KBLOCK, ldw, n,
                           partial + g * n * PANEL, g == 0, k0 == 0);
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

static void ck_skinny_write_partial(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w,
                                    ptrdiff_t ldw, ptrdiff_t n, float *partial) {
    const ptrdiff_t total = ck_skinny_partial_floats(m, n);
    for (ptrdiff_t index = 0; index < total; index++) partial[index] = 0;
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t p = 0; p < k; p++)
            for (ptrdiff_t j = 0; j < n; j++)
                partial[((i / PANEL) * n + j) * PANEL + i % PANEL] += a[i * lda + p] * w[p * ldw + j];
}

void ck_skinny_partial_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w,
                            ptrdiff_t ldw, ptrdiff_t n, float *partial) {
    // Not an x86 build: there is no AVX2 version; callers check ck_cpu_has_avx2_fma() first.
    // Same result with plain loops.
    if (m <= 0 || n <= 0) return;
    ck_skinny_write_partial(m, k, a, lda, w, ldw, n, partial);
}

static void ck_skinny_reduce_avx2(ptrdiff_t m, ptrdiff_t n, const float *partials, ptrdiff_t count,
                                  ptrdiff_t stride, float *c, ptrdiff_t ldc) {
    ck_skinny_reduce(m, n, partials, count, stride, c, ldc, 0, n);
}

int ck_cpu_has_avx2_fma(void) { return 0; }

#endif

// MARK: - Threaded driver

typedef struct {
    ptrdiff_t m, k, lda, ldw, n, stride, slice, slices;
    const float *a, *w;
    float *partials;
    atomic_long next;   // next slice to take
} ck_skinny_job;

// One pool thread: takes slices of k (contiguous runs of W rows) until none are left, writing
// each into that slice's partial buffer. Taking slices dynamically rather than a fixed half per
// thread absorbs a worker that starts late or shares its core for a moment: with fixed halves,
// the caller spent ~12% of its time waiting for the worker (perf, fusion graph).
static void ck_skinny_part(void *context, int part) {
    (void)part;
    ck_skinny_job *job = (ck_skinny_job *)context;
    for (;;) {
        const long slice = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (slice >= job->slices) break;
        const ptrdiff_t first = slice * job->slice;
        const ptrdiff_t end = first + job->slice < job->k ? first + job->slice : job->k;
        ck_skinny_write_partial(job->m, end - first, job->a + first, job->lda, job->w + first * job->ldw, job->ldw,
                                job->n, job->partials + slice * job->stride);
    }
}

// Slices of k for `parts` threads: about CK_SLICES per thread (2 measured better than 1 and 4),
// each a multiple of the block and at least 4 blocks.
ptrdiff_t ck_skinny_slice_rows(ptrdiff_t k, int parts) {
    if (parts < 1) parts = 1;
    ptrdiff_t slice = (k + CK_SLICES * parts - 1) / (CK_SLICES * parts);
    slice = (slice + KBLOCK - 1) / KBLOCK * KBLOCK;
    return slice < 4 * KBLOCK ? 4 * KBLOCK : slice;
}

ptrdiff_t ck_skinny_workspace_floats(ptrdiff_t m, ptrdiff_t n, int parts) {
    return (ptrdiff_t)CK_SLICES * (parts < 1 ? 1 : parts) * ck_skinny_partial_floats(m, n);
}

void ck_skinny_gemm_avx2(ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                         ptrdiff_t n, float *c, ptrdiff_t ldc, int parts, float *partials) {
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (parts < 1) parts = 1;
    // slice >= k / (CK_SLICES * parts), so there are at most CK_SLICES * parts slices: the
    // workspace ck_skinny_workspace_floats promises.
    const ptrdiff_t slice = ck_skinny_slice_rows(k, parts);
    const ptrdiff_t slices = (k + slice - 1) / slice;
    ck_skinny_job job = { m, k, lda, ldw, n, ck_skinny_partial_floats(m, n), slice, slices, a, w, partials, 0 };
    ck_pool_run(parts, parts, ck_skinny_part, &job);
    ck_skinny_reduce_avx2(m, n, partials, slices, job.stride, c, ldc);
}
