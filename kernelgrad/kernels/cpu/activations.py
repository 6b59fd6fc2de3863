"""Elementwise activations, forward and backward: one pass, vectorized, memory bound.

`act` is a compile-time constant (one kernel per activation), so each activation gets
its own vectorized loop (a runtime branch in the loop body blocks LLVM's vectorizer).
Arrays are flat (the launcher ravels them).
"""
from numba import njit, prange

from .._spec import ACT_GELU, ACT_LEAKY_RELU, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH
from ._jit import Specialized, kernel
from ._math import activate, activate_grad
from ._simd import borrowed


@Specialized
def activation_forward(act):
    def activation_forward(x, out, alpha):
        for i in prange(x.size):
            out[i] = activate(x[i], act, alpha)
    return activation_forward


@Specialized
def activation_backward(act):
    def activation_backward(dy, saved, dx, alpha):
        for i in prange(dy.size):
            dx[i] = activate_grad(dy[i], saved[i], act, alpha)
    return activation_backward


@njit(inline="always")
def _epilogue_rows(c, i, rows, j0, cols, bias, act, alpha):
    b = bias[j0: j0 + cols]
    for r in range(i, i + rows):
        row = c[r, j0: j0 + cols]  # indices from 0: no wraparound test in the loop
        for j in range(cols):
            row[j] = activate(row[j] + b[j], act, alpha)


@njit(cache=True, error_model="numpy")
def epilogue(c, i, rows, j0, cols, bias, act, alpha):
    """c[i:i+rows, j0:j0+cols] = act(that + bias[j0:j0+cols]) in place, for one finished
    tile of a GEMM (or whole rows). The activation is a runtime argument tested once per
    call, and each branch is its own vectorized loop (the constant inlined into it): one
    compiled GEMM serves them all. One call per tile, not per row: a call and two slices
    per row cost a third of a 64x128x128 linear layer."""
    if act == ACT_NONE:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_NONE, alpha)
    elif act == ACT_RELU:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_RELU, alpha)
    elif act == ACT_SIGMOID:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_SIGMOID, alpha)
    elif act == ACT_TANH:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_TANH, alpha)
    elif act == ACT_LEAKY_RELU:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_LEAKY_RELU, alpha)
    elif act == ACT_GELU:
        _epilogue_rows(c, i, rows, j0, cols, bias, ACT_GELU, alpha)


@kernel
def bias_activation(z, bias, act, alpha):
    """z[i, :] = act(z[i, :] + bias) in place: the epilogue of a GEMM done elsewhere (BLAS)."""
    z_view, bias_view = borrowed(z), borrowed(bias)  # no atomics per row's call
    for i in prange(z.shape[0]):
        epilogue(z_view, i, 1, 0, z.shape[1], bias_view, act, alpha)
