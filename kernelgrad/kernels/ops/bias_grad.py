"""bias_grad: column sums, on cpu/bias_grad.py and cuda/bias_grad.cu."""
import numpy as np

from .. import checks
from ..cpu import bias_grad as cpu_kernels
from ._common import cuda, empty


def column_sums(dy):
    """bias_grad of a checked array (linear_backward uses it too)."""
    if checks.is_cupy(dy):
        return cuda("bias_grad").bias_grad(dy)
    out = empty(dy.shape[1], dtype=dy.dtype)
    cpu_kernels.bias_grad(dy.size, dy, out, cpu_kernels.band_count(dy.shape[0]))
    return out


def bias_grad(dy):
    """Column sums of dy (N, C): the gradient of a bias added to every row."""
    if (type(dy) is np.ndarray and dy.ndim == 2 and dy.dtype in checks.FLOAT_DTYPES
            and dy.flags.c_contiguous and dy.size):
        return column_sums(dy)
    return column_sums(checks.float_array(dy, "dy", 2, 2))
