"""Inverted dropout with Philox4x32-10 generated inside the kernel; the mask is never stored.

One Philox call per 4 elements (the stream layout is defined in kernels/philox.py);
integer arithmetic in uint64 with explicit 32-bit masks so LLVM can vectorize the
32x32->64 multiplies. Bound: compute (10 rounds per 4 elements) at 2 cores, close to
memory bound.
"""
import numpy as np
from numba import njit, prange

from ..philox import PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1
from ._jit import kernel

_M0, _M1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
_W0, _W1 = np.uint64(PHILOX_W0), np.uint64(PHILOX_W1)
_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


@njit(inline="always")
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT) ^ c1 ^ k0, p1 & _MASK,
                          (p0 >> _SHIFT) ^ c3 ^ k1, p0 & _MASK)
        k0 = (k0 + _W0) & _MASK  # the bump after the last round is never used
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always")
def _keep(word, x, threshold, scale, zero):
    return x * scale if word >= threshold else zero


# Blocks of 4 elements per thread task. A prange straight over blocks compiles to a loop
# LLVM does not vectorize (4x slower than the serial build); a plain inner loop over a
# chunk's blocks vectorizes in both builds.
CHUNK_BLOCKS = 1 << 14


@njit(inline="always")
def _dropout_blocks(x, out, first, count, threshold, scale, o0, o1, k0, k1):
    """Blocks first .. first + count - 1; x and out are views starting at block `first`
    (indices from 0 carry no wraparound checks, which would block vectorizing)."""
    zero = x.dtype.type(0)
    for block in range(count):
        b = np.uint64(first + block)
        w0, w1, w2, w3 = philox4x32_10(b & _MASK, b >> _SHIFT, o0, o1, k0, k1)
        base = 4 * block
        out[base] = _keep(w0, x[base], threshold, scale, zero)
        out[base + 1] = _keep(w1, x[base + 1], threshold, scale, zero)
        out[base + 2] = _keep(w2, x[base + 2], threshold, scale, zero)
        out[base + 3] = _keep(w3, x[base + 3], threshold, scale, zero)


@kernel
def dropout(x, out, threshold, scale, seed, offset):
    """out = x * scale where the element's Philox word >= threshold, else 0 (x flat)."""
    n = x.size
    threshold = np.uint64(threshold)
    k0, k1 = np.uint64(seed) & _MASK, np.uint64(seed) >> _SHIFT
    o0, o1 = np.uint64(offset) & _MASK, np.uint64(offset) >> _SHIFT
    full_blocks = n // 4
    # Whole blocks in branch-free loops (so LLVM can vectorize them), the tail after.
    for chunk in prange((full_blocks + CHUNK_BLOCKS - 1) // CHUNK_BLOCKS):
        first = chunk * CHUNK_BLOCKS
        count = min(CHUNK_BLOCKS, full_blocks - first)
        _dropout_blocks(x[4 * first:], out[4 * first:], first, count, threshold, scale,
                        o0, o1, k0, k1)
    base = 4 * full_blocks
    if base < n:
        b = np.uint64(full_blocks)
        words = philox4x32_10(b & _MASK, b >> _SHIFT, o0, o1, k0, k1)
        for j in range(n - base):
            out[base + j] = _keep(words[j], x[base + j], threshold, scale, x.dtype.type(0))
