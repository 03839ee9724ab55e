// The small-batch fully connected products in AVX-512 (figures: docs/performance.md, item 14).
// AlexNet's fc1 at batch 16 streams 151 MB of weights, or writes a 151 MB gradient, for 1.2 GFLOP: these kernels
// keep their operands in L1 and read or write each byte of W and dW once. Two facts shape them: a row of W or x is a
// multiple of 4 KiB long in AlexNet (9,216 and 4,096 floats), so many rows at once share L1 sets and evict each
// other; and with n ≤ 16 one 16-lane vector holds a value for every sample.
#include "fully_connected_avx512.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

static inline __mmask16 tail_mask(long count) { return count >= 16 ? 0xFFFF : (__mmask16)((1u << count) - 1); }

// A 64-byte-aligned scratch buffer of this thread's, grown as needed and kept for the next call.
static float *scratch(size_t floats) {
    static __thread float *buffer;
    static __thread size_t capacity;
    if (floats > capacity) {
        free(buffer);
        capacity = (floats + 4095) / 4096 * 4096;
        buffer = aligned_alloc(64, capacity * sizeof(float));
        if (!buffer) {
            fprintf(stderr, "dtrain: out of memory for a %zu-byte scratch buffer of the fully connected kernels\n",
                    capacity * sizeof(float));
            abort();
        }
    }
    return buffer;
}

// MARK: y = x Wᵀ

// Eight rows of W at a time, their weights broadcast one by one against xT[i] (the n samples of input i in one
// vector): eight accumulators, no horizontal sums. More rows at once would share L1 sets (measured: 16 rows 13.4 ms
// for fc1, 8 rows 11.0 ms).
#define FORWARD_ROWS 8
AVX512 void dtrain_fc_forward_avx512(const float *x, const float *w, float *y, long n, long k, long m, long row0,
                                     long row1) {
    float *xT = scratch((size_t)k * 16);
    for (long i = 0; i < k; i++)
        for (long s = 0; s < 16; s++) xT[i * 16 + s] = s < n ? x[s * k + i] : 0;
    for (long o = row0; o < row1; o += FORWARD_ROWS) {
        int r = row1 - o < FORWARD_ROWS ? (int)(row1 - o) : FORWARD_ROWS;
        const float *row[FORWARD_ROWS];  // missing rows of a short block repeat the first; not stored
        for (int i = 0; i < FORWARD_ROWS; i++) row[i] = w + (o + (i < r ? i : 0)) * k;
        __m512 a[FORWARD_ROWS];
        for (int i = 0; i < FORWARD_ROWS; i++) a[i] = _mm512_setzero_ps();
        for (long p = 0; p < k; p++) {
            __m512 u = _mm512_load_ps(xT + p * 16);
            // Each row's next lines, a few ahead of use: the rows are separate streams from memory.
            _mm_prefetch((const char *)(row[p % FORWARD_ROWS] + (p & ~15L) + 64), _MM_HINT_T0);
            for (int i = 0; i < FORWARD_ROWS; i++) a[i] = _mm512_fmadd_ps(_mm512_set1_ps(row[i][p]), u, a[i]);
        }
        float out[FORWARD_ROWS][16] __attribute__((aligned(64)));
        for (int i = 0; i < FORWARD_ROWS; i++) _mm512_store_ps(out[i], a[i]);
        for (long s = 0; s < n; s++)
            for (int i = 0; i < r; i++) y[s * m + o + i] = out[i][s];
    }
}

// MARK: dW = dyᵀ x

// One 4-row × 64-column tile of dW: sixteen accumulators over the n samples of a panel of x (n × 64) and this
// block's dy (dyT, [rows][n]).
AVX512 static inline void weight_tile(const float *dyT, long n, const float *panel, float *t, long k, int rows,
                                      const __mmask16 mask[4], bool accumulate, bool stream) {
    __m512 a[4][4];
    for (int i = 0; i < 4; i++)
        for (int q = 0; q < 4; q++) a[i][q] = _mm512_setzero_ps();
    for (long s = 0; s < n; s++) {
        __m512 u[4];
        for (int q = 0; q < 4; q++) u[q] = _mm512_load_ps(panel + s * 64 + 16 * q);
        for (int i = 0; i < 4; i++) {
            __m512 d = _mm512_set1_ps(dyT[i * n + s]);
            for (int q = 0; q < 4; q++) a[i][q] = _mm512_fmadd_ps(d, u[q], a[i][q]);
        }
    }
    for (int i = 0; i < rows; i++, t += k) {
        if (stream) {
            for (int q = 0; q < 4; q++) _mm512_stream_ps(t + 16 * q, a[i][q]);
            continue;
        }
        for (int q = 0; q < 4; q++) {
            __m512 v = accumulate ? _mm512_add_ps(a[i][q], _mm512_maskz_loadu_ps(mask[q], t + 16 * q)) : a[i][q];
            _mm512_mask_storeu_ps(t + 16 * q, mask[q], v);
        }
    }
}

