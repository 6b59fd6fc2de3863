"""Losses with their gradients in the same pass.

softmax_cross_entropy: per row, three sweeps over a row that stays in L1/L2 (max; exp of
the shifted row written into dlogits; sum), then one scaling sweep: reads the logits once
from memory and writes dlogits once, so it is memory bound. Probabilities are never
stored apart from dlogits itself. Stable for any finite logits: exp sees x - max <= 0.
"""
import math

import numpy as np
from numba import njit, prange

from ._jit import kernel, typed
from ._math import cast_like, fast_exp
from ._simd import lanes, vload, vmax, vreduce_max


@njit(cache=True)
def _row_max(row):
    """max(row), NaN ignored (the exp sweep carries a NaN to the loss). Written with
    explicit vectors: LLVM vectorizes no form of a scalar max loop here, and the scalar
    loop's compare-select chain cost about 3 cycles per element, most of the op's time."""
    n, width = row.size, lanes(row)
    m = row[0]
    if n >= 2 * width:
        a, b = vload(row, 0), vload(row, width)
        j = 2 * width
        while j + 2 * width <= n:  # two chains hide vmax's latency
            a = vmax(a, vload(row, j))
            b = vmax(b, vload(row, j + width))
            j += 2 * width
        m = vreduce_max(vmax(a, b))
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
def _scale(row, factor):
    for j in range(row.size):
        row[j] *= factor


@kernel
def softmax_cross_entropy(logits, labels, losses, dlogits):
    for i in prange(logits.shape[0]):
        row, drow = logits[i], dlogits[i]
        shift = _row_max(row)
        # A NaN anywhere in the row must reach the loss; the max above may skip it.
        _exp_shifted(row, shift, drow)
        total = _row_sum_f64(drow)
        label = labels[i]
        losses[i] = math.log(total) - (row[label] - shift)
        _scale(drow, cast_like(row[0], 1.0 / total))
        drow[label] -= 1


@typed
def _log1p_unit(T):
    """log(1 + e) for e in [0, 1]: 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series
    (terms to s^17 for float32, s^37 for float64). Exact relative accuracy as e -> 0,
    and vectorizable, unlike libm's scalar log1p."""
    terms = 9 if T is np.float32 else 19
    c = tuple(T(2.0 / (2 * k + 1)) for k in range(terms)) + (T(0),) * (19 - terms)
    two = T(2)

    def log1p_unit(e):
        s = e / (two + e)
        s2 = s * s
        p = c[18]
        for k in range(17, -1, -1):
            p = p * s2 + c[k]
        return s * p
    return log1p_unit


@typed
def _bce(T):
    zero, one = T(0), T(1)

    def bce(z, t):
        e = fast_exp(-abs(z))
        loss = (z if z > zero else zero) - z * t + _log1p_unit(e)
        # sigmoid(z) = e / (1 + e) for z < 0: 1 - 1 / (1 + e) would lose e to 1's rounding
        # (a 0.4% error at z = -11)
        sig = (one if z >= zero else e) / (one + e)
        grad = sig - t
        return loss, grad
    return bce


@kernel
def binary_cross_entropy_with_logits(logits, targets, losses, dlogits):
    for i in prange(logits.size):
        losses[i], dlogits[i] = _bce(logits[i], targets[i])


@kernel
def mse(pred, target, losses, dpred):
    for i in prange(pred.size):
        diff = pred[i] - target[i]
        losses[i] = diff * diff
        dpred[i] = diff + diff
