// Device helpers shared by kernelgrad's CUDA kernels. The launcher (_module.py) pastes this
// file in place of `#include "common.cuh"`, so a kernel's compile-cache key covers it.
// NVRTC compiles without system headers: only built-in types and CUDA intrinsics here.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

// ACT_* (activation ids), TENSORS and ITEMS come from kernels/_spec.py as #define lines
// that _module.source() puts first.

#define GELU_2C 1.5957691216057308f  // 2 sqrt(2 / pi)
#define GELU_A 0.044715f

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// act(x); `act` is a compile-time constant in the elementwise kernels (templates) and a
// warp-uniform runtime value in the GEMM epilogue, where the switch costs nothing.
__device__ __forceinline__ float activate(float x, int act, float alpha) {
    switch (act) {
    case ACT_RELU: return x <= 0.0f ? 0.0f : x;  // NaN passes through, as on the CPU
    case ACT_SIGMOID: return sigmoidf_(x);
    case ACT_TANH: return tanhf(x);
    case ACT_LEAKY_RELU: return x <= 0.0f ? alpha * x : x;
    // 0.5 x (1 + tanh u) = x sigmoid(2u): the same function, without cancellation
    case ACT_GELU: return x * sigmoidf_(GELU_2C * (x + GELU_A * x * x * x));
    default: return x;
    }
}

// dL/dx from dL/dy and `saved`: the forward output y, or for gelu the input x.
__device__ __forceinline__ float activate_grad(float dy, float saved, int act, float alpha) {
    switch (act) {
    case ACT_RELU: return saved > 0.0f ? dy : 0.0f;
    case ACT_SIGMOID: return dy * saved * (1.0f - saved);
    case ACT_TANH: return dy * ((1.0f - saved) * (1.0f + saved));  // exact near |y| = 1
    case ACT_LEAKY_RELU: return saved > 0.0f ? dy : alpha * dy;
    case ACT_GELU: {
        float x = saved;
        float s = sigmoidf_(GELU_2C * (x + GELU_A * x * x * x));
        float ds = s * (1.0f - s);
        // Where ds is 0 (|x| past ~5) so is the term; x * dinner alone may be inf there
        // (|x| >= ~5e19), and inf * 0 would make the gradient NaN. NaN stays NaN.
        float dinner = GELU_2C * (1.0f + 3.0f * GELU_A * x * x);
        return dy * (s + (ds == 0.0f ? 0.0f : x * ds * dinner));
    }
    default: return dy;
    }
}

// Grid-stride loops: the launcher sizes the grid to fill the GPU, not to cover n.
__device__ __forceinline__ i64 global_thread() {
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ i64 grid_threads() { return (i64)gridDim.x * blockDim.x; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
