"""Argument checks for the kernel functions (and for nn, which uses them too): each raises
ValueError or TypeError naming the argument, its shape and what was expected, before
anything is changed.

What an array argument may be:
- an array a kernel only reads: a NumPy array of float32 or float64 (a subclass such as
  np.matrix or np.memmap is read as the plain ndarray it views; a list or a scalar is
  converted), or a float32 CuPy array. A masked array is refused: its mask would be lost.
  A non-contiguous array, or one whose elements are not aligned, is copied.
- an array a kernel updates in place (optimizer state): exactly numpy.ndarray (or a CuPy
  array), C-contiguous, writeable, float; the arrays one call writes may not share memory
  with each other or with any array the call reads.
The common case (a contiguous float ndarray) is decided by type and dtype identity first,
so a check costs well under a microsecond.
"""
import math
import numbers

import numpy as np

from ..devices import is_cuda_array as is_cupy
from ..devices import xp_of

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOAT_DTYPES = (F32, F64)


def _cupy_float32(x, name):
    if x.dtype != F32:
        raise TypeError(f"{name} is a CuPy {x.dtype} array: the CUDA kernels take float32")


def as_array(x, name):
    """x as a NumPy or CuPy array that kernels can read (see the module docstring)."""
    if type(x) is np.ndarray or is_cupy(x):
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array: kernels would ignore its mask; pass "
                        f"{name}.filled(value) or {name}.compressed()")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} cannot be read as an array: {error}") from None


def float_array(x, name, min_ndim=0, max_ndim=None):
    """x as a C-contiguous float array (a non-contiguous input is copied, and so is one in
    the other byte order, e.g. read from a big-endian file): float32/float64 NumPy, or
    float32 CuPy (which stays on its GPU)."""
    if type(x) is not np.ndarray:
        x = as_array(x, name)
        if is_cupy(x):
            _cupy_float32(x, name)
    dtype = x.dtype
    if dtype is not F32 and dtype is not F64 and dtype not in FLOAT_DTYPES:
        if dtype.kind == "f" and not dtype.isnative and dtype.newbyteorder("=") in FLOAT_DTYPES:
            return float_array(x.astype(dtype.newbyteorder("=")), name, min_ndim, max_ndim)
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    ndim = x.ndim
    if ndim < min_ndim or (max_ndim is not None and ndim > max_ndim):
        want = f"{min_ndim}-D" if max_ndim == min_ndim else f"at least {min_ndim}-D"
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): this op needs data")
    if not x.flags.c_contiguous:
        x = xp_of(x).ascontiguousarray(x)
    elif not x.flags.aligned:  # a byte-offset view: the kernels take aligned elements
        x = x.copy()
    return x


def in_place_array(x, name):
    """An array the kernel updates in place (see the module docstring)."""
    if (type(x) is np.ndarray and (x.dtype is F32 or x.dtype is F64)
            and x.flags.c_contiguous and x.flags.writeable and x.size):
        return x  # the common case, decided first
    if is_cupy(x):
        _cupy_float32(x, name)
        if not x.flags.c_contiguous:
            raise ValueError(f"{name} is updated in place and must be C-contiguous")
        return x
    if type(x) is not np.ndarray:
        what = "None" if x is None else type(x).__name__
        raise TypeError(f"{name} is updated in place, so it must be a numpy.ndarray itself, "
                        f"got {what}" + (" (use np.asarray(...) and keep that array)"
                                         if isinstance(x, np.ndarray) else ""))
    if x.dtype not in FLOAT_DTYPES:
        order = "" if x.dtype.isnative else " in this machine's byte order"
        raise TypeError(f"{name} must be float32 or float64{order}, got {x.dtype}")
    if not x.flags.c_contiguous or not x.flags.writeable:
        raise ValueError(f"{name} is updated in place and must be C-contiguous and writeable")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    return x


def state_array(x, name, like, like_name):
    """An array updated in place that must match `like` in shape and dtype."""
    in_place_array(x, name)
    if x.shape != like.shape:
        raise ValueError(f"{name} has shape {x.shape} but {like_name} has shape {like.shape}")
    if x.dtype != like.dtype:
        raise TypeError(f"{name} is {x.dtype} but {like_name} is {like.dtype}")
    return x


