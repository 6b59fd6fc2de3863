"""Launcher for bias_grad.cu: the bias gradient (column sums)."""
from . import _module as m

MIN_BAND_ROWS = 64


def bias_grad(dy):
    N, C = dy.shape
    col_tiles = (C + 31) // 32
    # enough row bands that the grid fills the GPU (about 8 blocks per SM), each band at
    # least MIN_BAND_ROWS tall so the second pass stays small
    want = max(1, m.sm_count() * 8 // col_tiles)
    bands = max(1, min(want, N // MIN_BAND_ROWS))
    band_rows = (N + bands - 1) // bands
    bands = (N + band_rows - 1) // band_rows
    out = m.empty((C,))
    target = out if bands == 1 else m.empty((bands, C))
    m.launch("bias_grad", "bias_grad_bands", (col_tiles, bands), (32, 8),
             (dy, target, m.i32(N), m.i32(C), m.i32(band_rows)))
    if bands > 1:
        m.launch("bias_grad", "sum_bands", m.grid(C), m.BLOCK,
                 (target, out, m.i32(bands), m.i32(C)))
    return out
