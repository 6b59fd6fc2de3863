// Tensor-core GEMM rung: mma.sync m16n8k8 with TF32 inputs, float32 accumulation,
// operands streamed into shared memory by cp.async in a STAGES-deep pipeline. Same contract
// as matmul.cu: C = act(op(A) @ op(B) + bias), float32 arrays, any M, N, K (chunks past an
// edge are zero-filled by cp.async's src-size operand).
//
// A 128 x 128 tile of C per block of 8 warps (2 along M x 4 along N); a warp owns 64 x 32
// of it as 4 x 4 mma tiles. Each operand tile keeps its global orientation in shared
// memory, so every cp.async moves 16 contiguous bytes (4 bytes per element when a row's
// start is not 16-byte aligned: `vec` = 0). The row paddings (+4 floats on 32-wide k
// rows, +8 on 128-wide rows) make the fragment reads of both orientations conflict-free.
// Inputs are rounded to TF32 (cvt.rna) as fragments are built.
//
// Shared memory: STAGES x 2 operands x TC_TILE floats = 36,864 B per stage. Three stages
// (110,592 B) fit the opt-in limit of sm_80 and sm_90 (163 KiB, 227 KiB per block); sm_86,
// sm_89 and sm_120 allow 101,376 B, so the launcher (matmul.py) takes the 2-stage build
// there. The STAGES - 1 tiles in flight hide global latency; 2 stages leave one.
//
// Napkin math for an H100/H200 SXM (132 SMs, ~1.83 GHz): dense TF32 peaks near 495
// TFLOP/s, 1024 FMA per clock per SM, i.e. one m16n8k8 mma per SM-clock. Per k-step of 8 a
// warp issues 16 mma and 24 four-byte shared-memory loads (16 for A, 8 for B), each one
// 128-byte wavefront when conflict-free; an SM serves one wavefront per clock, so the loads
// alone cap the rung near 16/24 = 2/3 of peak, before the 24 cvt.rna and mma.sync's own
// ceiling on Hopper (wgmma is its full-rate path). ldmatrix.x4 (four 8x8 tiles per
// instruction) and wgmma are the next steps; none of this has been measured on a GPU.

#include "common.cuh"
#include "ptx.cuh"

#define TC_BM 128
#define TC_BN 128
#define TC_BK 32
#define TC_THREADS 256
#define K_ROW (TC_BK + 4)    // stride of a tile stored with k contiguous
#define W_ROW (TC_BM + 8)    // stride of a tile stored with m (or n) contiguous
// floats per operand per stage: room for either orientation
#define TC_TILE (TC_BM * K_ROW > TC_BK * W_ROW ? TC_BM * K_ROW : TC_BK * W_ROW)

// One operand tile, ROWS x COLS in its stored orientation (COLS contiguous in global and
// shared memory), from X (rows x cols, leading dimension ld) at (row0, col0).
template <int ROWS, int COLS, int STRIDE>
__device__ __forceinline__ void load_tile(float* dst, const float* __restrict__ X, int ld,
                                          int rows, int cols, int row0, int col0, int vec) {
    constexpr int CHUNKS = ROWS * COLS / 4;
#pragma unroll
    for (int c = threadIdx.x; c < CHUNKS; c += TC_THREADS) {
        int r = c / (COLS / 4), cc = (c % (COLS / 4)) * 4;
        int row = row0 + r, col = col0 + cc;
        float* d = dst + r * STRIDE + cc;
        int valid = row < rows ? min(max(cols - col, 0), 4) : 0;
        const float* src = X + (i64)row * ld + col;
        if (vec) {
            cp_async16(d, valid ? src : X, 4 * valid);  // src-size 0: nothing is read
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) cp_async4(d + j, j < valid ? src + j : X, j < valid ? 4 : 0);
        }
    }
}