def _extent(a):
    """[start, end) of the bytes a contiguous array (NumPy or CuPy) covers."""
    start = a.data.ptr if is_cupy(a) else a.__array_interface__["data"][0]
    return start, start + a.nbytes


def no_overlap(written, read=()):
    """Raise when an array a call writes shares memory with another array of the call.

    written, read: (name, array) pairs of C-contiguous arrays (a contiguous array covers
    its whole extent, so overlapping extents are shared memory). Sorting the extents makes
    it n log n for the foreach form's long lists.
    """
    owners = set()
    for _, a in (*written, *read):
        owner = a if a.base is None else a.base
        if type(owner) is not np.ndarray or not owner.flags.owndata or id(owner) in owners:
            break  # foreign memory, or two views of one allocation: compare the bytes
        owners.add(id(owner))
    else:
        return  # each array has an allocation of its own: nothing can overlap
    spans = sorted([(*_extent(a), name, True) for name, a in written]
                   + [(*_extent(a), name, False) for name, a in read])
    # sweep in start order, keeping the span that reaches furthest: a span overlapping any
    # earlier one overlaps that one, and a write among overlapping spans is always met
    # while one of them is that furthest span
    end_max, owner = -1, None
    for start, end, name, writes in spans:
        if owner is not None and start < end_max and (writes or owner[1]):
            first, second = (owner[0], name) if owner[1] else (name, owner[0])
            raise ValueError(f"{first} and {second} share memory, and the step writes "
                             f"{first} while it reads or writes {second}: give each its "
                             "own array")
        if end > end_max:
            end_max, owner = end, (name, writes)


def same_dtype(a, a_name, b, b_name):
    if a.dtype != b.dtype:
        raise TypeError(f"{a_name} is {a.dtype} but {b_name} is {b.dtype}: use one dtype "
                        f"(e.g. {b_name}.astype({a_name}.dtype))")


def same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{a_name} has shape {a.shape} but {b_name} has shape {b.shape}")


def finite(value, name, low=None, high=None, low_open=False, high_open=False, dtype=None):
    """A finite real hyper-parameter within [low, high] (open ends as flagged); with dtype,
    also finite once rounded to it (1e39 is finite in float64, inf in float32)."""
    if type(value) is not float:  # the common case skips the slow ABC isinstance check
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {value}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    if dtype is not None:
        representable(value, name, dtype)
    return value


def representable(value, name, dtype):
    """value, checked to stay finite, and nonzero if it is nonzero, in `dtype`."""
    if value == 0 or 1e-30 < abs(value) < 1e30:  # fine in float32 and float64: no cast
        return value
    with np.errstate(over="ignore"):
        rounded = np.dtype(dtype).type(value)
    if not np.isfinite(rounded):
        raise ValueError(f"{name} = {value:g} overflows {np.dtype(dtype).name}")
    if value != 0 and rounded == 0:
        raise ValueError(f"{name} = {value:g} rounds to 0 in {np.dtype(dtype).name}")
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
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer counting from 1, got {step!r}")
    if not 1 <= step < 2 ** 53:  # 2^53: still exact in the float arithmetic of the steps
        raise ValueError(f"step counts from 1 (below 2**53), got {step!r}")
    return int(step)


def labels_for(labels, rows, classes):
    """Integer class labels of shape (rows,) as int64, for a kernel that checks each is in
    [0, classes) (on the CPU, before it computes; on the GPU, a NaN row and a device flag,
    since a check here would cost a synchronizing read)."""
    labels = as_array(labels, "labels")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (rows,):
        raise ValueError(f"labels has shape {labels.shape} but logits have {rows} rows: "
                         f"expected ({rows},)")
    if is_cupy(labels):
        return labels
    # the range is the kernel's front-end's to check, in one compiled pass
    if labels.dtype is not np.dtype(np.int64) or not labels.flags.c_contiguous:
        if labels.dtype.kind == "u" and labels.size and labels.max() >= 2 ** 63:
            raise ValueError(f"label {labels.max()} is outside [0, {classes}) for logits with "
                             f"{classes} classes")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
    return labels
