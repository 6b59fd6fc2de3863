// GEMM rungs, float32: C = act(op(A) @ op(B) + bias), op transposing when ta / tb is set.
// A is (M, K), or (K, M) when ta; B is (K, N), or (N, K) when tb; all row-major and
// contiguous, so lda = ta ? M : K and ldb = tb ? K : N. bias is (N,) or null; act is an
// ACT_* id (the linear layer's epilogue, applied to each output as it is written).
// Every tile load is bounds-checked and zero-filled, so any M, N, K is safe.
#include "common.cuh"

__device__ __forceinline__ float epilogue(float acc, const float* __restrict__ bias, int n,
                                          int act, float alpha) {
    return activate(bias ? acc + bias[n] : acc, act, alpha);
}

// ---- rung 1: shared-memory tiles, one output per thread -------------------------------
// 32 x 32 threads. Each operand tile is loaded with the thread's x index along the
// operand's contiguous dimension (coalesced whether or not it is transposed) and stored
// to shared memory in the orientation the product needs; the +1 padding keeps the
// transposed stores free of bank conflicts.
#define TILE 32

extern "C" __global__ void __launch_bounds__(TILE * TILE)
    matmul_tiled(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,
                 const float* __restrict__ bias, int M, int N, int K, int ta, int tb, int act,
                 float alpha) {
    __shared__ float As[TILE][TILE + 1];  // As[m][k]
    __shared__ float Bs[TILE][TILE + 1];  // Bs[k][n]
    int tx = threadIdx.x, ty = threadIdx.y;
    int m0 = blockIdx.x * TILE, n0 = blockIdx.y * TILE;  // grid.x: no 65535 cap on M
    int lda = ta ? M : K, ldb = tb ? K : N;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        if (!ta) {
            int m = m0 + ty, k = k0 + tx;
            As[ty][tx] = (m < M && k < K) ? A[(i64)m * lda + k] : 0.0f;
        } else {
            int m = m0 + tx, k = k0 + ty;
            As[tx][ty] = (m < M && k < K) ? A[(i64)k * lda + m] : 0.0f;
        }
        if (!tb) {
            int k = k0 + ty, n = n0 + tx;
            Bs[ty][tx] = (k < K && n < N) ? B[(i64)k * ldb + n] : 0.0f;
        } else {
            int k = k0 + tx, n = n0 + ty;
            Bs[tx][ty] = (k < K && n < N) ? B[(i64)n * ldb + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE; ++kk) acc += As[ty][kk] * Bs[kk][tx];
        __syncthreads();
    }
    int m = m0 + ty, n = n0 + tx;
    if (m < M && n < N) C[(i64)m * N + n] = epilogue(acc, bias, n, act, alpha);
}

// ---- rung 2: register blocking with 128-bit loads --------------------------------------
// A 128 x 128 tile of C per block of 256 threads, 8 x 8 outputs per thread held in
// registers: per k, 2 + 2 float4 loads from shared memory feed 64 FMAs. The thread's rows
// are {4ty..4ty+3} and {64+4ty..64+4ty+3} (columns likewise), so a warp's float4 reads
// cover contiguous 256-byte runs: no bank conflicts. Shared memory holds both operands
// k-major (As[k][m], Bs[k][n]), double-buffered: the next k-slice's global loads are in
// flight while the current one is multiplied. Global loads are float4 where the operand's
// contiguous dimension is a multiple of 4 and the tile is inside the matrix (vec_a,
// vec_b from the launcher), scalar and zero-filled at the edges.
#define BM 128
#define BN 128
#define BK 8
#define RB_THREADS 256

__device__ __forceinline__ float4 load4_guarded(const float* __restrict__ p, i64 base, int idx,
                                                int limit, bool vec) {
    // p[base + idx .. idx + 3], each element only where idx + j < limit
    if (vec && idx + 4 <= limit) return *reinterpret_cast<const float4*>(p + base + idx);
    float4 r;
    r.x = idx < limit ? p[base + idx] : 0.0f;
    r.y = idx + 1 < limit ? p[base + idx + 1] : 0.0f;
    r.z = idx + 2 < limit ? p[base + idx + 2] : 0.0f;
    r.w = idx + 3 < limit ? p[base + idx + 3] : 0.0f;
    return r;
}

