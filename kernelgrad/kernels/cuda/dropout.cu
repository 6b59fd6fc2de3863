// Inverted dropout with Philox4x32-10 computed in the kernel; the mask is never stored.
// The stream layout is kernels/philox.py's: element i uses word i % 4 of
// philox((b lo, b hi, offset lo, offset hi), (seed lo, seed hi)), b = i / 4, and is kept
// when that word >= threshold. One thread per block of 4 elements: one Philox call, one
// 128-bit load and store when aligned (`vec`). The same code serves the backward pass.
#include "common.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, u32 k0, u32 k1) {
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        u32 hi0 = __umulhi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        u32 hi1 = __umulhi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += PHILOX_W0;  // the bump after the last round is never used
        k1 += PHILOX_W1;
    }
    return c;
}

__device__ __forceinline__ float keep(u32 word, float x, u32 threshold, float scale) {
    return word >= threshold ? x * scale : 0.0f;
}

extern "C" __global__ void dropout(const float* __restrict__ x, float* __restrict__ y, i64 n,
                                   u32 threshold, float scale, u64 seed, u64 offset, int vec) {
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
    u32 o0 = (u32)offset, o1 = (u32)(offset >> 32);
    i64 blocks = (n + 3) / 4;
    for (i64 b = global_thread(); b < blocks; b += grid_threads()) {
        uint4 w = philox4x32_10(make_uint4((u32)b, (u32)((u64)b >> 32), o0, o1), k0, k1);
        i64 i = 4 * b;
        if (vec && i + 4 <= n) {
            float4 v = reinterpret_cast<const float4*>(x)[b];
            v.x = keep(w.x, v.x, threshold, scale);
            v.y = keep(w.y, v.y, threshold, scale);
            v.z = keep(w.z, v.z, threshold, scale);
            v.w = keep(w.w, v.w, threshold, scale);
            reinterpret_cast<float4*>(y)[b] = v;
        } else {
            u32 words[4] = {w.x, w.y, w.z, w.w};
            for (int j = 0; j < 4 && i + j < n; ++j)
                y[i + j] = keep(words[j], x[i + j], threshold, scale);
        }
    }
}
