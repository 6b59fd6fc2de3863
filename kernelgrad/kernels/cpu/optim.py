"""Fused in-place optimizer steps, as torch.optim defines them: one pass over the
parameter, its gradient and its state; memory bound. Arrays are flat; hyper-parameters
arrive in the parameter's dtype (1 - beta and the like precomputed, since a Python
literal would promote float32 arithmetic to float64); flags are closure constants, so
each variant gets its own vectorized loop. A weight decay of 0 adds nothing, as in
PyTorch: an infinite parameter stays infinite instead of becoming 0 * inf = NaN.

Each step is an element update swept over the arrays by _sweep, which, on builds with
64-byte vectors, asks for the cache lines PREFETCH_BYTES ahead on large parameters:
inside a training step the state was last touched a whole step ago and the parameter
and gradient lines are spread over the caches by the GEMMs. Adam in the wide MLP's step
(batch 512, 784-1024-1024-10; 2 threads), alternated runs: 784x1024 445-514 -> 315-373
us, 1024x1024 619-739 -> 380-409; alone at 16M elements 8.5 -> 7.0-7.4 ms. The haswell
build (32-byte vectors) on the same machine went the other way, 1024x1024 in the step
0.70-0.84 -> 1.05-1.22 ms, all of it from the requests for the parameter's lines (those
for the gradient and the state alone changed nothing either way; page-aligned
parameters did not change it), so builds with narrower vectors keep the plain loop.
"""
import numpy as np
from numba import njit, prange

from ._jit import Specialized, kernel
from ._simd import PREFETCH_BYTES, VECTOR_BYTES, borrowed, prefetch_lines_read, prefetch_lines_write
from ._simd import STREAM_BLOCK as BLOCK

# As for the activations: smaller arrays sit in L2, and one plain loop is faster.
PREFETCH_MIN = 1 << 18
REQUEST_AHEAD = VECTOR_BYTES >= 64  # see the module docstring


@njit(inline="always")
def _sweep(update, param, grad, s0, s1, s2, h):
    """update(param, grad, s0, s1, s2, i, h) for every i: the state arrays s0..s2 are
    written (a step with fewer passes param in their place), grad only read."""
    if not REQUEST_AHEAD or param.size < PREFETCH_MIN:
        for i in prange(param.size):
            update(param, grad, s0, s1, s2, i, h)
        return
    # a state array that is param itself has its lines requested already
    own0, own1, own2 = (s0.ctypes.data != param.ctypes.data, s1.ctypes.data != param.ctypes.data,
                        s2.ctypes.data != param.ctypes.data)
    param, grad = borrowed(param), borrowed(grad)  # block slices without reference counts
    s0, s1, s2 = borrowed(s0), borrowed(s1), borrowed(s2)
    blocks = param.size // BLOCK
    for block in prange(blocks):
        start = block * BLOCK
        ahead = start + PREFETCH_BYTES // param.itemsize
        prefetch_lines_write(param, ahead, BLOCK)
        prefetch_lines_read(grad, ahead, BLOCK)
        if own0:
            prefetch_lines_write(s0, ahead, BLOCK)
        if own1:
            prefetch_lines_write(s1, ahead, BLOCK)
        if own2:
            prefetch_lines_write(s2, ahead, BLOCK)
        end = start + BLOCK
        p, g = param[start:end], grad[start:end]
        a, b, c = s0[start:end], s1[start:end], s2[start:end]
        for i in range(BLOCK):
            update(p, g, a, b, c, i, h)
    start = blocks * BLOCK  # the tail, from 0: no wraparound tests
    p, g = param[start:], grad[start:]
    a, b, c = s0[start:], s1[start:], s2[start:]
    for i in range(p.size):
        update(p, g, a, b, c, i, h)


@njit(inline="always")
def _decayed(g, p, weight_decay):
    """g + weight_decay * p, or g itself when weight_decay is 0 (a select: vectorizes)."""
    return g + weight_decay * p if weight_decay != 0 else g


@Specialized
def sgd_step(use_momentum, nesterov, first_step):
    """sgd_step[use_momentum, nesterov, first_step](...); grad_scale is 1 - dampening."""
    @njit(inline="always")
    def update(param, grad, momentum_buf, _, __, i, h):
        lr, momentum, grad_scale, weight_decay = h
        g = _decayed(grad[i], param[i], weight_decay)
        if use_momentum:
            buf = g if first_step else momentum * momentum_buf[i] + grad_scale * g
            momentum_buf[i] = buf
            g = g + momentum * buf if nesterov else buf
        param[i] -= lr * g

    def sgd_step(param, grad, momentum_buf, lr, momentum, grad_scale, weight_decay):
        _sweep(update, param, grad, momentum_buf, param, param,
               (lr, momentum, grad_scale, weight_decay))
    return sgd_step


@njit(inline="always")
def _adagrad(param, grad, state_sum, _, __, i, h):
    clr, weight_decay, eps = h
    g = _decayed(grad[i], param[i], weight_decay)
    s = state_sum[i] + g * g
    state_sum[i] = s
    param[i] -= clr * g / (np.sqrt(s) + eps)


@kernel
def adagrad_step(param, grad, state_sum, clr, weight_decay, eps):
    _sweep(_adagrad, param, grad, state_sum, param, param, (clr, weight_decay, eps))


@Specialized
def rmsprop_step(use_momentum, centered):
    """rmsprop_step[use_momentum, centered](...)."""
    @njit(inline="always")
    def update(param, grad, square_avg, grad_avg, momentum_buf, i, h):
        lr, alpha, one_minus_alpha, eps, weight_decay, momentum = h
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

    def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buf, lr, alpha,
                     one_minus_alpha, eps, weight_decay, momentum):
        _sweep(update, param, grad, square_avg, grad_avg, momentum_buf,
               (lr, alpha, one_minus_alpha, eps, weight_decay, momentum))
    return rmsprop_step


@njit(inline="always")
def _adam(param, grad, exp_avg, exp_avg_sq, _, i, h):
    (step_size, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay,
     decay_factor, inv_sqrt_bias2) = h
    p = param[i] * decay_factor
    g = _decayed(grad[i], p, weight_decay)
    m = beta1 * exp_avg[i] + one_minus_beta1 * g
    v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    param[i] = p - step_size * m / (np.sqrt(v) * inv_sqrt_bias2 + eps)


@kernel
def adam_step(param, grad, exp_avg, exp_avg_sq, step_size, beta1, one_minus_beta1, beta2,
              one_minus_beta2, eps, weight_decay, decay_factor, inv_sqrt_bias2):
    """Adam when weight_decay is coupled (added to g); AdamW uses decay_factor = 1 - lr wd."""
    _sweep(_adam, param, grad, exp_avg, exp_avg_sq, param,
           (step_size, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay,
            decay_factor, inv_sqrt_bias2))
