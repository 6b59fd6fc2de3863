"""Argument checks for the public kernel functions: each raises before any kernel runs,
with a message that names the argument, its shape and what was expected."""
import math
import numbers

import numpy as np

from ..devices import is_cuda_array as is_cupy
from ..devices import xp_of

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _cupy_float32(x, name):
    if x.dtype != np.float32:
        raise TypeError(f"{name} is a CuPy {x.dtype} array: the CUDA kernels take float32")


def float_array(x, name, min_ndim=1, max_ndim=None):
    """x as a C-contiguous float array (a non-contiguous input is copied): float32/float64
    NumPy, or float32 CuPy (which stays on its GPU)."""
    if is_cupy(x):
        _cupy_float32(x, name)
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.ndim < min_ndim or (max_ndim is not None and x.ndim > max_ndim):
        want = f"{min_ndim}-D" if max_ndim == min_ndim else f"at least {min_ndim}-D"
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): this op needs data")
    if not x.flags.c_contiguous:
        x = xp_of(x).ascontiguousarray(x)
    return x


def in_place_array(x, name):
    """An array the kernel updates in place: a C-contiguous, writeable NumPy array or a
    C-contiguous float32 CuPy array."""
    if is_cupy(x):
        _cupy_float32(x, name)
        if not x.flags.c_contiguous:
            raise ValueError(f"{name} is updated in place and must be C-contiguous")
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array updated in place, got {type(x).__name__}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError(f"{name} is updated in place and must be C-contiguous and writeable")
    return x


def state_array(x, name, like, like_name):
    """An array updated in place that must match `like` in shape and dtype."""
    in_place_array(x, name)
    if x.shape != like.shape:
        raise ValueError(f"{name} has shape {x.shape} but {like_name} has shape {like.shape}")
    if x.dtype != like.dtype:
        raise TypeError(f"{name} is {x.dtype} but {like_name} is {like.dtype}")
    return x


def same_dtype(a, a_name, b, b_name):
    if a.dtype != b.dtype:
        raise TypeError(f"{a_name} is {a.dtype} but {b_name} is {b.dtype}: use one dtype")


def same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{a_name} has shape {a.shape} but {b_name} has shape {b.shape}")


def finite(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real hyper-parameter within [low, high] (open ends as flagged)."""
    if type(value) is not float:  # the common case skips the slow ABC isinstance check
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def probability(p):
    return finite(p, "p (the drop probability)", 0.0, 1.0, high_open=True)


def uint64(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 0 <= int(value) < 2 ** 64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return int(value)


def step_count(step):
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"step counts from 1, got {step!r}")
    return int(step)


def labels_for(labels, rows, classes):
    """Integer class labels of shape (rows,), each in [0, classes). On the GPU the range
    is the kernel's to check (here it would cost a synchronizing read)."""
    if is_cupy(labels):
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        if labels.shape != (rows,):
            raise ValueError(f"labels has shape {labels.shape} but logits have {rows} rows: "
                             f"expected ({rows},)")
        return labels
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (rows,):
        raise ValueError(f"labels has shape {labels.shape} but logits have {rows} rows: "
                         f"expected ({rows},)")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        raise ValueError(f"label {bad} is outside [0, {classes}) for logits with {classes} "
                         "classes")
    return np.ascontiguousarray(labels, dtype=np.int64)
