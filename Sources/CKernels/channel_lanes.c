// Planar maps to channels-innermost bands and back, eight channels × eight columns at a time through an 8×8
// transpose in registers. The Winograd paths change layout this way on every input, output and output gradient;
// one float at a time (a store every 4·channels bytes) those copies took about as long as the transforms
// themselves (docs/performance.md, item 16). AVX2 is the floor dtrain is built for.
#include "channel_lanes.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

// r[j] becomes (r[0][j], r[1][j], …, r[7][j]).
static inline AVX2 void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

AVX2 void dtrain_planes_to_lanes(const float *planes, long planeStride, long rowStride, float *lanes,
                                 long pixelStride, long laneRowStride, long channels, long rows, long cols) {
    for (long c0 = 0; c0 < channels; c0 += 8) {
        long count = channels - c0 < 8 ? channels - c0 : 8;
        for (long r = 0; r < rows; r++) {
            const float *src = planes + c0 * planeStride + r * rowStride;
            float *dst = lanes + r * laneRowStride + c0;
            long col = 0;
            if (count == 8) {
                for (; col + 8 <= cols; col += 8) {
                    __m256 v[8];
                    for (int l = 0; l < 8; l++) v[l] = _mm256_loadu_ps(src + l * planeStride + col);
                    transpose8(v);
                    for (int j = 0; j < 8; j++) _mm256_storeu_ps(dst + (col + j) * pixelStride, v[j]);
                }
            }
            for (; col < cols; col++) {
                for (long l = 0; l < count; l++) dst[col * pixelStride + l] = src[l * planeStride + col];
            }
        }
    }
}

AVX2 void dtrain_lanes_to_planes(const float *lanes, long pixelStride, long laneRowStride, float *planes,
                                 long planeStride, long rowStride, long channels, long rows, long cols,
                                 int accumulate) {
    for (long c0 = 0; c0 < channels; c0 += 8) {
        long count = channels - c0 < 8 ? channels - c0 : 8;
        for (long r = 0; r < rows; r++) {
            const float *src = lanes + r * laneRowStride + c0;
            float *dst = planes + c0 * planeStride + r * rowStride;
            long col = 0;
            if (count == 8) {
                for (; col + 8 <= cols; col += 8) {
                    __m256 v[8];
                    for (int j = 0; j < 8; j++) v[j] = _mm256_loadu_ps(src + (col + j) * pixelStride);
                    transpose8(v);
                    for (int l = 0; l < 8; l++) {
                        float *line = dst + l * planeStride + col;
                        _mm256_storeu_ps(line, accumulate ? _mm256_add_ps(_mm256_loadu_ps(line), v[l]) : v[l]);
                    }
                }
            }
            for (; col < cols; col++) {
                for (long l = 0; l < count; l++) {
                    float value = src[col * pixelStride + l];
                    float *target = dst + l * planeStride + col;
                    *target = accumulate ? *target + value : value;
                }
            }
        }
    }
}