template <bool TA, bool TB, int STAGES>
__device__ void matmul_tc(const float* __restrict__ A, const float* __restrict__ B,
                          float* __restrict__ C, const float* __restrict__ bias, int M, int N,
                          int K, int act, float alpha, int vec_a, int vec_b, int vec_c) {
    extern __shared__ __align__(16) float smem[];
    int m0 = blockIdx.x * TC_BM, n0 = blockIdx.y * TC_BN;
    int lda = TA ? M : K, ldb = TB ? K : N;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
    int g = lane >> 2, t = lane & 3;

    auto stage_a = [&](int s) { return smem + s * 2 * TC_TILE; };
    auto stage_b = [&](int s) { return smem + s * 2 * TC_TILE + TC_TILE; };
    auto load_stage = [&](int s, int k0) {
        if (TA) load_tile<TC_BK, TC_BM, W_ROW>(stage_a(s), A, lda, K, M, k0, m0, vec_a);
        else load_tile<TC_BM, TC_BK, K_ROW>(stage_a(s), A, lda, M, K, m0, k0, vec_a);
        if (TB) load_tile<TC_BN, TC_BK, K_ROW>(stage_b(s), B, ldb, N, K, n0, k0, vec_b);
        else load_tile<TC_BK, TC_BN, W_ROW>(stage_b(s), B, ldb, K, N, k0, n0, vec_b);
    };
    // op(A)[m][k] and op(B)[k][n] within a stage
    auto a_at = [&](const float* As, int m, int k) { return TA ? As[k * W_ROW + m] : As[m * K_ROW + k]; };
    auto b_at = [&](const float* Bs, int k, int n) { return TB ? Bs[n * K_ROW + k] : Bs[k * W_ROW + n]; };

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

    int tiles = (K + TC_BK - 1) / TC_BK;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < tiles) load_stage(s, s * TC_BK);
        cp_async_commit();  // an empty group keeps the wait counts uniform
    }
    for (int tile = 0; tile < tiles; ++tile) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // this tile has landed for every thread; the oldest stage is free
        int next = tile + STAGES - 1;
        if (next < tiles) load_stage(next % STAGES, next * TC_BK);
        cp_async_commit();
        const float* As = stage_a(tile % STAGES);
        const float* Bs = stage_b(tile % STAGES);
#pragma unroll
        for (int kk = 0; kk < TC_BK; kk += 8) {
            u32 a[4][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                int r = wm + i * 16 + g;
                a[i][0] = to_tf32(a_at(As, r, kk + t));
                a[i][1] = to_tf32(a_at(As, r + 8, kk + t));
                a[i][2] = to_tf32(a_at(As, r, kk + t + 4));
                a[i][3] = to_tf32(a_at(As, r + 8, kk + t + 4));
            }
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int n = wn + j * 8 + g;
                b[j][0] = to_tf32(b_at(Bs, kk + t, n));
                b[j][1] = to_tf32(b_at(Bs, kk + t + 4, n));
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) mma_tf32(acc[i][j], a[i], b[j]);
        }
    }
    cp_async_wait<0>();  // no copy may still target shared memory when the block exits

    // c0, c1: row g, columns 2t, 2t + 1; c2, c3: row g + 8
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            int m = m0 + wm + i * 16 + g + 8 * h;
            if (m >= M) continue;
            float* row = C + (i64)m * N;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                int n = n0 + wn + j * 8 + 2 * t;
                float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
                if (vec_c && n + 2 <= N) {
                    *reinterpret_cast<float2*>(row + n) =
                        make_float2(activate(bias ? v0 + bias[n] : v0, act, alpha),
                                    activate(bias ? v1 + bias[n + 1] : v1, act, alpha));
                } else {
                    if (n < N) row[n] = activate(bias ? v0 + bias[n] : v0, act, alpha);
                    if (n + 1 < N) row[n + 1] = activate(bias ? v1 + bias[n + 1] : v1, act, alpha);
                }
            }
        }
}

#define TC_KERNEL(NAME, TA, TB, STAGES)                                                     \
    extern "C" __global__ void __launch_bounds__(TC_THREADS)                                \
        NAME(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, \
             const float* __restrict__ bias, int M, int N, int K, int act, float alpha,      \
             int vec_a, int vec_b, int vec_c) {                                              \
        matmul_tc<TA, TB, STAGES>(A, B, C, bias, M, N, K, act, alpha, vec_a, vec_b, vec_c); \
    }

TC_KERNEL(matmul_tf32_nn_s3, false, false, 3)
TC_KERNEL(matmul_tf32_nt_s3, false, true, 3)
TC_KERNEL(matmul_tf32_tn_s3, true, false, 3)
TC_KERNEL(matmul_tf32_tt_s3, true, true, 3)
TC_KERNEL(matmul_tf32_nn_s2, false, false, 2)
TC_KERNEL(matmul_tf32_nt_s2, false, true, 2)
TC_KERNEL(matmul_tf32_tn_s2, true, false, 2)
TC_KERNEL(matmul_tf32_tt_s2, true, true, 2)
