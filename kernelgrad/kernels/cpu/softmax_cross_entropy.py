"""Softmax cross-entropy from logits and integer labels, loss and dlogits in one kernel.

Per row, three sweeps over a row that stays in L1/L2 (max; exp of
the shifted row written into dlogits; sum), then one scaling sweep: reads the logits once
from memory and writes dlogits once, so it is memory bound; the exp sweep, compute bound,
requests the lines it will need from memory ahead of time. Probabilities are never
stored apart from dlogits itself. Stable for any finite logits: exp sees x - max <= 0.
"""
import math

from numba import njit, prange

from ._jit import kernel
from ._math import cast_like, fast_exp
from ._simd import STREAM_BLOCK, borrowed, lanes, prefetch_lines_read, vload, vmax, vreduce_max

FAR_ROW = 256  # classes from which the exp sweep requests lines ahead


@njit(cache=True)
def _row_max(row):
    """max(row) when the row has no NaN; with a NaN, any value (the exp sweep carries
    the NaN to the loss and every gradient of the row, whatever the shift). Written with
    explicit vectors: LLVM vectorizes no form of a scalar max loop here, and the scalar
    loop's compare-select chain cost about 3 cycles per element, most of the op's time."""
    n, width = row.size, lanes(row)
    m = row[0]
    if n >= 4 * width:
        a, b = vload(row, 0), vload(row, width)
        c, d = vload(row, 2 * width), vload(row, 3 * width)
        j = 4 * width
        while j + 4 * width <= n:  # four chains hide the max's latency
            a = vmax(a, vload(row, j))
            b = vmax(b, vload(row, j + width))
            c = vmax(c, vload(row, j + 2 * width))
            d = vmax(d, vload(row, j + 3 * width))
            j += 4 * width
        m = vreduce_max(vmax(vmax(a, b), vmax(c, d)))
        start = j
    else:
        start = 1
    for j in range(start, n):
        m = row[j] if row[j] > m else m
    return m


# The sum may be reordered (that is what lets it vectorize); the exp sweep may not, since
# reassociation would break exp's two-part range reduction.


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _row_sum_f64(row):
    s = 0.0
    for j in range(row.size):
        s += row[j]
    return s


@njit(cache=True)
def _exp_shifted(row, shift, out):
    for j in range(row.size):
        out[j] = fast_exp(row[j] - shift)


@njit(cache=True)
def _exp_shifted_far(row, shift, out, next_row):
    """_exp_shifted for a long row, in blocks of STREAM_BLOCK elements; per block it requests the
    same lines of the next row of logits, which the next row's max sweep reads from memory.
    This sweep is compute bound, so those requests overlap the memory time with it (with
    requests for `out`'s lines PREFETCH_BYTES ahead too, 1024x16384 float32, 2 threads, on
    an Intel Xeon: 6.2-6.9 -> 4.7-4.9 ms AVX-512, 6.2-6.3 -> 4.7 haswell). Those requests
    for the output cost more than they saved on a Zen 4: without them 0.77-0.97x the time
    on the haswell build, 0.90-0.95x on znver4 (medians of 8 input and output placements,
    alternated, in 4 and 3 runs); the split was not measured on the Xeon. Each block's loop
    is written here, over a constant count, not as a call of _exp_shifted on the block's
    slices: that call's set-up per 64 elements cost nearly as much as their exps (Zen 4, 2
    threads, haswell: 6.6 -> 5.4 ms, 4096x1000 1.74 -> 1.29; znver4 5.2 -> 5.0, 1.17 ->
    1.03)."""
    blocks = row.size // STREAM_BLOCK
    for b in range(blocks):
        start = b * STREAM_BLOCK
        prefetch_lines_read(next_row, start, STREAM_BLOCK)
        rs, os = row[start: start + STREAM_BLOCK], out[start: start + STREAM_BLOCK]
        for j in range(STREAM_BLOCK):
            os[j] = fast_exp(rs[j] - shift)
    _exp_shifted(row[blocks * STREAM_BLOCK:], shift, out[blocks * STREAM_BLOCK:])


@njit(cache=True)
def _scale(row, factor):
    for j in range(row.size):
        row[j] *= factor


@kernel
def softmax_cross_entropy(logits, labels, losses, dlogits):
    # row slices of views without reference counts: no atomic operations per row
    logits, dlogits = borrowed(logits), borrowed(dlogits)
    last = logits.shape[0] - 1
    for i in prange(logits.shape[0]):
        row, drow = logits[i], dlogits[i]
        shift = _row_max(row)
        # A NaN anywhere in the row must reach the loss; the max above may skip it.
        if row.size >= FAR_ROW:
            _exp_shifted_far(row, shift, drow, logits[min(i + 1, last)])
        else:
            _exp_shifted(row, shift, drow)
        total = _row_sum_f64(drow)
        label = labels[i]
        losses[i] = math.log(total) - (row[label] - shift)
        _scale(drow, cast_like(row[0], 1.0 / total))
        drow[label] -= 1


@njit(cache=True)
def labels_in_range(labels, classes):
    """The first label outside [0, classes), or -1 when every one is inside (one pass: the
    check costs the same as NumPy's min and max, without their two calls)."""
    for i in range(labels.size):
        if labels[i] < 0 or labels[i] >= classes:
            return i
    return -1