// x is first copied into panels of 64 columns × n samples, one contiguous 4 KiB block each. Rows are taken 64 at a
// time with their dy gathered (dyT); for each panel all those rows' tiles run while panel and dyT stay in L1
// (measured for fc1: 25 ms with x read in place, 13 ms panel by panel, 9.9 ms with the row blocks).
#define WEIGHT_ROW_BLOCK 64
AVX512 void dtrain_fc_weight_gradient_avx512(const float *dy, const float *x, float *dw, long n, long k, long m,
                                             long row0, long row1, bool accumulate) {
    long columns = (k + 63) / 64 * 64;
    float *panels = scratch((size_t)columns * n + WEIGHT_ROW_BLOCK * 16);
    float *dyT = panels + columns * n;
    for (long j = 0; j < k; j += 64)
        for (long s = 0; s < n; s++)
            for (int q = 0; q < 4; q++) {
                __mmask16 mask = j + 16 * q < k ? tail_mask(k - j - 16 * q) : 0;
                _mm512_store_ps(panels + j * n + s * 64 + 16 * q, _mm512_maskz_loadu_ps(mask, x + s * k + j + 16 * q));
            }
    // A gradient written whole and read again only by the update: stores that bypass the cache save reading each
    // line in first. They need whole aligned lines.
    int stream = !accumulate && (uintptr_t)(dw + row0 * k) % 64 == 0 && k % 16 == 0;
    const __mmask16 full[4] = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
    __mmask16 tail[4];
    long whole = k / 64 * 64;
    for (int q = 0; q < 4; q++) tail[q] = whole + 16 * q < k ? tail_mask(k - whole - 16 * q) : 0;
    for (long top = row0; top < row1; top += WEIGHT_ROW_BLOCK) {
        long bottom = row1 - top < WEIGHT_ROW_BLOCK ? row1 : top + WEIGHT_ROW_BLOCK;
        for (long o = top; o < bottom; o++)
            for (long s = 0; s < n; s++) dyT[(o - top) * n + s] = dy[s * m + o];
        for (long o = bottom; o < top + WEIGHT_ROW_BLOCK && o < bottom + 4; o++)
            for (long s = 0; s < n; s++) dyT[(o - top) * n + s] = 0;  // a short last tile reads these
        for (long j = 0; j < k; j += 64) {
            const __mmask16 *mask = j < whole ? full : tail;
            for (long o = top; o < bottom; o += 4) {
                int rows = bottom - o < 4 ? (int)(bottom - o) : 4;
                weight_tile(dyT + (o - top) * n, n, panels + j * n, dw + o * k + j, k, rows, mask, accumulate,
                            stream && rows == 4 && j < whole);
            }
        }
    }
    if (stream) _mm_sfence();
}

// MARK: dx += dy W

// Eight samples × 48 columns (24 accumulators) over blocks of 32 rows of W: a block (1.2 MB for fc1) stays in L2 for
// the second group of eight samples; the first group prefetches the lines it will need next.
#define INPUT_ROW_BLOCK 32
AVX512 void dtrain_fc_input_gradient_avx512(const float *dy, const float *w, float *dx, long n, long k, long m,
                                            long col0, long col1) {
    for (long top = 0; top < m; top += INPUT_ROW_BLOCK) {
        long bottom = m - top < INPUT_ROW_BLOCK ? m : top + INPUT_ROW_BLOCK;
        for (long first = 0; first < n; first += 8) {
            long c = n - first < 8 ? n - first : 8;
            const float *d[8];  // missing samples of a short group repeat the first; not stored
            for (int l = 0; l < 8; l++) d[l] = dy + (first + (l < c ? l : 0)) * m;
            for (long j = col0; j < col1; j += 48) {
                __mmask16 mask[3];
                for (int q = 0; q < 3; q++) mask[q] = j + 16 * q < col1 ? tail_mask(col1 - j - 16 * q) : 0;
                __m512 a[8][3];
                for (int l = 0; l < 8; l++)
                    for (int q = 0; q < 3; q++) a[l][q] = _mm512_setzero_ps();
                for (long o = top; o < bottom; o++) {
                    const float *row = w + o * k + j;
                    if (first == 0 && j + 96 < col1)
                        for (int q = 0; q < 3; q++) _mm_prefetch((const char *)(row + 96 + 16 * q), _MM_HINT_T0);
                    __m512 v[3];
                    for (int q = 0; q < 3; q++) v[q] = _mm512_maskz_loadu_ps(mask[q], row + 16 * q);
                    for (int l = 0; l < 8; l++) {
                        __m512 b = _mm512_set1_ps(d[l][o]);
                        for (int q = 0; q < 3; q++) a[l][q] = _mm512_fmadd_ps(b, v[q], a[l][q]);
                    }
                }
                for (int l = 0; l < c; l++) {
                    float *t = dx + (first + l) * k + j;
                    for (int q = 0; q < 3; q++)
                        _mm512_mask_storeu_ps(t + 16 * q, mask[q],
                                              _mm512_add_ps(a[l][q], _mm512_maskz_loadu_ps(mask[q], t + 16 * q)));
                }
            }
        }
    }
}
