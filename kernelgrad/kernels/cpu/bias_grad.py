"""Bias gradient: column sums of dY (N, C). Memory bound: dY is read once, in order.

The rows are cut into bands (band_count: from the shape alone, so the result does not
depend on how many threads run, and a training run gives the same bits on any machine
and under any load); each band is summed in float64 (more accurate than NumPy's float32
sum) into its own row of partial sums, and the partial sums are added at the end, in
band order. Rows are taken four at a time, so the accumulator row (8C bytes, in
L1/L2) is loaded and stored once per four input rows rather than once per row: that
halves the time of the one-row loop and lets the read stream run at memory speed.
sum_in_bands fixes that order; a kernel that makes its rows as it sums them (the captured
step's fused ReLU-dropout backward) sums through it too, and so gets the same bits.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel
from ._simd import borrowed

BAND_ROWS = 128   # rows a band takes at least (a batch of 512 is 4 bands: both cores work)
MAX_BANDS = 16    # enough to share among the threads of any machine we run on


def band_count(rows):
    bands = rows // BAND_ROWS  # comparisons, not max/min: this runs on every call
    return 1 if bands < 1 else (MAX_BANDS if bands > MAX_BANDS else bands)


@njit(inline="always")
def _add_four_rows(acc, r0, r1, r2, r3):
    for j in range(acc.size):
        acc[j] += ((np.float64(r0[j]) + np.float64(r1[j]))
                   + (np.float64(r2[j]) + np.float64(r3[j])))


@njit(inline="always")
def _add_row(acc, row):
    for j in range(acc.size):
        acc[j] += row[j]


@njit(inline="always")
def sum_in_bands(row, args, rows, out, bands):
    """out[j] = the sum over i < rows of row(i, args)[j], in the band order described above:
    row(i, args) gives row i (an array of out.size elements), and may compute it first."""
    partial = np.zeros((bands, out.size), dtype=np.float64)
    partial_rows = borrowed(partial)  # row slices without atomics
    for band in prange(bands):
        acc = partial_rows[band]
        i, end = band * rows // bands, (band + 1) * rows // bands
        while i + 4 <= end:
            _add_four_rows(acc, row(i, args), row(i + 1, args), row(i + 2, args),
                           row(i + 3, args))
            i += 4
        while i < end:
            _add_row(acc, row(i, args))
            i += 1
    for j in range(out.size):
        total = 0.0
        for band in range(bands):
            total += partial[band, j]
        out[j] = total


@njit(inline="always")
def _row(i, dy):
    return dy[i]


@kernel
def bias_grad(dy, out, bands):
    sum_in_bands(_row, borrowed(dy), dy.shape[0], out, bands)
