// Elementwise activations, forward and backward: grid-stride, 128-bit loads and stores
// when the launcher found every pointer 16-byte aligned (`vec`), scalar otherwise.
// Memory bound: one read per input, one write, nothing else.
#include "common.cuh"

template <int ACT>
__device__ void act_forward(const float* __restrict__ x, float* __restrict__ y, i64 n,
                            float alpha, int vec) {
    i64 start = global_thread(), stride = grid_threads(), tail = 0;
    if (vec) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        float4* y4 = reinterpret_cast<float4*>(y);
        for (i64 i = start; i < n / 4; i += stride) {
            float4 v = x4[i];
            v.x = activate(v.x, ACT, alpha);
            v.y = activate(v.y, ACT, alpha);
            v.z = activate(v.z, ACT, alpha);
            v.w = activate(v.w, ACT, alpha);
            y4[i] = v;
        }
        tail = n / 4 * 4;
    }
    for (i64 i = tail + start; i < n; i += stride) y[i] = activate(x[i], ACT, alpha);
}

template <int ACT>
__device__ void act_backward(const float* __restrict__ dy, const float* __restrict__ saved,
                             float* __restrict__ dx, i64 n, float alpha, int vec) {
    i64 start = global_thread(), stride = grid_threads(), tail = 0;
    if (vec) {
        const float4* g4 = reinterpret_cast<const float4*>(dy);
        const float4* s4 = reinterpret_cast<const float4*>(saved);
        float4* d4 = reinterpret_cast<float4*>(dx);
        for (i64 i = start; i < n / 4; i += stride) {
            float4 g = g4[i], s = s4[i];
            g.x = activate_grad(g.x, s.x, ACT, alpha);
            g.y = activate_grad(g.y, s.y, ACT, alpha);
            g.z = activate_grad(g.z, s.z, ACT, alpha);
            g.w = activate_grad(g.w, s.w, ACT, alpha);
            d4[i] = g;
        }
        tail = n / 4 * 4;
    }
    for (i64 i = tail + start; i < n; i += stride)
        dx[i] = activate_grad(dy[i], saved[i], ACT, alpha);
}

#define ACTIVATION_KERNELS(NAME, ID)                                                        \
    extern "C" __global__ void NAME##_forward(const float* __restrict__ x,                 \
                                              float* __restrict__ y, i64 n, float alpha,    \
                                              int vec) {                                     \
        act_forward<ID>(x, y, n, alpha, vec);                                                \
    }                                                                                        \
    extern "C" __global__ void NAME##_backward(const float* __restrict__ dy,               \
                                               const float* __restrict__ saved,             \
                                               float* __restrict__ dx, i64 n, float alpha,  \
                                               int vec) {                                    \
        act_backward<ID>(dy, saved, dx, n, alpha, vec);                                      \
    }

ACTIVATION_KERNELS(relu, ACT_RELU)
ACTIVATION_KERNELS(sigmoid, ACT_SIGMOID)
ACTIVATION_KERNELS(tanh, ACT_TANH)
ACTIVATION_KERNELS(leaky_relu, ACT_LEAKY_RELU)
ACTIVATION_KERNELS(gelu, ACT_GELU)

// The cuBLAS rung's epilogue (matmul.py's "cublas"): C = act(C + bias) in place, one pass
// over C instead of a bias add and an activation, each reading and writing all of it.
// Rows are blockIdx.y's (no index division per element); `vec` when N % 4 == 0 and C and
// bias are 16-byte aligned. act is uniform over the grid, so its switch costs nothing.
extern "C" __global__ void bias_activation(float* __restrict__ c, const float* __restrict__ bias,
                                           int M, int N, int act, float alpha, int vec) {
    int cols = vec ? N / 4 : N;
    for (int r = blockIdx.y; r < M; r += gridDim.y) {
        float* row = c + (i64)r * N;
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += gridDim.x * blockDim.x) {
            if (vec) {
                float4 v = reinterpret_cast<float4*>(row)[j];
                float4 b = bias ? reinterpret_cast<const float4*>(bias)[j]
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                v.x = activate(v.x + b.x, act, alpha);
                v.y = activate(v.y + b.y, act, alpha);
                v.z = activate(v.z + b.z, act, alpha);
                v.w = activate(v.w + b.w, act, alpha);
                reinterpret_cast<float4*>(row)[j] = v;
            } else {
                row[j] = activate(bias ? row[j] + bias[j] : row[j], act, alpha);
            }
        }
    }
}
