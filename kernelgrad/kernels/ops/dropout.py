"""dropout, dropout_backward: inverted dropout with a Philox mask regenerated from
(seed, offset), on cpu/dropout.py and cuda/dropout.cu."""
import numpy as np

from .. import checks
from ..cpu import dropout as cpu_kernels
from ..philox import keep_threshold
from ._common import cuda, empty_like


def _dropout(x, p, seed, offset, name):
    x = checks.float_array(x, name)
    p = checks.probability(p)
    seed = np.uint64(checks.uint64(seed, "seed"))
    offset = np.uint64(checks.uint64(offset, "offset"))
    if checks.is_cupy(x):
        return cuda("dropout").dropout(x, keep_threshold(p), 1.0 / (1.0 - p), seed, offset)
    out = empty_like(x)
    cpu_kernels.dropout(x.size, x.reshape(-1), out.reshape(-1), keep_threshold(p),
                        x.dtype.type(1.0 / (1.0 - p)), seed, offset)
    return out


def dropout(x, p, seed, offset=0):
    """Inverted dropout: x / (1 - p) where kept, 0 where dropped (probability p).

    The mask comes from Philox4x32-10 keyed by (seed, offset) and is never stored:
    dropout_backward with the same arguments regenerates it.
    """
    return _dropout(x, p, seed, offset, "x")


def dropout_backward(dy, p, seed, offset=0):
    """dL/dx of dropout(x, p, seed, offset): the same mask and scale applied to dy."""
    return _dropout(dy, p, seed, offset, "dy")
