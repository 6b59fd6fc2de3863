"""Elementwise activations, forward and backward: one pass, vectorized, memory bound.

`act` is a compile-time constant (one kernel per activation), so each activation gets
its own vectorized loop (a runtime branch in the loop body blocks LLVM's vectorizer).
Arrays are flat (the launcher ravels them).
"""
from numba import njit, prange

from .._spec import ACT_GELU, ACT_LEAKY_RELU, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH
from ._jit import Specialized, kernel
from ._math import activate, activate_grad
from ._simd import PREFETCH_BYTES, borrowed, line_head, prefetch_lines_read, prefetch_lines_write
from ._simd import STREAM_BLOCK as BLOCK

# Arrays of at least PREFETCH_MIN elements are swept in blocks of BLOCK (_simd's
# STREAM_BLOCK), each asking for the lines PREFETCH_BYTES ahead of it. Measured at 16M
# float32, 2 threads: haswell GELU 7.6 -> 6.0 ms, tanh 5.7 -> 4.6, sigmoid 5.4 -> 4.5;
# AVX-512 5.5 -> 4.7, 5.6 -> 4.1, 5.6 -> 4.1. Smaller arrays sit in L2: one plain loop, no
# requests (the blocks cost ReLU at 64x128 about 0.1 us a call).
PREFETCH_MIN = 1 << 18


@Specialized
def activation_forward(act):
    def activation_forward(x, out, alpha):
        if x.size < PREFETCH_MIN:  # in cache: a plain loop, stores from a line boundary
            head = line_head(out)
            for i in range(head):
                out[i] = activate(x[i], act, alpha)
            xs, os = x[head:], out[head:]
            for i in prange(xs.size):
                os[i] = activate(xs[i], act, alpha)
            return
        x, out = borrowed(x), borrowed(out)  # block slices without reference counts
        blocks = x.size // BLOCK
        for b in prange(blocks):
            start = b * BLOCK
            ahead = start + PREFETCH_BYTES // x.itemsize
            prefetch_lines_read(x, ahead, BLOCK)
            prefetch_lines_write(out, ahead, BLOCK)
            xs, os = x[start: start + BLOCK], out[start: start + BLOCK]
            for i in range(BLOCK):
                os[i] = activate(xs[i], act, alpha)
        xt, ot = x[blocks * BLOCK:], out[blocks * BLOCK:]  # from 0: no wraparound tests
        for i in range(xt.size):
            ot[i] = activate(xt[i], act, alpha)
    return activation_forward


@Specialized
def activation_backward(act):
    def activation_backward(dy, saved, dx, alpha):
        if dy.size < PREFETCH_MIN:
            head = line_head(dx)
            for i in range(head):
                dx[i] = activate_grad(dy[i], saved[i], act, alpha)
            dys, ss, dxs = dy[head:], saved[head:], dx[head:]
            for i in prange(dys.size):
                dxs[i] = activate_grad(dys[i], ss[i], act, alpha)
            return
        dy, saved, dx = borrowed(dy), borrowed(saved), borrowed(dx)
        blocks = dy.size // BLOCK
        for b in prange(blocks):
            start = b * BLOCK
            ahead = start + PREFETCH_BYTES // dy.itemsize
            prefetch_lines_read(dy, ahead, BLOCK)
            prefetch_lines_read(saved, ahead, BLOCK)
            prefetch_lines_write(dx, ahead, BLOCK)
            dys, ss, dxs = (dy[start: start + BLOCK], saved[start: start + BLOCK],
                            dx[start: start + BLOCK])
            for i in range(BLOCK):
                dxs[i] = activate_grad(dys[i], ss[i], act, alpha)
        start = blocks * BLOCK  # tail views from 0: no wraparound tests
        dyt, st, dxt = dy[start:], saved[start:], dx[start:]
        for i in range(dyt.size):
            dxt[i] = activate_grad(dyt[i], st[i], act, alpha)
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
    strip of a GEMM's panel (or whole rows). The activation is a runtime argument tested
    once per call, and each branch is its own vectorized loop (the constant inlined into
    it): one compiled GEMM serves them all. One call per panel's strip of rows (or per
    small block of C), not per row (a call and two slices per row cost a third of a
    64x128x128 linear layer) nor per tile (64x128->128 on the haswell target: 23.1 ->
    22.6 us a call; with one call for its whole C block, 21.7)."""
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
