// dtrain's own AVX-512 kernels for the fully connected layer at small batches (n ≤ 16 samples), compiled with target
// attributes and called only where cpuid says the processor has AVX-512 (the rest of the binary is built for AVX2).
// All matrices are row-major: x [n, k], W [m, k], y and dy [n, m], dx [n, k], dW [m, k]. See SkinnyGEMM.swift.
#pragma once
#include <stdbool.h>

// y[s, o] = Σ_i x[s, i] W[o, i] for the outputs o in [row0, row1) (y overwritten there).
void dtrain_fc_forward_avx512(const float *x, const float *w, float *y, long n, long k, long m, long row0, long row1);

// dW[o, :] = Σ_s dy[s, o] x[s, :] (or += when accumulate) for the rows o in [row0, row1).
void dtrain_fc_weight_gradient_avx512(const float *dy, const float *x, float *dw, long n, long k, long m, long row0,
                                      long row1, bool accumulate);

// dx[s, j] += Σ_o dy[s, o] W[o, j] for every sample and the columns j in [col0, col1).
void dtrain_fc_input_gradient_avx512(const float *dy, const float *w, float *dx, long n, long k, long m, long col0,
                                     long col1);
