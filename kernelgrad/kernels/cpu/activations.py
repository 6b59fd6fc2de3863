"""Elementwise activations, forward and backward: one pass, vectorized, memory bound.

`act` is a compile-time constant (one kernel per activation), so each activation gets
its own vectorized loop (a runtime branch in the loop body blocks LLVM's vectorizer).
Arrays are flat (the launcher ravels them).
"""
from numba import njit, prange

from .._spec import ACT_GELU, ACT_LEAKY_RELU, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH
from ._jit import Specialized, kernel
from ._math import activate, activate_grad


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

@njit(cache=True, error_model="numpy")
def epilogue(row, bias, act, alpha):
    """row = act(row + bias) in place. The activation is a runtime argument tested once per
    row, and each branch is its own vectorized loop: one compiled GEMM serves them all."""
    if act == ACT_NONE:
        for j in range(row.size):
            row[j] += bias[j]
    elif act == ACT_RELU:
        for j in range(row.size):
            row[j] = activate(row[j] + bias[j], ACT_RELU, alpha)
    elif act == ACT_SIGMOID:
        for j in range(row.size):
            row[j] = activate(row[j] + bias[j], ACT_SIGMOID, alpha)
    elif act == ACT_TANH:
        for j in range(row.size):
            row[j] = activate(row[j] + bias[j], ACT_TANH, alpha)
    elif act == ACT_LEAKY_RELU:
        for j in range(row.size):
            row[j] = activate(row[j] + bias[j], ACT_LEAKY_RELU, alpha)
    elif act == ACT_GELU:
        for j in range(row.size):
            row[j] = activate(row[j] + bias[j], ACT_GELU, alpha)


@kernel
def bias_activation(z, bias, act, alpha):
    """z[i, :] = act(z[i, :] + bias) in place: the epilogue of a GEMM done elsewhere (BLAS)."""
    for i in prange(z.shape[0]):
        epilogue(z[i], bias, act, alpha)
