// Bias gradient: column sums of dy (N, C). A block sums 32 columns over one band of rows:
// 32 x 8 threads, a warp reading 32 consecutive floats of a row (128 bytes) per step.
// With one band the block writes the result; with several (tall dy, too few column
// tiles to fill the GPU) each band writes a partial row and sum_bands adds them up in a
// fixed order, so the result is deterministic (no atomics).
#include "common.cuh"

extern "C" __global__ void bias_grad_bands(const float* __restrict__ dy,
                                           float* __restrict__ out, int N, int C,
                                           int band_rows) {
    __shared__ float part[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * band_rows, r1 = min(N, r0 + band_rows);
    float s = 0.0f;
    if (c < C)
        for (int r = r0 + threadIdx.y; r < r1; r += 8) s += dy[(i64)r * C + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
#pragma unroll
        for (int k = 1; k < 8; ++k) s += part[k][threadIdx.x];
        out[(i64)blockIdx.y * C + c] = s;
    }
}

extern "C" __global__ void sum_bands(const float* __restrict__ partial, float* __restrict__ out,
                                     int bands, int C) {
    for (i64 c = global_thread(); c < C; c += grid_threads()) {
        float s = 0.0f;
        for (int b = 0; b < bands; ++b) s += partial[(i64)b * C + c];
        out[c] = s;
    }
}