// This thread's 4 values of one operand tile (BK x 128 elements, 4 per thread): along the
// tile's 128-wide side when the operand is stored that way (`wide_contiguous`), else
// along k.
__device__ __forceinline__ float4 load_tile4(const float* __restrict__ X, int ld, int rows,
                                             int cols, int k0, int x0, bool k_rows, bool vec) {
    int t = threadIdx.x;
    if (k_rows) {  // X stored (K, wide): row k = k0 + t / 32, 4 wide elements from x0 + 4 (t % 32)
        int k = k0 + (t >> 5), x = x0 + ((t & 31) << 2);
        if (k >= rows) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        return load4_guarded(X, (i64)k * ld, x, cols, vec);
    }
    // X stored (wide, K): row x = x0 + t / 2, 4 k values from k0 + 4 (t % 2)
    int x = x0 + (t >> 1), k = k0 + ((t & 1) << 2);
    if (x >= rows) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    return load4_guarded(X, (i64)x * ld, k, cols, vec);
}

__device__ __forceinline__ void store_tile4(float (*S)[BM], float4 v, bool k_rows) {
    int t = threadIdx.x;
    if (k_rows) {
        *reinterpret_cast<float4*>(&S[t >> 5][(t & 31) << 2]) = v;
    } else {
        int x = t >> 1, k = (t & 1) << 2;
        S[k][x] = v.x;
        S[k + 1][x] = v.y;
        S[k + 2][x] = v.z;
        S[k + 3][x] = v.w;
    }
}

extern "C" __global__ void __launch_bounds__(RB_THREADS)
    matmul_regblock(const float* __restrict__ A, const float* __restrict__ B,
                    float* __restrict__ C, const float* __restrict__ bias, int M, int N, int K,
                    int ta, int tb, int act, float alpha, int vec_a, int vec_b, int vec_c) {
    __shared__ __align__(16) float As[2][BK][BM];
    __shared__ __align__(16) float Bs[2][BK][BN];
    int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    int lda = ta ? M : K, ldb = tb ? K : N;
    // A's tile: k-rows when A is stored (K, M) (ta); B's when B is stored (K, N) (!tb).
    int a_rows = ta ? K : M, a_cols = ta ? M : K;
    int b_rows = tb ? N : K, b_cols = tb ? K : N;
    int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    float4 ra = load_tile4(A, lda, a_rows, a_cols, 0, m0, ta, vec_a);
    float4 rb = load_tile4(B, ldb, b_rows, b_cols, 0, n0, !tb, vec_b);
    store_tile4(As[0], ra, ta);
    store_tile4(Bs[0], rb, !tb);
    __syncthreads();

    int tiles = (K + BK - 1) / BK;
    for (int t = 0; t < tiles; ++t) {
        int cur = t & 1;
        bool more = t + 1 < tiles;
        if (more) {
            int k0 = (t + 1) * BK;
            ra = load_tile4(A, lda, a_rows, a_cols, k0, m0, ta, vec_a);
            rb = load_tile4(B, ldb, b_rows, b_cols, k0, n0, !tb, vec_b);
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float4 a0 = *reinterpret_cast<const float4*>(&As[cur][kk][ty * 4]);
            float4 a1 = *reinterpret_cast<const float4*>(&As[cur][kk][64 + ty * 4]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][kk][tx * 4]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][kk][64 + tx * 4]);
            float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        if (more) {
            store_tile4(As[cur ^ 1], ra, ta);
            store_tile4(Bs[cur ^ 1], rb, !tb);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 8; ++i) {
        int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
        if (m >= M) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            int n = n0 + h * 64 + tx * 4;
            float4 v = make_float4(epilogue(acc[i][4 * h], bias, min(n, N - 1), act, alpha),
                                   epilogue(acc[i][4 * h + 1], bias, min(n + 1, N - 1), act, alpha),
                                   epilogue(acc[i][4 * h + 2], bias, min(n + 2, N - 1), act, alpha),
                                   epilogue(acc[i][4 * h + 3], bias, min(n + 3, N - 1), act, alpha));
            float* row = C + (i64)m * N;
            if (vec_c && n + 4 <= N) {
                *reinterpret_cast<float4*>(row + n) = v;
            } else {
                if (n < N) row[n] = v.x;
                if (n + 1 < N) row[n + 1] = v.y;
                if (n + 2 < N) row[n + 2] = v.z;
                if (n + 3 < N) row[n + 3] = v.w;
            }
        }
    }
}
