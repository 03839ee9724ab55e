#include "cpuid_shim.h"
#include <immintrin.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The rate is taken over windows of WINDOW seconds, the best window wins. Windows of a few thousand rounds
// (25 µs) made the best one an outlier: 217–230 GFLOP/s here, where ../shared/bench/peak_flops (best of five
// 0.2 s runs) measured 182–186 in the same minutes; 20 ms windows agree with it (docs/performance.md).
#define ROUNDS 4096
#define WINDOW 0.02

__attribute__((target("avx2,fma")))
double dtrain_fma_peak_avx2(double seconds) {
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double best = 0, end = now() + seconds;
    do {
        double t0 = now(), t;
        long rounds = 0;
        do {
            for (int r = 0; r < ROUNDS; r++)
                for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
            rounds += ROUNDS;
            t = now() - t0;
        } while (t < WINDOW);
        double rate = 2.0 * 8 * 12 * rounds / t / 1e9;
        if (rate > best) best = rate;
    } while (now() < end);
    float sink = 0;  // keep the accumulators alive
    for (int i = 0; i < 12; i++) sink += _mm256_cvtss_f32(a[i]);
    return best + (sink == 12345.f ? 1e-30 : 0);
}

__attribute__((target("avx512f")))
double dtrain_fma_peak_avx512(double seconds) {
    __m512 a[12], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    double best = 0, end = now() + seconds;
    do {
        double t0 = now(), t;
        long rounds = 0;
        do {
            for (int r = 0; r < ROUNDS; r++)
                for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
            rounds += ROUNDS;
            t = now() - t0;
        } while (t < WINDOW);
        double rate = 2.0 * 16 * 12 * rounds / t / 1e9;
        if (rate > best) best = rate;
    } while (now() < end);
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_cvtss_f32(a[i]);
    return best + (sink == 12345.f ? 1e-30 : 0);
}
