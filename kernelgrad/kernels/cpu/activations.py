"""Elementwise activations, forward and backward: one pass, vectorized, memory bound.

`act` is a compile-time constant (one kernel per activation), so each activation gets
its own vectorized loop (a runtime branch in the loop body blocks LLVM's vectorizer).
Arrays are flat (the launcher ravels them).
"""
from numba import prange

from ._jit import Specialized, kernel
from ._math import activate, activate_grad
from .matmul import epilogue


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



@kernel
def bias_activation(z, bias, act, alpha):
    """z[i, :] = act(z[i, :] + bias) in place: the epilogue of a GEMM done elsewhere (BLAS)."""
    for i in prange(z.shape[0]):
        epilogue(z[i], bias, act, alpha)
