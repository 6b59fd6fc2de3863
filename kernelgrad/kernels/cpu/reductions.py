"""Bias gradient: column sums of dY (N, C). Memory bound: dY is read once.

Threads take blocks of columns; each block accumulates in float64 over all rows into a
small buffer that stays in L1, so the sum is more accurate than NumPy's float32 sum.
"""
import numpy as np
from numba import prange

from ._jit import kernel

COLUMN_BLOCK = 256


@kernel
def bias_grad(dy, out):
    rows, cols = dy.shape
    for block in prange((cols + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        j0 = block * COLUMN_BLOCK
        j1 = min(j0 + COLUMN_BLOCK, cols)
        acc = np.zeros(j1 - j0, dtype=np.float64)
        for i in range(rows):
            segment = dy[i, j0:j1]  # a view from j0: indices from 0 vectorize
            for j in range(acc.size):
                acc[j] += segment[j]
        out_segment = out[j0:j1]
        for j in range(acc.size):
            out_segment[j] = acc[j]
