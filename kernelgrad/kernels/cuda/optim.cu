// Fused in-place optimizer steps, as torch.optim defines them and as kernels/cpu/optim.py
// computes them: one grid-stride pass over a parameter, its gradient and its state.
// Hyper-parameters arrive precomputed (lr / bias correction and the like); flags are
// kernel arguments, uniform across the grid, so their branches cost nothing.
#include "common.cuh"

extern "C" __global__ void sgd_step(float* __restrict__ param, const float* __restrict__ grad,
                                    float* __restrict__ buf, i64 n, float lr, float momentum,
                                    float grad_scale, float weight_decay, int use_momentum,
                                    int nesterov, int first_step) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float p = param[i];
        float g = grad[i] + weight_decay * p;
        if (use_momentum) {
            float b = first_step ? g : momentum * buf[i] + grad_scale * g;
            buf[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param[i] = p - lr * g;
    }
}

extern "C" __global__ void adagrad_step(float* __restrict__ param, const float* __restrict__ grad,
                                        float* __restrict__ state_sum, i64 n, float clr,
                                        float weight_decay, float eps) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float p = param[i];
        float g = grad[i] + weight_decay * p;
        float s = state_sum[i] + g * g;
        state_sum[i] = s;
        param[i] = p - clr * g / (sqrtf(s) + eps);
    }
}

extern "C" __global__ void rmsprop_step(float* __restrict__ param, const float* __restrict__ grad,
                                        float* __restrict__ square_avg,
                                        float* __restrict__ grad_avg,
                                        float* __restrict__ momentum_buf, i64 n, float lr,
                                        float alpha, float eps, float weight_decay,
                                        float momentum, int use_momentum, int centered) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float p = param[i];
        float g = grad[i] + weight_decay * p;
        float sq = alpha * square_avg[i] + (1.0f - alpha) * g * g;
        square_avg[i] = sq;
        float avg;
        if (centered) {
            float ga = alpha * grad_avg[i] + (1.0f - alpha) * g;
            grad_avg[i] = ga;
            avg = sqrtf(sq - ga * ga) + eps;
        } else {
            avg = sqrtf(sq) + eps;
        }
        if (use_momentum) {
            float b = momentum * momentum_buf[i] + g / avg;
            momentum_buf[i] = b;
            param[i] = p - lr * b;
        } else {
            param[i] = p - lr * g / avg;
        }
    }
}

// Adam (weight decay added to the gradient) or AdamW (decay_factor = 1 - lr wd applied to
// the parameter first, weight_decay = 0).
extern "C" __global__ void adam_step(float* __restrict__ param, const float* __restrict__ grad,
                                     float* __restrict__ exp_avg, float* __restrict__ exp_avg_sq,
                                     i64 n, float step_size, float beta1, float beta2, float eps,
                                     float weight_decay, float decay_factor,
                                     float inv_sqrt_bias2) {
    for (i64 i = global_thread(); i < n; i += grid_threads()) {
        float p = param[i] * decay_factor;
        float g = grad[i] + weight_decay * p;
        float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
        float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p - step_size * m / (sqrtf(v) * inv_sqrt_bias2 + eps);
    }
}
