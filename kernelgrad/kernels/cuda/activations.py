"""Launchers for activations.cu: one kernel per activation and direction, named after
the activation whose id (_spec.ACTIVATION_IDS, nonzero) the callers pass; and the
cuBLAS GEMM's bias + activation epilogue."""
from .._spec import ACTIVATIONS
from . import _module as m


def forward(x, act, alpha):
    y = m.empty(x.shape)
    n = x.size
    m.launch("activations", f"{ACTIVATIONS[act - 1]}_forward", m.grid((n + 3) // 4), m.BLOCK,
             (x, y, m.i64(n), m.f32(alpha), m.i32(m.aligned(x, y))))
    return y


def backward(dy, saved, act, alpha):
    dx = m.empty(dy.shape)
    n = dy.size
    m.launch("activations", f"{ACTIVATIONS[act - 1]}_backward", m.grid((n + 3) // 4), m.BLOCK,
             (dy, saved, dx, m.i64(n), m.f32(alpha), m.i32(m.aligned(dy, saved, dx))))
    return dx


def bias_activation(c, bias, act, alpha):
    """c = act(c + bias) in place; c is (M, N) and contiguous, bias (N,) or None."""
    M, N = c.shape
    if bias is None and not act:
        return c
    vec = N % 4 == 0 and m.aligned(*(a for a in (c, bias) if a is not None))
    cols = N // 4 if vec else N
    blocks_x = (cols + m.BLOCK - 1) // m.BLOCK
    blocks_y = max(1, min(M, 65535, m.grid(M * cols) // blocks_x))
    m.launch("activations", "bias_activation", (blocks_x, blocks_y), m.BLOCK,
             (c, m.NULL if bias is None else bias, m.i32(M), m.i32(N), m.i32(act),
              m.f32(alpha), m.i32(vec)))
    return c
