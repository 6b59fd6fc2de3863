"""Fused in-place optimizer steps, as torch.optim defines them: one pass over the
parameter, its gradient and its state; memory bound. Arrays are flat; hyper-parameters
arrive in the parameter's dtype (1 - beta and the like precomputed, since a Python
literal would promote float32 arithmetic to float64); flags are closure constants, so
each variant gets its own vectorized loop. A weight decay of 0 adds nothing, as in
PyTorch: an infinite parameter stays infinite instead of becoming 0 * inf = NaN.
"""
import numpy as np
from numba import njit, prange

from ._jit import Specialized, kernel


@njit(inline="always")
def _decayed(g, p, weight_decay):
    """g + weight_decay * p, or g itself when weight_decay is 0 (a select: vectorizes)."""
    return g + weight_decay * p if weight_decay != 0 else g


@Specialized
def sgd_step(use_momentum, nesterov, first_step):
    """sgd_step[use_momentum, nesterov, first_step](...); grad_scale is 1 - dampening."""
    def sgd_step(param, grad, momentum_buf, lr, momentum, grad_scale, weight_decay):
        for i in prange(param.size):
            g = _decayed(grad[i], param[i], weight_decay)
            if use_momentum:
                buf = g if first_step else momentum * momentum_buf[i] + grad_scale * g
                momentum_buf[i] = buf
                g = g + momentum * buf if nesterov else buf
            param[i] -= lr * g
    return sgd_step


@kernel
def adagrad_step(param, grad, state_sum, clr, weight_decay, eps):
    for i in prange(param.size):
        g = _decayed(grad[i], param[i], weight_decay)
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] -= clr * g / (np.sqrt(s) + eps)


@Specialized
def rmsprop_step(use_momentum, centered):
    """rmsprop_step[use_momentum, centered](...)."""
    def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buf, lr, alpha,
                     one_minus_alpha, eps, weight_decay, momentum):
        for i in prange(param.size):
            g = _decayed(grad[i], param[i], weight_decay)
            sq = alpha * square_avg[i] + one_minus_alpha * g * g
            square_avg[i] = sq
            if centered:
                ga = alpha * grad_avg[i] + one_minus_alpha * g
                grad_avg[i] = ga
                # sq >= ga^2 in exact arithmetic; rounding can make the difference a
                # little negative, and sqrt of that is NaN (NaN itself passes through)
                spread = sq - ga * ga
                avg = np.sqrt(0 * spread if spread < 0 else spread) + eps
            else:
                avg = np.sqrt(sq) + eps
            if use_momentum:
                buf = momentum * momentum_buf[i] + g / avg
                momentum_buf[i] = buf
                param[i] -= lr * buf
            else:
                param[i] -= lr * g / avg
    return rmsprop_step


@kernel
def adam_step(param, grad, exp_avg, exp_avg_sq, step_size, beta1, one_minus_beta1, beta2,
              one_minus_beta2, eps, weight_decay, decay_factor, inv_sqrt_bias2):
    """Adam when weight_decay is coupled (added to g); AdamW uses decay_factor = 1 - lr wd."""
    for i in prange(param.size):
        p = param[i] * decay_factor
        g = _decayed(grad[i], p, weight_decay)
        m = beta1 * exp_avg[i] + one_minus_beta1 * g
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = p - step_size * m / (np.sqrt(v) * inv_sqrt_bias2 + eps)
