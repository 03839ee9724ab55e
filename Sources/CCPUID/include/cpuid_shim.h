// The processor's vendor and SIMD features from the cpuid instruction, which Swift cannot issue itself.
// dtrain reads them to choose OpenBLAS's kernel set and its own SIMD paths at run time (the binary is built for
// AVX2 at most, so it runs on every node).
#pragma once
#include <stdbool.h>

typedef struct {
    char vendor[13];  // "GenuineIntel", "AuthenticAMD", …, NUL-terminated
    unsigned family, model;
    bool sse3, avx, avx2, fma;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512bf16;
    bool osSavesAVX, osSavesAVX512;  // the OS saves the YMM / ZMM registers (XCR0), without which AVX faults
} dtrain_cpu_features;

dtrain_cpu_features dtrain_read_cpu_features(void);

// Single-precision multiply-add rate of the calling thread, in GFLOP/s: the best 20 ms window of `seconds` of
// independent fused multiply-adds (12 accumulators, enough to cover the FMA latency on every core seen). The AVX-512
// variant is compiled for AVX-512 with a target attribute and may only be called where the processor has it.
double dtrain_fma_peak_avx2(double seconds);
double dtrain_fma_peak_avx512(double seconds);
