"""Elementwise activations, forward and backward: one pass, vectorized, memory bound.

`act` is made a compile-time literal so that each activation gets its own specialized,
vectorized loop (a runtime branch in the loop body blocks LLVM's vectorizer). Arrays
are flat (the launcher ravels them).
"""
from numba import literally, prange

from ._jit import kernel
from ._math import activate, activate_grad


@kernel
def activation_forward(x, out, act, alpha):
    literally(act)
    for i in prange(x.size):
        out[i] = activate(x[i], act, alpha)


@kernel
def activation_backward(dy, saved, dx, act, alpha):
    literally(act)
    for i in prange(dy.size):
        dx[i] = activate_grad(dy[i], saved[i], act, alpha)
