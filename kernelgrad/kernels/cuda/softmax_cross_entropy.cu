// Softmax cross-entropy from logits and integer labels, loss and dlogits in one pass.
//
// Per row, loss = log(sum exp(x - m)) + m - x[label] and
// dlogits = softmax(x) - onehot(label). The row's max m and sum are found in one online
// sweep (each thread keeps a running (max, sum) and rescales its sum when the max grows;
// partial pairs merge the same way), then a second sweep writes dlogits, reading the row
// again from L1/L2. A warp per row for short rows (they stay in L1), a block per row for
// long ones, holding the row in registers up to 32768 classes (softmax_cross_entropy_cached_*);
// 128-bit accesses when rows are 16-byte aligned (`vec`). A label outside [0, C) makes its
// row's loss and dlogits NaN and sets *error (the launcher's device flag; see _module.py):
// no out-of-bounds read, and the host learns of it at its next checked read.
#include "common.cuh"

#define NEG_INF __int_as_float(0xff800000)
#define QNAN __int_as_float(0x7fffffff)

struct MaxSum {
    float m, s;
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
    float m = fmaxf(a.m, b.m);
    // Both maxes -inf: the sums are 0 (empty or masked) or NaN (a NaN logit, which add()
    // puts in the sum, never in the max); adding keeps the NaN whichever lane holds it.
    if (m == NEG_INF) return {m, a.s + b.s};
    return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ void add(MaxSum& a, float x) {
    if (x > a.m) {
        a.s = a.s * expf(a.m - x) + 1.0f;
        a.m = x;
    } else if (x != NEG_INF) {  // a masked logit adds exp(-inf) = 0; with a.m = -inf too,
        a.s += expf(x - a.m);   // exp(-inf - -inf) would be NaN
    }
}

__device__ __forceinline__ MaxSum warp_merge(MaxSum v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        MaxSum other = {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
        v = merge(v, other);
    }
    return v;
}

// One row's online (max, sum) over this thread's elements: lane, lane + step, ...
__device__ __forceinline__ MaxSum row_stats(const float* __restrict__ row, int C, int lane,
                                            int step, int vec) {
    MaxSum a = {NEG_INF, 0.0f};
    int tail = 0;
    if (vec) {
        const float4* r4 = reinterpret_cast<const float4*>(row);
        for (int j = lane; j < C / 4; j += step) {
            float4 v = r4[j];
            add(a, v.x);
            add(a, v.y);
            add(a, v.z);
            add(a, v.w);
        }
        tail = C / 4 * 4;
    }
    for (int j = tail + lane; j < C; j += step) add(a, row[j]);
    return a;
}

__device__ __forceinline__ void row_grad(const float* __restrict__ row, float* __restrict__ drow,
                                         int C, int lane, int step, int vec, float m, float inv,
                                         i64 label, bool bad) {
    int tail = 0;
    if (bad) {
        for (int j = lane; j < C; j += step) drow[j] = QNAN;
        return;
    }
    if (vec) {
        const float4* r4 = reinterpret_cast<const float4*>(row);
        float4* d4 = reinterpret_cast<float4*>(drow);
        for (int j = lane; j < C / 4; j += step) {
            float4 v = r4[j];
            v.x = expf(v.x - m) * inv - (4 * j == label);
            v.y = expf(v.y - m) * inv - (4 * j + 1 == label);
            v.z = expf(v.z - m) * inv - (4 * j + 2 == label);
            v.w = expf(v.w - m) * inv - (4 * j + 3 == label);
            d4[j] = v;
        }
        tail = C / 4 * 4;
    }
    for (int j = tail + lane; j < C; j += step) drow[j] = expf(row[j] - m) * inv - (j == label);
}

__device__ __forceinline__ void row_loss(const float* __restrict__ row, i64 label, int C,
                                         MaxSum t, float* loss, int* error) {
    if (label < 0 || label >= C) {
        *loss = QNAN;
        *error = 1;
    } else {
        *loss = logf(t.s) + (t.m - row[label]);  // m - x first: exact when they are close
    }
}

extern "C" __global__ void softmax_cross_entropy_warp(const float* __restrict__ logits,
                                             const i64* __restrict__ labels,
                                             float* __restrict__ losses,
                                             float* __restrict__ dlogits, int rows, int C,
                                             int vec, int* error) {
    int lane = threadIdx.x & 31;
    int warps = blockDim.x >> 5;
    for (int r = blockIdx.x * warps + (threadIdx.x >> 5); r < rows; r += gridDim.x * warps) {
        const float* row = logits + (i64)r * C;
        MaxSum t = warp_merge(row_stats(row, C, lane, 32, vec));
        i64 label = labels[r];
        bool bad = label < 0 || label >= C;
        if (lane == 0) row_loss(row, label, C, t, losses + r, error);
        row_grad(row, dlogits + (i64)r * C, C, lane, 32, vec, t.m, 1.0f / t.s, label, bad);
    }
}

extern "C" __global__ void softmax_cross_entropy_block(const float* __restrict__ logits,
                                              const i64* __restrict__ labels,
                                              float* __restrict__ losses,
                                              float* __restrict__ dlogits, int rows, int C,
                                              int vec, int* error) {
    __shared__ float part_m[32], part_s[32];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* row = logits + (i64)r * C;
        MaxSum t = warp_merge(row_stats(row, C, threadIdx.x, blockDim.x, vec));
        if (lane == 0) {
            part_m[warp] = t.m;
            part_s[warp] = t.s;
        }
        __syncthreads();
        t = lane < warps ? MaxSum{part_m[lane], part_s[lane]} : MaxSum{NEG_INF, 0.0f};
        t = warp_merge(t);  // every warp merges the partials: no second broadcast needed
        i64 label = labels[r];
        bool bad = label < 0 || label >= C;
        if (threadIdx.x == 0) row_loss(row, label, C, t, losses + r, error);
        row_grad(row, dlogits + (i64)r * C, C, threadIdx.x, blockDim.x, vec, t.m, 1.0f / t.s,
                 label, bad);
        __syncthreads();  // the partials are rewritten for the next row
    }
}

