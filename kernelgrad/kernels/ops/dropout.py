"""dropout, dropout_backward: inverted dropout with a Philox mask regenerated from
(seed, offset), on cpu/dropout.py and cuda/dropout.cu; and the backward of a ReLU followed
by dropout, from the dropout's output (kg.capture's plans)."""
import numpy as np

from .. import _alloc, checks
from ..cpu import dropout as cpu_kernels
from ..cpu.bias_grad import band_count
from ..philox import keep_threshold
from ._common import Plans, cuda, empty

_U64 = 2 ** 64
_constants = Plans()  # (p, dtype) -> (keep threshold, scale in dtype)


def constants(p, dtype):
    """(keep threshold, scale in dtype) for drop probability p, checked once per (p, dtype)."""
    found = _constants.find((p, dtype))
    if found is None:
        checked = checks.probability(p)
        found = _constants.remember((p, dtype), (np.uint64(keep_threshold(checked)),
                                                 dtype.type(1.0 / (1.0 - checked))))
    return found


def run_cpu(x, threshold, scale, seed, offset):
    """The CPU kernel on a plain C-contiguous float array, unchecked: threshold and scale
    from constants(), seed and offset as numpy.uint64 (what kg.capture replays)."""
    out = _alloc.empty_like(x)
    cpu_kernels.dropout(x.size, x.ravel(), out.ravel(), threshold, scale, seed, offset)
    return out


def _dropout(x, p, seed, offset, name):
    if (type(x) is np.ndarray and x.dtype in checks.FLOAT_DTYPES and x.flags.c_contiguous
            and x.size and type(seed) is int and type(offset) is int
            and 0 <= seed < _U64 and 0 <= offset < _U64):
        threshold, scale = constants(p, x.dtype)
        return run_cpu(x, threshold, scale, np.uint64(seed), np.uint64(offset))
    x = checks.float_array(x, name)
    p = checks.probability(p)
    seed = np.uint64(checks.uint64(seed, "seed"))
    offset = np.uint64(checks.uint64(offset, "offset"))
    if checks.is_cupy(x):
        return cuda("dropout").dropout(x, keep_threshold(p), 1.0 / (1.0 - p), seed, offset)
    return run_cpu(x, *constants(p, x.dtype), seed, offset)


def dropout(x, p, seed, offset=0):
    """Inverted dropout: x / (1 - p) where kept, 0 where dropped (probability p).

    The mask comes from Philox4x32-10 keyed by (seed, offset) and is never stored:
    dropout_backward with the same arguments regenerates it.
    """
    return _dropout(x, p, seed, offset, "x")


def dropout_backward(dy, p, seed, offset=0):
    """dL/dx of dropout(x, p, seed, offset): the same mask and scale applied to dy."""
    return _dropout(dy, p, seed, offset, "dy")


def relu_dropout_backward_cpu(g, d, scale, bias_sums):
    """(dz, db): the gradient before a ReLU whose output went through dropout, given the
    gradient g of the dropout's output d (scale from constants()); db is dz's column sums
    (bias_grad's bits) when bias_sums, else None. The same bits as dropout_backward and then
    the ReLU's backward (cpu/dropout.py says why), in one pass without the Philox mask.
    Unchecked: g and d plain C-contiguous float arrays of one shape and dtype, 2-D when
    bias_sums."""
    dz = _alloc.empty_like(g)
    if not bias_sums:
        cpu_kernels.relu_dropout_backward(g.size, g.ravel(), d.ravel(), dz.ravel(), scale)
        return dz, None
    db = empty(g.shape[1], dtype=g.dtype)
    cpu_kernels.relu_dropout_backward_sums(g.size, g, d, dz, scale, db, band_count(g.shape[0]))
    return dz, db
