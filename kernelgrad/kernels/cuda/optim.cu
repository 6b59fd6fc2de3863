// Fused in-place optimizer steps, as torch.optim defines them and as kernels/cpu/optim.py
// computes them: one pass over each parameter, its gradient and its state.
//
// One launch updates up to TENSORS parameters (PyTorch's foreach / multi_tensor_apply). The
// tensors arrive as kernel parameters, not as a pointer table in device memory, so a launch
// needs no host-to-device copy and can be captured into a CUDA graph; CuPy passes only
// scalars and pointers, hence the flat parameter list that TENSOR_PARAMS spells out. Tensor
// i owns blocks [first_i, first_{i+1}) of the grid and loops over its elements with that
// many blocks; unused slots have first = gridDim.x and are never picked.
//
// Hyper-parameters arrive precomputed, the same for every tensor of a launch: lr / bias
// correction, 1 - beta and the like (1 - beta2 taken here from beta2 rounded to float32
// would be 1.3e-5 off for beta2 = 0.999; the CPU kernels and PyTorch take it in double).
// Flags are kernel arguments, uniform across the grid, so their branches cost nothing.
#include "common.cuh"

// TENSORS and FOR_EACH_TENSOR(X) (X(0) ... X(TENSORS - 1)) come from _spec.py.

// param, grad, up to three state arrays (null when unused), element count, first block
#define TENSOR_PARAM(i)                                                                      \
    float *__restrict__ p##i, const float *__restrict__ g##i, float *__restrict__ sa##i,     \
        float *__restrict__ sb##i, float *__restrict__ sc##i, i64 n##i, int first##i,
#define TENSOR_PARAMS FOR_EACH_TENSOR(TENSOR_PARAM)

struct Tensor {
    float* p;
    const float* g;
    float* sa;
    float* sb;
    float* sc;
    i64 n;
};

// This block's tensor and its block range [first, last). The firsts ascend, so the last
// slot whose first <= blockIdx.x is it and the next first ends it. Constant slot indices
// only: indexing the parameters by a runtime value would copy them to local memory.
#define PICK(i)                                                                              \
    if ((int)blockIdx.x >= first##i) {                                                       \
        t = Tensor{p##i, g##i, sa##i, sb##i, sc##i, n##i};                                   \
        first = first##i;                                                                    \
    } else {                                                                                 \
        last = min(last, first##i);                                                          \
    }
#define PICK_TENSOR                                                                          \
    Tensor t = Tensor{nullptr, nullptr, nullptr, nullptr, nullptr, 0};                       \
    int first = 0, last = gridDim.x;                                                         \
    FOR_EACH_TENSOR(PICK)                                                                    \
    i64 stride = (i64)(last - first) * blockDim.x;                                           \
    for (i64 i = (i64)(blockIdx.x - first) * blockDim.x + threadIdx.x; i < t.n; i += stride)

// g + weight_decay * p, or g when weight_decay is 0: an infinite p then stays infinite, as
// in PyTorch, where 0 * inf would make it NaN.
__device__ __forceinline__ float decayed(float g, float p, float weight_decay) {
    return weight_decay != 0.0f ? g + weight_decay * p : g;
}

// sa: momentum buffer
extern "C" __global__ void sgd_step(TENSOR_PARAMS float lr, float momentum, float grad_scale,
                                    float weight_decay, int use_momentum, int nesterov,
                                    int first_step) {
    PICK_TENSOR {
        float p = t.p[i];
        float g = decayed(t.g[i], p, weight_decay);
        if (use_momentum) {
            float b = first_step ? g : momentum * t.sa[i] + grad_scale * g;
            t.sa[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        t.p[i] = p - lr * g;
    }
}

// sa: sum of squared gradients
extern "C" __global__ void adagrad_step(TENSOR_PARAMS float clr, float weight_decay, float eps) {
    PICK_TENSOR {
        float p = t.p[i];
        float g = decayed(t.g[i], p, weight_decay);
        float s = t.sa[i] + g * g;
        t.sa[i] = s;
        t.p[i] = p - clr * g / (sqrtf(s) + eps);
    }
}

// sa: square average; sb: gradient average (centered); sc: momentum buffer
extern "C" __global__ void rmsprop_step(TENSOR_PARAMS float lr, float alpha,
                                        float one_minus_alpha, float eps, float weight_decay,
                                        float momentum, int use_momentum, int centered) {
    PICK_TENSOR {
        float p = t.p[i];
        float g = decayed(t.g[i], p, weight_decay);
        float sq = alpha * t.sa[i] + one_minus_alpha * g * g;
        t.sa[i] = sq;
        float avg;
        if (centered) {
            float ga = alpha * t.sb[i] + one_minus_alpha * g;
            t.sb[i] = ga;
            // sq >= ga^2 exactly; rounding can leave the difference a little negative,
            // whose sqrtf is NaN. A NaN difference stays NaN. __fmul_rn keeps NVRTC from
            // contracting this into an FMA: the CPU and PyTorch round ga * ga first, and
            // where it overflows (|g| ~ 3e38) inf - inf is NaN there, not inf.
            float spread = sq - __fmul_rn(ga, ga);
            avg = sqrtf(spread < 0.0f ? 0.0f : spread) + eps;
        } else {
            avg = sqrtf(sq) + eps;
        }
        if (use_momentum) {
            float b = momentum * t.sc[i] + g / avg;
            t.sc[i] = b;
            t.p[i] = p - lr * b;
        } else {
            t.p[i] = p - lr * g / avg;
        }
    }
}

// Adam (weight decay added to the gradient) or AdamW (decay_factor = 1 - lr wd applied to
// the parameter first, weight_decay = 0). sa: exp_avg; sb: exp_avg_sq.
extern "C" __global__ void adam_step(TENSOR_PARAMS float step_size, float beta1,
                                     float one_minus_beta1, float beta2, float one_minus_beta2,
                                     float eps, float weight_decay, float decay_factor,
                                     float inv_sqrt_bias2) {
    PICK_TENSOR {
        float p = t.p[i] * decay_factor;
        float g = decayed(t.g[i], p, weight_decay);
        float m = beta1 * t.sa[i] + one_minus_beta1 * g;
        float v = beta2 * t.sb[i] + one_minus_beta2 * g * g;
        t.sa[i] = m;
        t.sb[i] = v;
        t.p[i] = p - step_size * m / (sqrtf(v) * inv_sqrt_bias2 + eps);
    }
}