// Rows of up to 32768 classes (1024 threads x 4 x ITEMS), a block per row, each
// value read from memory once: every thread keeps its share of the row in registers
// (ITEMS float4s, or 4 x ITEMS floats when the row is not 16-byte aligned) between the
// statistics and the gradient,
// where softmax_cross_entropy_block reads the row twice and relies on L2 for the second read (at
// 32768 classes, two 1024-thread blocks per SM keep 33 MB of rows in flight on an H100:
// most of its L2). Each thread takes its own max first, so one exp per value serves both
// the sum and the gradient: dlogit = exp(x - m_thread) * exp(m_thread - m) / s.
// ITEMS (float4s per thread, _spec.SOFTMAX_CACHED_FLOAT4S): 8 is 32 registers.
template <bool VEC>
__device__ __forceinline__ void softmax_cross_entropy_cached(const float* __restrict__ logits,
                                                    const i64* __restrict__ labels,
                                                    float* __restrict__ losses,
                                                    float* __restrict__ dlogits, int rows,
                                                    int C, int* error) {
    __shared__ float part_m[32], part_s[32];
    constexpr int N = VEC ? ITEMS : 4 * ITEMS;  // cached loads per thread
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    int loads = VEC ? C >> 2 : C;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* row = logits + (i64)r * C;
        float4 v[ITEMS];
        float* f = reinterpret_cast<float*>(v);  // constant indices only: stays in registers
#pragma unroll
        for (int k = 0, j = threadIdx.x; k < N; ++k, j += blockDim.x) {
            if (VEC) {
                v[k] = j < loads ? reinterpret_cast<const float4*>(row)[j]
                                 : make_float4(NEG_INF, NEG_INF, NEG_INF, NEG_INF);
            } else {
                f[k] = j < loads ? row[j] : NEG_INF;
            }
        }
        float mt = NEG_INF;
#pragma unroll
        for (int k = 0; k < 4 * ITEMS; ++k) mt = fmaxf(mt, f[k]);  // NaN never wins fmaxf
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < 4 * ITEMS; ++k) {
            // a masked value adds 0 even when this thread saw nothing else (mt = -inf);
            // a NaN stays NaN and, through s, reaches the whole row
            f[k] = f[k] == NEG_INF ? 0.0f : expf(f[k] - mt);
            s += f[k];
        }
        MaxSum t = warp_merge(MaxSum{mt, s});
        if (lane == 0) {
            part_m[warp] = t.m;
            part_s[warp] = t.s;
        }
        __syncthreads();
        t = lane < warps ? MaxSum{part_m[lane], part_s[lane]} : MaxSum{NEG_INF, 0.0f};
        t = warp_merge(t);
        i64 label = labels[r];
        bool bad = label < 0 || label >= C;
        if (threadIdx.x == 0) row_loss(row, label, C, t, losses + r, error);
        float scale = bad ? QNAN : expf(mt - t.m) / t.s;
        float* drow = dlogits + (i64)r * C;
#pragma unroll
        for (int k = 0, j = threadIdx.x; k < N; ++k, j += blockDim.x) {
            if (j >= loads) break;  // j only grows
            if (VEC) {
                float4 d = v[k];
                d.x = d.x * scale - (4 * j == label);
                d.y = d.y * scale - (4 * j + 1 == label);
                d.z = d.z * scale - (4 * j + 2 == label);
                d.w = d.w * scale - (4 * j + 3 == label);
                reinterpret_cast<float4*>(drow)[j] = d;
            } else {
                drow[j] = f[k] * scale - (j == label);
            }
        }
        __syncthreads();  // the partials are rewritten for the next row
    }
}

extern "C" __global__ void __launch_bounds__(1024)
    softmax_cross_entropy_cached_vec(const float* __restrict__ logits, const i64* __restrict__ labels,
                            float* __restrict__ losses, float* __restrict__ dlogits, int rows,
                            int C, int* error) {
    softmax_cross_entropy_cached<true>(logits, labels, losses, dlogits, rows, C, error);
}

extern "C" __global__ void __launch_bounds__(1024)
    softmax_cross_entropy_cached_scalar(const float* __restrict__ logits,
                               const i64* __restrict__ labels, float* __restrict__ losses,
                               float* __restrict__ dlogits, int rows, int C, int* error) {
    softmax_cross_entropy_cached<false>(logits, labels, losses, dlogits, rows, C, error);
}
