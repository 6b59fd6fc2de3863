// Elementwise losses with their gradients, one pass: binary cross-entropy with logits and
// MSE. Grid-stride loops; memory bound (two reads and two writes per element).
#include "common.cuh"

// Binary cross-entropy with logits: loss = max(z, 0) - z t + log1p(exp(-|z|)), stable for
// any z; dlogits = sigmoid(z) - t.
extern "C" __global__ void binary_cross_entropy_with_logits(const float* __restrict__ z,
                                           const float* __restrict__ t,
                                           float* __restrict__ loss, float* __restrict__ grad,
                                           i64 n) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float x = z[i], y = t[i];
        float e = expf(-fabsf(x));
        loss[i] = fmaxf(x, 0.0f) - x * y + log1pf(e);
        float s = x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        grad[i] = s - y;
    }
}

// Mean squared error, per element: loss = (p - t)^2, grad = 2 (p - t).
extern "C" __global__ void mse(const float* __restrict__ p, const float* __restrict__ t,
                               float* __restrict__ loss, float* __restrict__ grad, i64 n) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float d = p[i] - t[i];
        loss[i] = d * d;
        grad[i] = 2.0f * d;
    }
}
